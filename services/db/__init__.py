"""Database access: engine and sessions, typed models, migrations."""

from .engine import Database, connect
from .migrate import upgrade_to_head

__all__ = ["Database", "connect", "upgrade_to_head"]
