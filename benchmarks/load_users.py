"""Simulated people for the load test: wall screens and engineers, each an aiohttp session.

A wall screen opens its kiosk link, loads the overview with `?kiosk=1&refresh=N` and then
lives on its intervals. An engineer signs in, opens the anomalies, forecasts or incidents
page (a full load the first time, in-app navigation afterwards), reads the REST API with
an engineer token, and stays on the page for a think time while its intervals run, as a
browser tab does. Static assets are not fetched: browsers cache them after the first load.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from benchmarks.load_dash import Callback, PageState, Prop, parse_dependencies

ENGINEER_PAGES = ("/anomalies", "/forecasts", "/incidents")
REST_READS = (
    "/api/v1/anomalies?status=open,acknowledged&limit=50",
    "/api/v1/forecasts?limit=50",
    "/api/v1/incidents",
    "/api/v1/oncall/now?domain=RAN",
)
WALL_REFRESH_ID = "overview-wall-refresh"
ERROR_SAMPLES = 5


@dataclass
class Stats:
    """Latencies and failures per endpoint, callback and refresh group."""

    started: float = field(default_factory=time.monotonic)
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, seconds: float, ok: bool, detail: str = "") -> None:
        self.samples[name].append((time.monotonic() - self.started, seconds))
        if not ok:
            self.errors[name] += 1
            if len(self.error_samples) < 50:
                self.error_samples.append({"endpoint": name, "detail": detail[:500]})

    def summary(self, *, skip_s: float = 0.0) -> dict[str, dict[str, Any]]:
        """Percentiles per name over the samples taken after `skip_s` (the warm-up)."""
        out = {}
        for name, rows in sorted(self.samples.items()):
            kept = sorted(s for t, s in rows if t >= skip_s) or sorted(s for _, s in rows)
            out[name] = {
                "count": len(rows),
                "errors": self.errors.get(name, 0),
                "p50_ms": _ms(_rank(kept, 0.50)),
                "p95_ms": _ms(_rank(kept, 0.95)),
                "p99_ms": _ms(_rank(kept, 0.99)),
                "max_ms": _ms(kept[-1]),
            }
        return out


def _rank(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


class Browser:
    """One simulated browser: cookie jar, current page, and the callbacks it would send."""

    def __init__(self, base: str, stats: Stats, connector: aiohttp.BaseConnector) -> None:
        self.base = base
        self.stats = stats
        self.session = aiohttp.ClientSession(
            base_url=None,
            connector=connector,
            connector_owner=False,
            # Loopback is an IP address: aiohttp keeps cookies for it only when told so.
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=60),
            headers={"Origin": base},
        )
        self.callbacks: list[Callback] = []
        self.shell: PageState | None = None
        self.page: PageState | None = None

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, name: str, *, expect: int = 200, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            async with self.session.get(self.base + path, allow_redirects=False, **kw) as resp:
                body = await resp.read()
                ok = resp.status == expect
                self.stats.add(name, time.perf_counter() - started, ok, _detail(resp, body))
                return body if ok else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.add(name, time.perf_counter() - started, False, repr(exc))
            return None

    async def post_form(self, path: str, data: dict[str, str], name: str) -> bool:
        started = time.perf_counter()
        try:
            async with self.session.post(
                self.base + path, data=data, allow_redirects=False
            ) as resp:
                body = await resp.read()
                ok = resp.status == 303
                self.stats.add(name, time.perf_counter() - started, ok, _detail(resp, body))
                return ok
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.add(name, time.perf_counter() - started, False, repr(exc))
            return False

    async def callback(self, cb: Callback, body: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """POST one callback; 204 (nothing to update) counts as a success, as in Dash."""
        name = f"cb {cb.name}"
        started = time.perf_counter()
        try:
            async with self.session.post(self.base + "/_dash-update-component", json=body) as resp:
                raw = await resp.read()
                ok = resp.status in (200, 204)
                self.stats.add(name, time.perf_counter() - started, ok, _detail(resp, raw))
                return ok, (json.loads(raw) if resp.status == 200 else {})
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.stats.add(name, time.perf_counter() - started, False, repr(exc))
            return False, {}

    async def load_app(self, path: str, search: str, name: str) -> bool:
        """A full page load: the HTML, then the layout and dependencies, then the page."""
        if await self.get(path + search, f"GET {name}") is None:
            return False
        layout = await self.get("/_dash-layout", "GET /_dash-layout")
        deps = await self.get("/_dash-dependencies", "GET /_dash-dependencies")
        if layout is None or deps is None:
            return False
        self.callbacks = parse_dependencies(json.loads(deps))
        self.shell = PageState(self.callbacks)
        new_ids = self.shell.add_layout(json.loads(layout))
        # The shell's own initial callbacks (freshness pill) fire with the page's.
        return await self.navigate(path, search, name, shell_ids=new_ids)

    async def navigate(
        self, path: str, search: str, name: str, *, shell_ids: set[str] | None = None
    ) -> bool:
        """Route to a page inside the app: the pages router, then the new content's callbacks."""
        assert self.shell is not None
        page = PageState(self.callbacks, dict(self.shell.types), dict(self.shell.props))
        page.props[("_pages_location", "pathname")] = path
        page.props[("_pages_location", "search")] = search
        self.page = page
        router = next(cb for cb in self.callbacks if cb.name == "_pages_content")
        changed = {("_pages_location", "pathname"), ("_pages_location", "search")}
        started = time.perf_counter()
        ok, answer = await self.callback(router, page.request(router, changed))
        if not ok:
            return False
        _, new_ids = page.apply(answer)
        first = page.initial_callbacks(new_ids | (shell_ids or set()))
        ok = await self.burst(first, set())
        self.stats.add(
            f"page {name} (router + initial callbacks)", time.perf_counter() - started, ok
        )
        return ok

    async def burst(self, pending: list[Callback], changed: set[Prop]) -> bool:
        """Fire callbacks as the renderer does: in parallel, chained ones after their inputs."""
        assert self.page is not None
        page = self.page
        fired: set[str] = set()
        ok = True
        pending = list({cb.output: cb for cb in pending}.values())
        while pending:
            waiting_on = {p for cb in pending for p in cb.outputs}
            ready = [cb for cb in pending if not any(i in waiting_on for i in cb.inputs)] or pending
            pending = [cb for cb in pending if cb not in ready]
            bodies = [page.request(cb, changed) for cb in ready]
            fired |= {cb.output for cb in ready}
            answers = await asyncio.gather(
                *(self.callback(cb, b) for cb, b in zip(ready, bodies, strict=True))
            )
            for good, answer in answers:
                ok = ok and good
                now_changed, new_ids = page.apply(answer)
                changed |= now_changed
                more = page.listeners(now_changed) + page.initial_callbacks(new_ids)
                pending += [cb for cb in more if cb.output not in fired and cb not in pending]
        return ok

    async def stay(self, until: float, group_names: dict[str, str] | None = None) -> None:
        """Stay on the page until `until` (monotonic), its intervals ticking on schedule."""
        assert self.page is not None
        page = self.page
        intervals = page.intervals()
        due = {cid: time.monotonic() + every for cid, every in intervals.items()}
        while due:
            cid = min(due, key=due.__getitem__)
            if due[cid] > until:
                break
            await asyncio.sleep(max(0.0, due[cid] - time.monotonic()))
            due[cid] = max(due[cid] + intervals[cid], time.monotonic())
            n = int(page.props.get((cid, "n_intervals")) or 0) + 1
            page.props[(cid, "n_intervals")] = n
            trigger = {(cid, "n_intervals")}
            started = time.perf_counter()
            ok = await self.burst(page.listeners(trigger), set(trigger))
            label = (group_names or {}).get(cid, f"tick {cid}")
            self.stats.add(label, time.perf_counter() - started, ok)
        await asyncio.sleep(max(0.0, until - time.monotonic()))


def _detail(resp: aiohttp.ClientResponse, body: bytes) -> str:
    return f"{resp.method} {resp.url.path} -> {resp.status}: {body[:300]!r}"


async def wall_screen(
    base: str,
    token: str,
    stats: Stats,
    connector: aiohttp.BaseConnector,
    *,
    refresh_s: int,
    start_at: float,
    until: float,
) -> None:
    """A NOC wall: kiosk link, overview in the wall theme, then its refresh intervals."""
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    browser = Browser(base, stats, connector)
    try:
        if await browser.get(f"/kiosk/{token}", "GET /kiosk/<token>", expect=303) is None:
            return
        if not await browser.load_app("/", f"?kiosk=1&refresh={refresh_s}", "/ (wall)"):
            return
        await browser.stay(until, {WALL_REFRESH_ID: "wall refresh (every callback of one tick)"})
    finally:
        await browser.close()


async def engineer(
    base: str,
    username: str,
    password: str,
    api_token: str,
    stats: Stats,
    connector: aiohttp.BaseConnector,
    *,
    think_s: tuple[float, float],
    start_at: float,
    until: float,
    rng: random.Random,
) -> None:
    """An engineer: sign in, browse the three pages, read the API, think with the tab open."""
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    browser = Browser(base, stats, connector)
    try:
        if await browser.get("/login", "GET /login") is None:
            return
        if not await browser.post_form(
            "/login", {"username": username, "password": password, "next": "/"}, "POST /login"
        ):
            return
        loaded = False
        auth = {"Authorization": f"Bearer {api_token}"}
        while time.monotonic() < until:
            path = rng.choice(ENGINEER_PAGES)
            if not loaded:
                loaded = await browser.load_app(path, "", path)
            else:
                await browser.navigate(path, "", path)
            for read in rng.sample(REST_READS, 2):
                await browser.get(read, f"GET {read.split('?')[0]}", headers=auth)
            if browser.page is None:
                await asyncio.sleep(5)
                continue
            await browser.stay(min(until, time.monotonic() + rng.uniform(*think_s)))
    finally:
        await browser.close()
