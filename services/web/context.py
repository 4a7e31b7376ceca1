"""The per-application context every request handler reaches through Flask."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from services.auth import ALL_ROLES
from services.config import Settings
from services.db import Database
from services.web.authz import CallbackPolicy, PagePolicy
from services.web.shared_cache import SharedCache

EXTENSION_KEY = "beacon"
# Dash's own page router registers itself on the first request, after policies are bound;
# any signed-in principal may route, because each page layout checks its roles itself.
ROUTER_OUTPUT = "_pages_content.children"
ROUTER_POLICY = CallbackPolicy(ALL_ROLES, kiosk=True, name="dash.pages.router")


@dataclass
class BeaconContext:
    """Settings, database and the access policies computed once at start-up."""

    settings: Settings
    db: Database
    pages: list[PagePolicy] = field(default_factory=list)
    callbacks: dict[str, CallbackPolicy] = field(default_factory=dict)
    # Answers every wall screen shares, computed once per few seconds per worker.
    wall_cache: SharedCache = field(init=False)

    def __post_init__(self) -> None:
        self.wall_cache = SharedCache(self.settings.wall_cache_s)

    def callback_policy(self, output: str) -> CallbackPolicy | None:
        """The policy of the callback producing `output`, or None for unknown callbacks."""
        policy = self.callbacks.get(output)
        if policy is None and output.startswith(f"..{ROUTER_OUTPUT}..."):
            return ROUTER_POLICY
        return policy


def beacon() -> BeaconContext:
    """The context of the application handling the current request."""
    return current_app.extensions[EXTENSION_KEY]
