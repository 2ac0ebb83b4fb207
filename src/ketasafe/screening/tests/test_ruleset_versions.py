"""Rule set versions: default-v1 is fixed; a clinic derives new versions that may change
thresholds within hard ranges and may only raise severities (contract, preamble; facts [U])."""

from __future__ import annotations

import dataclasses

import pytest

from ketasafe.screening.exceptions import RuleSetInvalid
from ketasafe.screening.rules import DEFAULT_V1, RULES, THRESHOLDS, RuleSet, Severity, screen

from .builders import born_aged, build, cond, findings

DEFAULT_THRESHOLDS = {
    "bp_crisis_systolic": 180, "bp_crisis_diastolic": 110,
    "bp_high_systolic": 140, "bp_high_systolic_older": 150, "bp_high_older_age": 65,
    "bp_high_diastolic": 90, "tachycardia_heart_rate": 110, "low_spo2": 92,
    "pregnancy_unknown_max_age": 55, "age_caution": 65,
}


def test_default_v1_has_the_contract_thresholds_and_severities() -> None:
    assert DEFAULT_V1.version == "default-v1"
    assert dict(DEFAULT_V1.thresholds) == DEFAULT_THRESHOLDS
    assert dict(DEFAULT_V1.severities) == {r.id: r.severity for r in RULES.values()}


def test_every_threshold_is_described_sourced_and_used_by_a_rule() -> None:
    used = {key for spec in RULES.values() for key in spec.thresholds}
    assert used == set(THRESHOLDS)
    for spec in THRESHOLDS.values():
        assert spec.description and spec.source and spec.unit
        assert spec.hard_min <= spec.default <= spec.hard_max


def test_a_derived_threshold_changes_screening_and_names_the_version() -> None:
    strict = DEFAULT_V1.derive("clinic-a-1", thresholds={"bp_crisis_systolic": 170})
    intake = build(vitals={"systolic": 172})
    assert "BP-CRISIS" in findings(intake, strict)
    assert "BP-CRISIS" not in findings(intake)  # default-v1 unchanged: BP-HIGH instead
    decision = screen(intake, strict)
    assert (decision.rules_version, decision.decision) == ("clinic-a-1", "ineligible")
    assert findings(intake, strict)["BP-CRISIS"].evidence == {"systolic": 172, "threshold": 170}


def test_derive_never_changes_the_parent() -> None:
    DEFAULT_V1.derive("clinic-a-1", thresholds={"low_spo2": 94},
                      severities={"GLAUCOMA": "contraindication"})
    assert dict(DEFAULT_V1.thresholds) == DEFAULT_THRESHOLDS
    assert DEFAULT_V1.severities["GLAUCOMA"] is Severity.WARNING


def test_age_thresholds_can_be_configured() -> None:
    ruleset = DEFAULT_V1.derive("clinic-b-1", thresholds={"age_caution": 60,
                                                         "pregnancy_unknown_max_age": 50})
    assert "AGE-65-PLUS" in findings(build({"birth_date": born_aged(60)}), ruleset)
    patient = {"sex": "female", "birth_date": born_aged(52)}
    assert "PREGNANCY-UNKNOWN" not in findings(build(patient), ruleset)
    assert "PREGNANCY-UNKNOWN" in findings(build(patient))


def test_unknown_threshold_is_refused() -> None:
    with pytest.raises(RuleSetInvalid, match="unknown threshold 'bp_max'"):
        DEFAULT_V1.derive("x-1", thresholds={"bp_max": 150})


@pytest.mark.parametrize("key", sorted(THRESHOLDS))
def test_thresholds_outside_their_hard_range_are_refused(key: str) -> None:
    spec = THRESHOLDS[key]
    for bad in (spec.hard_min - 1, spec.hard_max + 1):
        with pytest.raises(RuleSetInvalid, match=f"threshold {key}: {bad} is outside"):
            DEFAULT_V1.derive("x-1", thresholds={key: bad})


@pytest.mark.parametrize("bad", [True, 92.5, "92", None])
def test_thresholds_must_be_integers(bad: object) -> None:
    with pytest.raises(RuleSetInvalid, match="is not an integer"):
        DEFAULT_V1.derive("x-1", thresholds={"low_spo2": bad})  # type: ignore[dict-item]


def test_a_high_limit_at_or_above_the_crisis_limit_is_refused() -> None:
    with pytest.raises(RuleSetInvalid, match="bp_high_systolic must be below bp_crisis_systolic"):
        DEFAULT_V1.derive("x-1", thresholds={"bp_high_systolic": 180})
    with pytest.raises(RuleSetInvalid, match="bp_high_diastolic must be below"):
        DEFAULT_V1.derive("x-1", thresholds={"bp_crisis_diastolic": 95, "bp_high_diastolic": 100})


def test_a_severity_can_be_raised() -> None:
    ruleset = DEFAULT_V1.derive("x-1", severities={"BP-HIGH": Severity.CONTRAINDICATION,
                                                   "BENZODIAZEPINE": "warning"})
    decision = screen(build(vitals={"systolic": 150}), ruleset)
    assert decision.decision == "ineligible"
    assert findings(build(medications=[{"atc": "N05BA06"}]), ruleset)["BENZODIAZEPINE"].severity \
        is Severity.WARNING


@pytest.mark.parametrize(("rule", "lower"), [
    ("ANEURYSM", "warning"), ("ANEURYSM", "caution"), ("BP-HIGH", "caution"),
])
def test_a_severity_can_never_be_lowered(rule: str, lower: str) -> None:
    with pytest.raises(RuleSetInvalid, match=f"rule {rule}: severity cannot be lowered"):
        DEFAULT_V1.derive("x-1", severities={rule: lower})


def test_a_raised_severity_cannot_be_lowered_again_in_a_child_version() -> None:
    raised = DEFAULT_V1.derive("x-1", severities={"OPIOID": "warning"})
    with pytest.raises(RuleSetInvalid, match="from warning to caution"):
        raised.derive("x-2", severities={"OPIOID": "caution"})


def test_a_hand_built_rule_set_cannot_lower_a_severity_either() -> None:
    severities = {**DEFAULT_V1.severities, "PREGNANCY": Severity.CAUTION}
    with pytest.raises(RuleSetInvalid, match="rule PREGNANCY"):
        RuleSet("hand-1", DEFAULT_V1.thresholds, severities)


def test_a_hand_built_rule_set_must_be_complete() -> None:
    with pytest.raises(RuleSetInvalid, match="thresholds missing"):
        RuleSet("hand-1", {}, DEFAULT_V1.severities)
    with pytest.raises(RuleSetInvalid, match="severities missing"):
        RuleSet("hand-1", DEFAULT_V1.thresholds, {})


@pytest.mark.parametrize(("rule", "severity"), [("NO-SUCH-RULE", "warning"),
                                                ("GLAUCOMA", "fatal"), ("GLAUCOMA", ["warning"])])
def test_unknown_rules_and_severities_are_refused(rule: str, severity: object) -> None:
    with pytest.raises(RuleSetInvalid):
        DEFAULT_V1.derive("x-1", severities={rule: severity})  # type: ignore[dict-item]


@pytest.mark.parametrize("version", ["default-v1", "", "has space", "x" * 65, "-leading"])
def test_a_derived_version_needs_a_new_well_formed_name(version: str) -> None:
    with pytest.raises(RuleSetInvalid):
        DEFAULT_V1.derive(version, thresholds={"low_spo2": 94})


def test_a_child_cannot_reuse_its_parents_name() -> None:
    child = DEFAULT_V1.derive("clinic-a-1")
    with pytest.raises(RuleSetInvalid, match="is taken"):
        child.derive("clinic-a-1", thresholds={"low_spo2": 94})


def test_rule_sets_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_V1.version = "mine"  # type: ignore[misc]
    with pytest.raises(TypeError):
        DEFAULT_V1.thresholds["low_spo2"] = 80  # type: ignore[index]
    with pytest.raises(TypeError):
        DEFAULT_V1.severities["ANEURYSM"] = Severity.CAUTION  # type: ignore[index]


def test_caller_dicts_do_not_leak_into_a_rule_set() -> None:
    thresholds = {"low_spo2": 94}
    ruleset = DEFAULT_V1.derive("x-1", thresholds=thresholds)
    thresholds["low_spo2"] = 85
    assert ruleset.thresholds["low_spo2"] == 94


def test_protocol_exception_still_applies_and_a_raise_applies_to_every_protocol() -> None:
    assert DEFAULT_V1.severity_for("SUD-ACTIVE", "iv-ketamine-crps") is Severity.CONTRAINDICATION
    raised = DEFAULT_V1.derive("x-1", severities={"SUD-ACTIVE": "contraindication"})
    intake = build(protocol="esketamine-trd", conditions=[cond("F10.20")])
    assert findings(intake, raised)["SUD-ACTIVE"].severity is Severity.CONTRAINDICATION
    assert RULES["SUD-ACTIVE"].protocol_severities == {"iv-ketamine-crps": Severity.CONTRAINDICATION}
