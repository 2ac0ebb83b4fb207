"""Alert rules at and around every boundary (issue 5; clinical-facts §1.5, §2.3)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ketasafe.monitoring.alert_rules import (
    DEFAULT_THRESHOLDS,
    THRESHOLD_BOUNDS,
    AlertThresholds,
    evaluate_vitals,
    is_feed_stale,
    threshold_errors,
    threshold_notes,
)
from ketasafe.monitoring.hl7.codes import VitalKind

D = Decimal


def codes(vitals: dict[VitalKind, Decimal], baseline: dict[VitalKind, Decimal] | None = None,
          th: AlertThresholds = DEFAULT_THRESHOLDS) -> list[str]:  # fmt: skip
    return [f.code for f in evaluate_vitals(vitals, baseline, th)]


def test_defaults_match_issue_5() -> None:
    th = DEFAULT_THRESHOLDS
    assert (th.systolic_high, th.diastolic_high, th.spo2_low) == (D(180), D(110), D(92))
    assert (th.hr_high, th.hr_low, th.rr_low) == (D(110), D(50), D(8))
    assert (th.rise_systolic, th.rise_diastolic, th.stale_after_s) == (D(40), D(25), D(180))


def test_every_threshold_has_a_source_note() -> None:
    notes = threshold_notes()
    assert set(notes) == {f.name for f in fields(AlertThresholds)}
    assert all(len(note) > 20 for note in notes.values())
    assert notes["systolic_high"].startswith("[U]")


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("systolic", "179", []), ("systolic", "179.9", []), ("systolic", "180", ["SBP_HIGH"]),
        ("systolic", "181", ["SBP_HIGH"]),
        ("diastolic", "109", []), ("diastolic", "110", ["DBP_HIGH"]),
        ("diastolic", "111", ["DBP_HIGH"]),
        ("spo2", "93", []), ("spo2", "92", []), ("spo2", "91.9", ["SPO2_LOW"]),
        ("spo2", "91", ["SPO2_LOW"]),
        ("heart_rate", "110", []), ("heart_rate", "110.1", ["HR_HIGH"]),
        ("heart_rate", "111", ["HR_HIGH"]),
        ("heart_rate", "50", []), ("heart_rate", "49", ["HR_LOW"]), ("heart_rate", "0", ["HR_LOW"]),
        ("resp_rate", "8", []), ("resp_rate", "7", ["RR_LOW"]), ("resp_rate", "9", []),
        ("map", "200", []), ("temperature", "41", []), ("weight", "300", []),
    ],
)  # fmt: skip
def test_threshold_boundaries(kind: VitalKind, value: str, expected: list[str]) -> None:
    assert codes({kind: D(value)}) == expected


def test_pulse_rate_alone_is_judged_with_the_heart_rate_rules() -> None:
    (finding,) = evaluate_vitals({"pulse_rate": D(120)})
    assert (finding.code, finding.kind) == ("HR_HIGH", "pulse_rate")
    assert "Pulse rate" in finding.message


def test_an_abnormal_pulse_rate_is_not_hidden_by_a_normal_heart_rate() -> None:
    (finding,) = evaluate_vitals({"heart_rate": D(72), "pulse_rate": D(140)})
    assert (finding.code, finding.kind) == ("HR_HIGH", "pulse_rate")
    low = evaluate_vitals({"heart_rate": D(72), "pulse_rate": D(40)})
    assert [(f.code, f.kind) for f in low] == [("HR_LOW", "pulse_rate")]


def test_heart_rate_and_pulse_rate_both_abnormal_give_a_finding_each() -> None:
    found = evaluate_vitals({"heart_rate": D(130), "pulse_rate": D(135)})
    assert [(f.code, f.kind) for f in found] == [("HR_HIGH", "heart_rate"), ("HR_HIGH", "pulse_rate")]


@pytest.mark.parametrize(
    ("now", "base", "expected"),
    [("159", "120", []), ("160", "120", ["SBP_RISE"]), ("161", "120", ["SBP_RISE"]),
     ("100", "120", [])],
)  # fmt: skip
def test_systolic_rise_boundary(now: str, base: str, expected: list[str]) -> None:
    assert codes({"systolic": D(now)}, {"systolic": D(base)}) == expected


@pytest.mark.parametrize(
    ("now", "base", "expected"),
    [("104", "80", []), ("105", "80", ["DBP_RISE"]), ("106", "80", ["DBP_RISE"])],
)
def test_diastolic_rise_boundary(now: str, base: str, expected: list[str]) -> None:
    assert codes({"diastolic": D(now)}, {"diastolic": D(base)}) == expected


def test_rise_finding_carries_rise_and_baseline() -> None:
    (finding,) = evaluate_vitals({"systolic": D(165)}, {"systolic": D(120)})
    assert (finding.value, finding.threshold, finding.baseline) == (D(45), D(40), D(120))
    assert finding.message == (
        "Systolic 165 mmHg is 45 mmHg above the session baseline 120 (alert at +40)"
    )


def test_absolute_and_rise_alerts_both_fire_in_a_fixed_order() -> None:
    vitals: dict[VitalKind, Decimal] = {"systolic": D(185), "diastolic": D(112), "spo2": D(88)}
    baseline: dict[VitalKind, Decimal] = {"systolic": D(130), "diastolic": D(80)}
    assert codes(vitals, baseline) == ["SBP_HIGH", "DBP_HIGH", "SPO2_LOW", "SBP_RISE", "DBP_RISE"]


def test_no_baseline_or_missing_kinds_judge_nothing_extra() -> None:
    assert codes({}) == []
    assert codes({"systolic": D(170)}, None) == []
    assert codes({"systolic": D(170)}, {"diastolic": D(60)}) == []


def test_clinic_thresholds_replace_the_defaults() -> None:
    strict = replace(DEFAULT_THRESHOLDS, systolic_high=D(160), spo2_low=D(94))
    assert codes({"systolic": D(160), "spo2": D(93)}, th=strict) == ["SBP_HIGH", "SPO2_LOW"]
    assert codes({"systolic": D(160), "spo2": D(93)}) == []


T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("elapsed", "stale"),
    [(timedelta(0), False), (timedelta(seconds=179, microseconds=999999), False),
     (timedelta(seconds=180), True), (timedelta(minutes=10), True)],
)  # fmt: skip
@pytest.mark.parametrize("state", ["dosing", "monitoring"])
def test_stale_feed_boundary(elapsed: timedelta, stale: bool, state: str) -> None:
    assert is_feed_stale(T0, T0 + elapsed, state) is stale


@pytest.mark.parametrize("state", ["scheduled", "checked_in", "discharged", "cancelled", ""])
def test_other_states_are_never_stale(state: str) -> None:
    assert is_feed_stale(None, T0 + timedelta(hours=5), state) is False


def test_state_entry_gives_a_grace_period_and_no_data_at_all_is_stale() -> None:
    assert is_feed_stale(None, T0 + timedelta(seconds=60), "dosing", state_since=T0) is False
    assert is_feed_stale(None, T0 + timedelta(seconds=180), "dosing", state_since=T0) is True
    assert is_feed_stale(None, T0, "dosing") is True
    # Old numerics from before the state began do not make a fresh session stale.
    old = T0 - timedelta(hours=1)
    assert is_feed_stale(old, T0 + timedelta(seconds=30), "monitoring", state_since=T0) is False


def test_custom_stale_period() -> None:
    th = replace(DEFAULT_THRESHOLDS, stale_after_s=D(60))
    assert is_feed_stale(T0, T0 + timedelta(seconds=60), "dosing", th) is True
    assert is_feed_stale(T0, T0 + timedelta(seconds=59), "dosing", th) is False


def test_every_threshold_has_sanity_bounds_and_the_defaults_are_within_them() -> None:
    defaults = {f.name: getattr(DEFAULT_THRESHOLDS, f.name) for f in fields(AlertThresholds)}
    assert set(THRESHOLD_BOUNDS) == set(defaults)
    assert threshold_errors(defaults) == {}


@pytest.mark.parametrize(("name", "inside", "outside"), [
    (name, value, value + step)
    for name, (low, high, _unit) in THRESHOLD_BOUNDS.items()
    for value, step in ((low, D(-1)), (high, D(1)))
])  # fmt: skip
def test_threshold_sanity_bounds_are_inclusive(name: str, inside: Decimal, outside: Decimal) -> None:
    assert threshold_errors({name: inside}) == {}
    low, high, unit = THRESHOLD_BOUNDS[name]
    assert threshold_errors({name: outside}) == {name: f"Must be between {low} and {high} {unit} (sanity bounds)."}


def test_the_low_heart_rate_limit_must_be_below_the_high_one_and_missing_values_are_not_judged() -> None:
    # Within their bounds they cannot cross (hr_low <= 60 < 90 <= hr_high): the check guards the
    # bounds themselves being changed, and says what is wrong with a high limit set too low.
    assert threshold_errors({"hr_low": D(50), "hr_high": D(50)}) == {
        "hr_high": "Must be between 90 and 160 /min (sanity bounds).",
        "hr_low": "Must be below the high heart-rate limit."}
    assert threshold_errors({"hr_low": None, "spo2_low": None}) == {}
