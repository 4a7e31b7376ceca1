"""Helpers for Beacon's browser tests: sign-in, render waits, error scans, screenshots."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import dash
from dash.testing.composite import DashComposite
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

REPO_ROOT = Path(__file__).parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"
DESK = (1440, 900)
WALL = (1920, 1080)
RENDER_TIMEOUT = 20
# Text that only appears when something failed: Dash's own messages and server tracebacks.
ERROR_MARKERS = (
    "Traceback",
    "Internal Server Error",
    "Callback error",
    "Error loading layout",
    "Error loading dependencies",
    "Callback failed",
)

# Returns "" once the page is fully drawn, otherwise what it is still waiting for.
_RENDER_STATE_JS = """
const content = document.getElementById("_pages_content");
if (!content || !content.children.length) { return "page container empty"; }
if (!window.store) { return "renderer not started"; }
if (window.store.getState().isLoading) { return "callbacks pending"; }
if (!content.querySelector("h1, h2")) { return "no page heading"; }
for (const graph of content.querySelectorAll(".js-plotly-plot, .dash-graph")) {
    if (!graph.querySelector(".main-svg")) { return "chart " + graph.id + " not drawn"; }
}
for (const grid of content.querySelectorAll(".ag-root-wrapper")) {
    const rows = grid.querySelector(".ag-center-cols-container .ag-row");
    const empty = grid.querySelector(".ag-overlay-no-rows-wrapper, .ag-overlay-no-rows-center");
    if (grid.querySelector(".ag-overlay-loading-wrapper")) { return "grid loading"; }
    if (!rows && !empty) { return "grid not filled"; }
}
return "";
"""


@dataclass(frozen=True)
class Page:
    """A registered page that can be opened without filling path variables."""

    slug: str
    path: str
    name: str


class ServerErrors(logging.Handler):
    """Collects ERROR records logged anywhere in the server process."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")

    def drain(self) -> list[str]:
        """The errors logged since the last drain."""
        messages, self.messages = self.messages, []
        return messages


def registered_pages() -> list[Page]:
    """Every page in Dash's registry whose path needs no variables, in navigation order."""
    pages = [
        Page(slug=module.split(".")[-1], path=page["path"], name=page["name"])
        for module, page in sorted(
            dash.page_registry.items(), key=lambda item: item[1].get("order") or 0
        )
        if not page.get("path_template")
    ]
    assert pages, "no pages registered"
    return pages


def sign_in(
    duo: DashComposite,
    username: str,
    password: str,
    *,
    landing: str = "/",
    size: tuple[int, int] = DESK,
    base_url: str | None = None,
) -> None:
    """Sign in through the real login form in a fresh session and wait for `landing` to render."""
    base = base_url or duo.server_url
    driver = duo.driver
    driver.get(base + "/healthz")  # cookies can only be deleted on the app's own origin
    driver.delete_all_cookies()
    set_viewport(duo, size)
    driver.get(f"{base}/login?next={quote(landing)}")
    duo.wait_for_element("#username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    duo.wait_for_element("#shell", timeout=RENDER_TIMEOUT)
    assert urlsplit(driver.current_url).path == urlsplit(landing).path
    wait_rendered(duo)


def set_viewport(duo: DashComposite, size: tuple[int, int]) -> None:
    """Resize the window so the page itself gets exactly `size` pixels."""
    if viewport(duo) == size:
        return
    width, height = size
    frame_width, frame_height = duo.driver.execute_script(
        "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];"
    )
    duo.driver.set_window_size(width + frame_width, height + frame_height)
    WebDriverWait(duo.driver, 5, poll_frequency=0.1).until(
        lambda _: viewport(duo) == size, message=f"viewport did not become {size}"
    )


def open_page(duo: DashComposite, path: str, *, size: tuple[int, int] = DESK) -> None:
    """Load `path` with a viewport of `size` and wait until its content is drawn."""
    set_viewport(duo, size)
    duo.driver.get(duo.server_url + path)
    wait_rendered(duo)


def wait_rendered(duo: DashComposite, timeout: float = RENDER_TIMEOUT) -> None:
    """Wait until the page container is filled, callbacks settled and charts and grids drawn."""
    state: dict[str, Any] = {"last": "not checked", "settled_at": None}

    def settled(driver: Any) -> bool:
        problem = driver.execute_script(_RENDER_STATE_JS)
        state["last"] = problem
        if problem:
            state["settled_at"] = None
            return False
        # Settled twice in a row, a moment apart: a callback chain may still be starting.
        if state["settled_at"] is None:
            state["settled_at"] = time.monotonic()
            return False
        return time.monotonic() - state["settled_at"] >= 0.3

    WebDriverWait(duo.driver, timeout, poll_frequency=0.1).until(
        settled, message=f"page did not finish rendering: {state['last']}"
    )


def page_problems(duo: DashComposite, server_errors: ServerErrors) -> list[str]:
    """Everything that says the page failed: console errors, Dash error UI, server errors."""
    problems = [f"console: {entry['message']}" for entry in duo.get_logs()]
    problems += [f"server: {message}" for message in server_errors.drain()]
    fe_errors = duo.driver.execute_script(
        "return Array.from(document.querySelectorAll("
        "'.dash-fe-error__title, .dash-fe-errors, .notice-bad'"
        ")).map(e => e.innerText.trim()).filter(Boolean);"
    )
    problems += [f"error shown: {text}" for text in fe_errors]
    body = duo.driver.execute_script("return document.body.innerText;")
    problems += [f"page text contains {marker!r}" for marker in ERROR_MARKERS if marker in body]
    return problems


def clear_problems(duo: DashComposite, server_errors: ServerErrors) -> None:
    """Forget console and server errors from before this point."""
    duo.get_logs()
    server_errors.drain()


def screenshot(duo: DashComposite, name: str) -> Path:
    """Save the visible window as test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert duo.driver.save_screenshot(str(path)), f"screenshot {name} failed"
    return path


def full_page_screenshot(duo: DashComposite, name: str) -> Path:
    """Save the whole page as <name>.png by growing the viewport to the page's height."""
    width, height = viewport(duo)
    full_height = duo.driver.execute_script("return document.documentElement.scrollHeight;")
    try:
        set_viewport(duo, (width, max(height, int(full_height))))
        wait_rendered(duo)
        return screenshot(duo, name)
    finally:
        set_viewport(duo, (width, height))


def viewport(duo: DashComposite) -> tuple[int, int]:
    """The inner size of the browser window."""
    width, height = duo.driver.execute_script("return [window.innerWidth, window.innerHeight];")
    return int(width), int(height)


def visible(duo: DashComposite, selector: str) -> list[Any]:
    """Elements matching `selector` that are displayed."""
    return [e for e in duo.driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]
