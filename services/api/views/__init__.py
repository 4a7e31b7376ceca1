"""API views, one module per area; importing this package registers their routes."""

from services.api.views import admin, audit, inventory, meta

__all__ = ["admin", "audit", "inventory", "meta"]
