"""The fallback dependency audit reads PyPI's project JSON over HTTP and never calls an
unchecked distribution clean."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tools import audit_deps

# name -> (newest release, advisories against it); absent names answer 404, "broken" 500.
INDEX = {
    "flask": ("3.1.2", []),
    "jinja2": ("3.1.6", ["GHSA-aaaa-bbbb-cccc", "PYSEC-2099-1"]),
    "numpy": ("2.5.5", []),
}


class _Index(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        name = self.path.strip("/").split("/")[0]
        if name == "broken":
            self.send_error(500)
            return
        if name not in INDEX or not self.path.endswith("/json"):
            self.send_error(404)
            return
        newest, ids = INDEX[name]
        body = json.dumps(
            {"info": {"version": newest}, "vulnerabilities": [{"id": i} for i in ids]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def index() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_each_distribution_lands_in_exactly_one_verdict(index: str) -> None:
    dists = {
        "flask": "3.1.2",  # at the newest release, no advisory: clean
        "jinja2": "3.1.6",  # at the newest release, two advisories
        "numpy": "2.4.6",  # behind: the newest release's advisories say nothing of ours
        "in-house-lib": "1.0",  # not on the index
        "broken": "1.0",  # the index fails
    }
    result = audit_deps.audit(dists, audit_deps.pypi_fetch(index, timeout_s=5))
    assert result.clean == ["flask 3.1.2"]
    assert result.vulnerable == {"jinja2 3.1.6": ["GHSA-aaaa-bbbb-cccc", "PYSEC-2099-1"]}
    assert result.behind == ["numpy 2.4.6 (newest 2.5.5)"]
    assert result.not_on_index == ["in-house-lib 1.0"]
    assert len(result.failed) == 1
    assert result.failed[0].startswith("broken 1.0: HTTP Error 500")
    lines: list[str] = []
    assert audit_deps.report(result, lines.append) == 1
    assert lines[0] == "checked 2 of 5 installed distributions (those at their newest release)"
    assert "VULNERABLE jinja2 3.1.6: GHSA-aaaa-bbbb-cccc, PYSEC-2099-1" in lines
    assert "not checked, behind the newest release: numpy 2.4.6 (newest 2.5.5)" in lines


def test_an_accepted_advisory_is_ignored_by_id_and_only_that_one(index: str) -> None:
    fetch = audit_deps.pypi_fetch(index, timeout_s=5)
    one = audit_deps.audit({"jinja2": "3.1.6"}, fetch, ignore=["PYSEC-2099-1"])
    assert one.vulnerable == {"jinja2 3.1.6": ["GHSA-aaaa-bbbb-cccc"]}
    both = audit_deps.audit(
        {"jinja2": "3.1.6"}, fetch, ignore=["PYSEC-2099-1", "GHSA-aaaa-bbbb-cccc"]
    )
    assert both.clean == ["jinja2 3.1.6"]
    assert audit_deps.report(both, lambda _: None) == 0


def test_an_index_that_answers_nothing_fails_the_audit() -> None:
    def down(name: str) -> audit_deps.Project | None:
        raise OSError("connection refused")

    result = audit_deps.audit({"flask": "3.1.2", "numpy": "2.4.6"}, down)
    assert audit_deps.report(result, lambda _: None) == 2


def test_the_installed_set_leaves_out_the_local_project() -> None:
    found = audit_deps.installed()
    assert "beacon" not in found  # installed editable from this folder
    assert found["flask"]  # a dependency from the index is there, with its version
