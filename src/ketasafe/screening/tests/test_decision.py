"""The decision and its output shape (contracts/screening-rules-v1.md, Severities and Output)."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ketasafe.screening import rules
from ketasafe.screening.intake import parse_intake, parse_intake_json
from ketasafe.screening.rules import RULES, screen

from .builders import CONTRACT_EXAMPLE, born_aged, build, cond, data


def test_contract_example_gives_exactly_the_contract_output() -> None:
    decision = screen(parse_intake_json(json.dumps(CONTRACT_EXAMPLE)))
    assert decision.as_dict() == {
        "protocol": "esketamine-trd",
        "rules_version": "default-v1",
        "decision": "needs_review",
        "findings": [
            {"rule": "PHQ9-ITEM9", "severity": "warning",
             "message": "PHQ-9 item 9 is positive: complete a C-SSRS and review before treatment",
             "source": "clinical-facts 4.1", "evidence": {"phq9_item9": 1}},
        ],
    }


def test_output_is_plain_json_with_exactly_the_contract_keys() -> None:
    intake = build({"birth_date": born_aged(70)}, vitals={"systolic": 182},
                   conditions=[cond("I71.4"), cond("F10.20", "history")],
                   medications=[{"atc": "N05BA06"}])
    out = screen(intake).as_dict()
    assert json.loads(json.dumps(out)) == out  # only JSON types: lists, not tuples
    assert list(out) == ["protocol", "rules_version", "decision", "findings"]
    findings: list[dict[str, Any]] = out["findings"]  # type: ignore[assignment]
    assert all(list(f) == ["rule", "severity", "message", "source", "evidence"] for f in findings)
    crisis = next(f for f in findings if f["rule"] == "BP-CRISIS")
    assert crisis["evidence"] == {"systolic": 182, "threshold": 180}
    assert crisis["severity"] == "contraindication"
    assert crisis["source"] == "clinical-facts 2.3"


def test_findings_are_ordered_by_severity_then_rule_id() -> None:
    intake = build(
        {"birth_date": born_aged(70)},
        vitals={"heart_rate": 120, "systolic": 185},
        conditions=[cond("I48.0"), cond("Q28.2"), cond("I71.4"), cond("F11.20", "resolved")],
        medications=[{"atc": "N02AA01"}, {"atc": "N05BA06"}],
    )
    order = [(f.severity.value, f.rule) for f in screen(intake).findings]
    assert order == [
        ("contraindication", "ANEURYSM"), ("contraindication", "AVM"),
        ("contraindication", "BP-CRISIS"),
        ("warning", "ARRHYTHMIA"), ("warning", "TACHYCARDIA"),
        ("caution", "AGE-65-PLUS"), ("caution", "BENZODIAZEPINE"), ("caution", "OPIOID"),
        ("caution", "SUD-HISTORY"),
    ]


def test_any_contraindication_makes_the_patient_ineligible() -> None:
    assert screen(build(conditions=[cond("I71.4"), cond("I48.0")])).decision == "ineligible"


def test_a_warning_without_contraindication_needs_review() -> None:
    decision = screen(build(conditions=[cond("I48.0")], medications=[{"atc": "N05BA06"}]))
    assert decision.decision == "needs_review"


def test_cautions_alone_leave_the_patient_eligible() -> None:
    decision = screen(build(medications=[{"atc": "N05BA06"}]))
    assert decision.decision == "eligible"
    assert [f.rule for f in decision.findings] == ["BENZODIAZEPINE"]


def test_no_findings_is_eligible_with_an_empty_list() -> None:
    assert screen(build()).as_dict()["findings"] == []
    assert screen(build()).decision == "eligible"


def test_the_protocol_is_echoed() -> None:
    assert screen(build(protocol="iv-ketamine-crps")).as_dict()["protocol"] == "iv-ketamine-crps"


def test_every_rule_has_exactly_one_check() -> None:
    assert set(rules._CHECKS) == set(RULES)


def test_screening_does_not_change_the_intake() -> None:
    intake = build(conditions=[cond("I71.4")])
    before = repr(intake)
    screen(intake)
    assert repr(intake) == before


# --- Order independence (hypothesis) -------------------------------------------------------------

CODES = ["I71.4", "I71.2", "Q28.2", "I61.9", "F20.9", "F31.13", "F10.20", "F11.20", "F17.210",
         "K72.10", "I21.4", "I50.21", "I50.9", "I48.91", "G93.2", "H40.11X1", "N30.10", "F33.2"]
ATCS = ["N05BA06", "N05CD08", "N05CF02", "N02AA01", "N07BC02", "N06BA04", "N06AF04", "N04BD01",
        "N03AX09", "N06AB10"]
SUBSTANCES = ["ketamine", " Ketamine", "ESKETAMINE", "penicillin", "latex"]

conditions_st = st.lists(st.builds(cond, st.sampled_from(CODES),
                                   st.sampled_from(["active", "history", "resolved"])),
                         max_size=8)
medications_st = st.lists(st.builds(lambda a: {"atc": a}, st.sampled_from(ATCS)), max_size=6)
allergies_st = st.lists(st.builds(lambda s: {"substance": s}, st.sampled_from(SUBSTANCES)),
                        max_size=4)


@settings(max_examples=200, deadline=None)
@given(conditions=conditions_st, medications=medications_st, allergies=allergies_st,
       protocol=st.sampled_from(["esketamine-trd", "iv-ketamine-crps"]), seed=st.integers())
def test_output_never_depends_on_the_order_of_lists(
    conditions: list[dict[str, str]], medications: list[dict[str, str]],
    allergies: list[dict[str, str]], protocol: str, seed: int,
) -> None:
    original = data(protocol=protocol, conditions=conditions, medications=medications,
                    allergies=allergies)
    rng = random.Random(seed)
    shuffled = data(protocol=protocol, conditions=rng.sample(conditions, len(conditions)),
                    medications=rng.sample(medications, len(medications)),
                    allergies=rng.sample(allergies, len(allergies)))
    assert screen(parse_intake(shuffled)).as_dict() == screen(parse_intake(original)).as_dict()


@settings(max_examples=100, deadline=None)
@given(conditions=conditions_st, medications=medications_st)
def test_each_rule_fires_at_most_once(
    conditions: list[dict[str, str]], medications: list[dict[str, str]]
) -> None:
    ids = [f.rule for f in screen(parse_intake(data(conditions=conditions,
                                                    medications=medications))).findings]
    assert len(ids) == len(set(ids))
