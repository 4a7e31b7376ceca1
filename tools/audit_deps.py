"""Known vulnerabilities of the installed distributions, from PyPI's project JSON.

pip-audit asks PyPI's per-release JSON API (`/pypi/<name>/<version>/json`) or OSV. Where
neither answers, as on a closed network whose PyPI mirror serves only the project-level
JSON (`/pypi/<name>/json`), pip-audit can audit nothing. The project-level document
still carries PyPI's advisories (OSV/PYSEC/GHSA ids) for the project's *newest* release,
so every installed distribution that is at its newest release can be checked exactly;
one that is behind cannot be checked this way and is listed as unchecked, never counted
as clean.

Exit status: 1 when a checked distribution has an advisory, 2 when PyPI did not answer at
all, 0 otherwise (unchecked distributions are reported, with why, on standard output).

    python tools/audit_deps.py [--index https://pypi.org/pypi] [--ignore ID ...]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name

DEFAULT_INDEX = "https://pypi.org/pypi"


@dataclass(frozen=True)
class Project:
    """What PyPI says of a project: its newest release and the advisories against it."""

    newest: str
    advisories: tuple[str, ...]


@dataclass
class Audit:
    vulnerable: dict[str, list[str]] = field(default_factory=dict)  # "name version" -> ids
    clean: list[str] = field(default_factory=list)
    behind: list[str] = field(default_factory=list)  # installed older than newest: unchecked
    not_on_index: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # the index gave an error


Fetch = Callable[[str], Project | None]


def installed() -> dict[str, str]:
    """Installed distributions by canonical name (the first one found wins, as for import).

    A project installed from a local folder (Beacon itself, editable) is left out: a PyPI
    project of the same name is somebody else's.
    """
    found: dict[str, str] = {}
    local: set[str] = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        found.setdefault(canonicalize_name(name), dist.version)
        if _from_local_folder(dist):
            # Its source folder's own egg-info may be found first (the folder on sys.path).
            local.add(canonicalize_name(name))
    return {name: version for name, version in found.items() if name not in local}


def _from_local_folder(dist: importlib.metadata.Distribution) -> bool:
    """True for an install from a directory (PEP 610 `direct_url.json` with `dir_info`)."""
    text = dist.read_text("direct_url.json")
    return bool(text) and "dir_info" in json.loads(text)


def pypi_fetch(index: str, timeout_s: float = 20.0) -> Fetch:
    """A fetcher of `<index>/<name>/json`; None when the project is not on the index."""

    def fetch(name: str) -> Project | None:
        try:
            with urllib.request.urlopen(f"{index}/{name}/json", timeout=timeout_s) as reply:  # noqa: S310 - https index URL from the command line
                document = json.load(reply)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        ids = tuple(str(v["id"]) for v in document.get("vulnerabilities") or [])
        return Project(newest=str(document["info"]["version"]), advisories=ids)

    return fetch


def audit(
    dists: dict[str, str], fetch: Fetch, *, ignore: Iterable[str] = (), workers: int = 8
) -> Audit:
    ignored = set(ignore)
    result = Audit()

    def one(name: str) -> tuple[str, Project | Exception | None]:
        try:
            return name, fetch(name)
        except Exception as error:  # noqa: BLE001 - reported per project, never fatal alone
            return name, error

    with ThreadPoolExecutor(workers) as pool:
        answers = list(pool.map(one, sorted(dists)))
    for name, answer in answers:
        label = f"{name} {dists[name]}"
        if isinstance(answer, Exception):
            result.failed.append(f"{label}: {answer}")
        elif answer is None:
            result.not_on_index.append(label)
        elif answer.newest != dists[name]:
            result.behind.append(f"{label} (newest {answer.newest})")
        elif found := [a for a in answer.advisories if a not in ignored]:
            result.vulnerable[label] = found
        else:
            result.clean.append(label)
    return result


def report(result: Audit, out: Callable[[str], None] = print) -> int:
    checked = len(result.clean) + len(result.vulnerable)
    total = checked + len(result.behind) + len(result.not_on_index) + len(result.failed)
    out(f"checked {checked} of {total} installed distributions (those at their newest release)")
    for label, ids in sorted(result.vulnerable.items()):
        out(f"VULNERABLE {label}: {', '.join(ids)}")
    for label in result.behind:
        out(f"not checked, behind the newest release: {label}")
    for label in result.not_on_index:
        out(f"not on the index (a local project): {label}")
    for label in result.failed:
        out(f"not checked, the index failed: {label}")
    if result.vulnerable:
        return 1
    return 2 if total and len(result.failed) == total else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default=DEFAULT_INDEX, help="PyPI JSON API root")
    parser.add_argument("--ignore", action="append", default=[], help="advisory id to accept")
    args = parser.parse_args(argv)
    return report(audit(installed(), pypi_fetch(args.index.rstrip("/")), ignore=args.ignore))


if __name__ == "__main__":
    sys.exit(main())
