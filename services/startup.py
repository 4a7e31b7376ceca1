"""What every process does once its schema is current: seed what must exist."""

from __future__ import annotations

import logging

from services.automation.use_cases import ensure_use_cases
from services.config import Settings
from services.db import Database
from services.db.models import utcnow
from services.seed import ensure_admin, ensure_kpis

log = logging.getLogger("beacon")


def bootstrap(db: Database, settings: Settings) -> None:
    """Seed the KPI catalogue, the use cases and the first admin; print a new password once."""
    with db.session(write=True) as session:
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
