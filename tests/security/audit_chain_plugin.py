"""pytest plugin: after the whole run, verify the audit chain of every SQLite database left.

Every test app writes its audit trail into a database under pytest's base temporary
directory; a broken chain there means some code path wrote, edited or removed audit rows
outside `services.audit.record`. Tests that break a chain on purpose say so with
`mark_tampered(data_dir)`. Under pytest-xdist the controller checks the workers' directories
too (they live below its base directory). PostgreSQL test databases are dropped by their
fixtures and are verified by the tests that use them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from services import audit

MARKER = "AUDIT_TAMPERED"


def mark_tampered(data_dir: Path) -> None:
    """Declare that databases in `data_dir` have a deliberately broken audit chain."""
    (data_dir / MARKER).write_text("audit rows edited on purpose by a test\n")


def verify_file(path: Path) -> audit.VerifyResult | None:
    """The chain check of one SQLite file, or None when it holds no audit trail."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as probe:
            has_trail = probe.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'"
            ).fetchone()
    except sqlite3.DatabaseError:
        return None  # not a database (or not SQLite)
    if not has_trail:
        return None
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with Session(engine) as session:
            return audit.verify(session)
    finally:
        engine.dispose()


def broken_chains(base: Path) -> list[str]:
    """One line per database below `base` whose chain fails and that is not marked tampered."""
    problems = []
    for path in sorted(base.rglob("*.db")):
        if _declared_tampered(path, base):
            continue
        result = verify_file(path)
        if result is not None and not result.ok:
            problems.append(
                f"{path.relative_to(base)}: event #{result.broken_seq}: {result.problem}"
            )
    return problems


def _declared_tampered(path: Path, base: Path) -> bool:
    """True when a folder between `path` and `base` (inclusive) carries the marker."""
    for parent in path.parents:
        if (parent / MARKER).exists():
            return True
        if parent == base:
            return False
    return False


class AuditChainCheck:
    """Registered from tests/conftest.py; fails the run when a chain is broken."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        if hasattr(config, "workerinput"):
            return  # xdist worker: the controller checks every worker's directory
        factory = getattr(config, "_tmp_path_factory", None)
        if factory is None:
            return
        self.problems = broken_chains(factory.getbasetemp())
        if self.problems and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.problems:
            return
        terminalreporter.section("audit chain broken", red=True)
        for line in self.problems:
            terminalreporter.line(line)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(AuditChainCheck(), "beacon-audit-chain-check")
