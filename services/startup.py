"""What every process does once its schema is current: seed what must exist."""

from __future__ import annotations

import logging

from sqlalchemy import text

from services.automation.use_cases import ensure_use_cases
from services.config import Settings
from services.db import Database
from services.db.models import utcnow
from services.seed import ensure_admin, ensure_kpis

log = logging.getLogger("beacon")
# Any constant works; the same in every Beacon process (migrations hold a different one).
_PG_BOOTSTRAP_LOCK = 0x62656163


def bootstrap(db: Database, settings: Settings) -> None:
    """Seed the KPI catalogue, the use cases and the first admin; print a new password once."""
    with db.session(write=True) as session:
        if db.dialect == "postgresql":
            # Processes starting together (a web server and a scheduler, two schedulers)
            # would otherwise both insert the catalogue and one would die on a unique key.
            # The lock is held until this transaction commits, so the second sees the first's
            # rows. (SQLite write transactions are already exclusive.)
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_BOOTSTRAP_LOCK})
        ensure_kpis(session)
        # The automation use cases are product configuration: present in every deployment.
        ensure_use_cases(session, now=utcnow())
        admin = ensure_admin(session, settings)
    if admin and admin.generated_password:
        # Printed, not logged: it must not end up in log files, and it is shown only once.
        print(
            f"\n  Beacon created user '{admin.username}' with password: "
            f"{admin.generated_password}\n  (shown once; set BEACON_ADMIN_PASSWORD to choose it)\n",
            flush=True,
        )
