"""Explanations, change-window policy and severity: the words and numbers humans act on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.anomaly import changes, detect, explain, severity
from services.anomaly.episodes import PeriodResult

T0 = datetime(2026, 11, 17, 17, 0, tzinfo=UTC)  # Tuesday 18:00 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")
SUBJECT = explain.Subject("SITE-0042-C2", "prb_util_dl", "%")
PEAK = PeriodResult(T0, 93.1, 41.0, 30.2, 52.3, 7.4, 0.93, True)
SITE = "SubNetwork=North,ManagedElement=SITE-0042"
PLACE = changes.Place(f"{SITE},EUtranCellFDD=C2", (SITE,), "RAN", "North")


def window(kind: str = "maintenance", **scope: list[str]) -> changes.Window:
    return changes.Window(
        7, "Swap baseband", kind, scope, T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    )


def test_explanation_has_every_contract_key_and_plain_summary() -> None:
    facts = explain.Facts(
        contributing=[{"kpi": "active_users", "sigma": 5.0, "observed": 300, "expected": 90}],
        peers=explain.peers_doc("cells LTE Ericsson in North", 9, 40.0, [], "%"),
        changes=[window("change")],
        alarms=[{"id": 3, "severity": "major", "text": "S1 link down", "raised_at": "x",
                 "state": "active"}],
        quality={"flags": ["late_data"], "text": "Confidence lowered: the value arrived late."},
        similar=[{"anomaly_id": 1, "started_at": "x", "element": "SITE-0042-C2",
                  "kpi": "prb_util_dl", "sigma": 6.0, "verdict": "true_anomaly"}],
    )  # fmt: skip
    doc = explain.explanation(SUBJECT, PEAK, started_at=T0, ended_at=None, zone=BERLIN, facts=facts)
    assert doc["direction"] == "above"
    assert doc["band"] == [30.2, 52.3]
    assert doc["sigma"] == 7.4
    assert doc["seasonal"]["slot"] == "Tuesday 18:00"
    assert doc["seasonal"]["text"].startswith("Typical for Tuesday 18:00 is 41.0%, normally within")
    assert doc["contributing_kpis"][0]["kpi"] == "active_users"
    assert doc["peers"]["size"] == 9
    assert doc["changes"][0]["id"] == 7
    assert doc["alarms"][0]["text"] == "S1 link down"
    assert doc["data_quality"]["flags"] == ["late_data"]
    assert doc["similar"][0]["verdict"] == "true_anomaly"
    assert doc["revisions"] == []
    summary = doc["summary"]
    assert summary.startswith("prb_util_dl on SITE-0042-C2 reached 93.1%, above the expected 41.0%")
    assert "7.4σ" in summary
    assert "ongoing" in summary
    assert "active_users" in summary
    assert "1 overlapping alarm" in summary


def test_seasonal_context_uses_the_display_time_zone() -> None:
    assert explain.seasonal(PEAK, "%", UTC)["slot"] == "Tuesday 17:00"
    assert explain.seasonal(PEAK, "%", BERLIN)["slot"] == "Tuesday 18:00"


def test_a_drop_reads_as_below_and_an_ended_episode_gives_its_end() -> None:
    low = PeriodResult(T0, 2.0, 41.0, 30.2, 52.3, -9.0, 0.9, True)
    doc = explain.explanation(
        SUBJECT, low, started_at=T0, ended_at=T0 + timedelta(hours=1), zone=UTC,
        facts=explain.Facts(),
    )  # fmt: skip
    assert doc["direction"] == "below"
    assert "below the expected" in doc["summary"]
    assert "to 18:00" in doc["summary"]


def test_a_sustained_shift_inside_the_band_is_not_called_a_band_breach() -> None:
    """Alerts from the slower statistic must not claim the period left the band."""
    shifted = PeriodResult(T0, 58.8, 48.6, 0.0, 100.0, 2.9, 0.91, True)
    doc = explain.explanation(
        SUBJECT, shifted, started_at=T0, ended_at=T0, zone=UTC, facts=explain.Facts()
    )
    summary = doc["summary"]
    assert "sustained shift rather than a spike" in summary
    assert "no single period crossed the alert threshold 100%" in summary
    assert "at Tue 17:00" in summary  # a one-period episode has one time, not "from X to X"
    assert "reached" not in summary


def test_normal_range_is_a_few_sigma_and_the_alert_threshold_stays_separate() -> None:
    """People see expected +- NORMAL_SIGMA; the ~28-sigma alert band is named apart."""
    alert = detect.band_sigma(detect.DEFAULT_CONFIG)
    spread = 2.0
    peak = PeriodResult(
        T0, 93.1, 41.0, 41.0 - alert * spread, 41.0 + alert * spread, 26.0, 0.9, True
    )
    doc = explain.explanation(SUBJECT, peak, started_at=T0, ended_at=None, zone=BERLIN,
                              facts=explain.Facts())  # fmt: skip
    normal = doc["normal"]
    low, high = normal["range"]
    assert low == pytest.approx(41.0 - detect.NORMAL_SIGMA * spread)
    assert high == pytest.approx(41.0 + detect.NORMAL_SIGMA * spread)
    assert normal["alert_threshold"] == pytest.approx(41.0 + alert * spread)
    assert normal["coverage"] == detect.NORMAL_COVERAGE
    assert doc["seasonal"]["normal_range"] == normal["range"]
    # The summary, the seasonal text and the panels use the same words.
    assert "normal range 35.0–47.0%" in doc["summary"]
    assert f"alert threshold {41.0 + alert * spread:.1f}%" in doc["summary"]
    assert "normally within 35.0–47.0%" in doc["seasonal"]["text"]
    assert "about 95% of ordinary periods" in normal["text"]
    assert "band" not in doc["summary"]


def test_peers_text_says_when_the_problem_is_local() -> None:
    doc = explain.peers_doc("cells LTE Nokia in East", 6, 12.0, [], "%")
    assert "None of the other 5" in doc["text"]
    hit = explain.peers_doc("cells", 6, 12.0, [{"element_id": 2, "name": "B", "sigma": 4}], "%")
    assert hit["text"].startswith("1 of 6 cells deviate")


def test_change_scope_matching() -> None:
    assert changes.in_scope({}, PLACE)  # network-wide
    assert changes.in_scope({"elements": [SITE]}, PLACE)  # a site covers its cells
    assert not changes.in_scope({"elements": ["SubNetwork=South,ManagedElement=X"]}, PLACE)
    assert changes.in_scope({"domains": ["ran"], "regions": ["North"]}, PLACE)
    assert not changes.in_scope({"domains": ["RAN"], "regions": ["South"]}, PLACE)
    assert not changes.in_scope({"domains": ["Transport"]}, PLACE)


def test_maintenance_suppresses_and_freeze_only_annotates() -> None:
    found = changes.overlapping([window()], PLACE, start=T0, end=T0 + timedelta(minutes=15))
    window_id, reason = changes.suppression(found, tz_label="UTC")
    assert window_id == 7
    assert reason is not None
    assert "maintenance window “Swap baseband”" in reason
    freeze = changes.overlapping([window("freeze")], PLACE, start=T0, end=T0)
    assert freeze
    assert changes.suppression(freeze, tz_label="UTC") == (None, None)


def test_windows_that_do_not_overlap_in_time_do_not_apply() -> None:
    later = T0 + timedelta(hours=3)
    assert changes.overlapping([window()], PLACE, start=later, end=later) == []


def test_severity_grows_with_criticality_and_reach() -> None:
    quiet_cell = severity.severity_score(criticality=2, cells=1, users=10)
    busy_cell = severity.severity_score(criticality=3, cells=1, users=600)
    whole_site = severity.severity_score(criticality=3, cells=3, users=900)
    assert quiet_cell < busy_cell < whole_site
    assert severity.severity_label(quiet_cell) == "warning"
    assert severity.severity_label(busy_cell) == "major"
    assert severity.severity_label(whole_site) == "critical"
    assert severity.severity_label(6.0) == "major"
