"""Authorisation of pages and Dash callbacks, checked on the server for every request."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from services.errors import Forbidden, Unauthorized

POLICY_ATTRIBUTE = "beacon_policy"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CallbackPolicy:
    """Who may trigger a callback; `mutates` marks state changes (refusals are audited)."""

    roles: frozenset[str]
    mutates: bool = False
    kiosk: bool = False
    name: str = ""
    # How many inputs and states Dash declared, so malformed requests get a 400 up front.
    inputs: int | None = None
    states: int | None = None


@dataclass(frozen=True)
class PagePolicy:
    """Who may open a page; `kiosk` pages are also shown on wall screens."""

    module: str
    path: str
    path_template: str | None
    name: str
    roles: frozenset[str]
    kiosk: bool
    order: int

    def matches(self, path: str) -> bool:
        """True when `path` is this page (templates match any value in `<var>` segments)."""
        if self.path_template is None:
            return path.rstrip("/") == self.path.rstrip("/")
        want = self.path_template.strip("/").split("/")
        got = path.strip("/").split("/")
        return len(want) == len(got) and all(
            w.startswith("<") or w == g for w, g in zip(want, got, strict=True)
        )


def allow(roles: Iterable[str], *, mutates: bool = False, kiosk: bool = False) -> Callable[[F], F]:
    """Declare and enforce who may run a callback.

    Put it under `@dash.callback`: Dash copies the declared policy onto its wrapper, and
    the request guard refuses unauthorised calls before the callback runs; the check
    here repeats it so the function is safe however it is reached.
    """
    allowed = frozenset(roles)

    def decorate(fn: F) -> F:
        policy = CallbackPolicy(allowed, mutates=mutates, kiosk=kiosk, name=fn.__qualname__)

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            require(policy)
            return fn(*args, **kwargs)

        setattr(guarded, POLICY_ATTRIBUTE, policy)
        return guarded  # type: ignore[return-value]

    return decorate


def require(policy: CallbackPolicy) -> None:
    """Raise unless the current principal satisfies `policy`."""
    from services.web.principal import current_principal

    principal = current_principal()
    if principal is None:
        raise Unauthorized("sign in first")
    if principal.is_kiosk and (policy.mutates or not policy.kiosk):
        raise Forbidden("wall screens are read-only")
    if principal.role not in policy.roles:
        raise Forbidden(f"role {principal.role} may not do this ({policy.name})")


def policy_of(fn: Callable[..., Any]) -> CallbackPolicy | None:
    """The policy declared with `allow`, if any."""
    return getattr(fn, POLICY_ATTRIBUTE, None)


def page_allows(page: PagePolicy, *, role: str, kiosk: bool) -> bool:
    """True when a principal with this role (and kiosk flag) may open the page."""
    if kiosk:
        return page.kiosk
    return role in page.roles
