"""One rule at a time: it fires, it does not fire, and its boundary
(contracts/screening-rules-v1.md, Rules and Matching)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ketasafe.screening import codes
from ketasafe.screening.rules import RULES, Severity, age_on, screen

from .builders import BASELINE, born_aged, build, cond, fired

# (rule, code, status, fires?)
CONDITION_CASES = [
    ("ANEURYSM", "I71.4", "active", True),
    ("ANEURYSM", "I67.1", "history", True),
    ("ANEURYSM", "I72.0", "active", True),
    ("ANEURYSM", "I77.810", "active", True),
    ("ANEURYSM", "I77.8", "active", False),  # less specific than the listed I77.81
    ("ANEURYSM", "I67.0", "active", False),  # sibling code
    ("ANEURYSM", "I71.4", "resolved", False),  # default rule: resolved never fires
    ("AVM", "Q28.2", "active", True),
    ("AVM", "Q28.3", "history", True),
    ("AVM", "Q28.1", "active", False),
    ("AVM", "Q28.2", "resolved", False),
    ("INTRACRANIAL-HEMORRHAGE", "I61.9", "resolved", True),  # any status
    ("INTRACRANIAL-HEMORRHAGE", "I60.0", "active", True),
    ("INTRACRANIAL-HEMORRHAGE", "I62.00", "history", True),
    ("INTRACRANIAL-HEMORRHAGE", "I63.9", "active", False),  # ischaemic stroke
    ("PSYCHOSIS-ACTIVE", "F20.9", "active", True),
    ("PSYCHOSIS-ACTIVE", "F25.0", "active", True),
    ("PSYCHOSIS-ACTIVE", "F29", "active", True),
    ("PSYCHOSIS-ACTIVE", "F21", "active", False),  # schizotypal: not listed
    ("PSYCHOSIS-ACTIVE", "F20.9", "history", False),
    ("PSYCHOSIS-HISTORY", "F20.9", "history", True),
    ("PSYCHOSIS-HISTORY", "F23", "history", True),
    ("PSYCHOSIS-HISTORY", "F20.9", "active", False),
    ("PSYCHOSIS-HISTORY", "F20.9", "resolved", False),
    ("MANIA-ACTIVE", "F30.10", "active", True),
    ("MANIA-ACTIVE", "F31.13", "active", True),
    ("MANIA-ACTIVE", "F31.2", "active", True),
    ("MANIA-ACTIVE", "F31.30", "active", False),  # current episode depressed
    ("MANIA-ACTIVE", "F31.1", "history", False),
    ("SUD-ACTIVE", "F10.20", "active", True),
    ("SUD-ACTIVE", "F19.10", "active", True),
    ("SUD-ACTIVE", "F18.20", "active", True),
    ("SUD-ACTIVE", "F17.210", "active", False),  # nicotine excluded
    ("SUD-ACTIVE", "F10.20", "history", False),
    ("SUD-HISTORY", "F11.20", "history", True),
    ("SUD-HISTORY", "F12.90", "resolved", True),
    ("SUD-HISTORY", "F11.20", "active", False),
    ("SUD-HISTORY", "F17.210", "history", False),
    ("HEPATIC-SEVERE", "K72.10", "active", True),
    ("HEPATIC-SEVERE", "K72.10", "history", False),
    ("HEPATIC-SEVERE", "K70.30", "active", False),
    ("CARDIAC-UNSTABLE", "I20.0", "active", True),
    ("CARDIAC-UNSTABLE", "I21.4", "active", True),
    ("CARDIAC-UNSTABLE", "I22.0", "active", True),
    ("CARDIAC-UNSTABLE", "I50.21", "active", True),
    ("CARDIAC-UNSTABLE", "I50.43", "active", True),
    ("CARDIAC-UNSTABLE", "I20.9", "active", False),  # stable angina
    ("CARDIAC-UNSTABLE", "I50.22", "active", False),  # chronic systolic failure
    ("CARDIAC-UNSTABLE", "I21.4", "history", False),
    ("HEART-FAILURE", "I50.22", "active", True),
    ("HEART-FAILURE", "I50.9", "active", True),
    ("HEART-FAILURE", "I50.21", "active", False),  # acute: CARDIAC-UNSTABLE's code
    ("HEART-FAILURE", "I50.33", "active", False),
    ("HEART-FAILURE", "I50.9", "history", False),
    ("ARRHYTHMIA", "I48.91", "active", True),
    ("ARRHYTHMIA", "I47.1", "active", True),
    ("ARRHYTHMIA", "I49.9", "active", True),
    ("ARRHYTHMIA", "I46.9", "active", False),
    ("ARRHYTHMIA", "I48.91", "history", False),
    ("RAISED-ICP", "G91.1", "active", True),
    ("RAISED-ICP", "G93.2", "active", True),
    ("RAISED-ICP", "G93.6", "active", True),
    ("RAISED-ICP", "G93.5", "active", False),
    ("RAISED-ICP", "G93.2", "history", False),
    ("GLAUCOMA", "H40.11X1", "active", True),
    ("GLAUCOMA", "H42", "active", False),
    ("GLAUCOMA", "H40.11X1", "history", False),
    ("CYSTITIS", "N30.10", "active", True),
    ("CYSTITIS", "N39.0", "active", False),
    ("CYSTITIS", "N30.10", "history", False),
]


@pytest.mark.parametrize(("rule", "code", "status", "fires"), CONDITION_CASES)
def test_condition_rule(rule: str, code: str, status: str, fires: bool) -> None:
    found = fired(conditions=[cond(code, status)])
    assert (rule in found) is fires
    if fires:
        assert found[rule].evidence == {"codes": [code]}


def test_acute_heart_failure_fires_only_cardiac_unstable() -> None:
    assert set(fired(conditions=[cond("I50.21")])) == {"CARDIAC-UNSTABLE"}


def test_code_matching_ignores_dots_and_case() -> None:
    assert "ANEURYSM" in fired(conditions=[cond("i714")])
    assert codes.matches(" i77.810 ", codes.ANEURYSM)
    assert not codes.matches("I7", codes.ANEURYSM)


def test_one_finding_per_rule_with_every_matching_code_sorted() -> None:
    found = fired(conditions=[cond("I72.0"), cond("I71.4"), cond("I67.1", "history"),
                              cond("I71.4"), cond("I71.2", "resolved")])
    assert found["ANEURYSM"].evidence == {"codes": ["I67.1", "I71.4", "I72.0"]}
    assert len(screen(build(conditions=[cond("I72.0"), cond("I71.4")])).findings) == 1


# (rule, ATC, fires?)
MEDICATION_CASES = [
    ("BENZODIAZEPINE", "N05BA06", True),
    ("BENZODIAZEPINE", "N05CD08", True),
    ("BENZODIAZEPINE", "n05ba01", True),
    ("BENZODIAZEPINE", "N05BB01", False),  # hydroxyzine
    ("Z-DRUG", "N05CF02", True),
    ("Z-DRUG", "N05CH01", False),
    ("OPIOID", "N02AA01", True),
    ("OPIOID", "N07BC02", True),
    ("OPIOID", "N02BE01", False),  # paracetamol
    ("STIMULANT", "N06BA04", True),
    ("STIMULANT", "N06BX03", False),
    ("MAOI", "N06AF04", True),
    ("MAOI", "N06AG02", True),
    ("MAOI", "N04BD01", True),
    ("MAOI", "N06AX16", False),
    ("LAMOTRIGINE", "N03AX09", True),
    ("LAMOTRIGINE", "N03AX11", False),  # topiramate
]


@pytest.mark.parametrize(("rule", "atc", "fires"), MEDICATION_CASES)
def test_medication_rule(rule: str, atc: str, fires: bool) -> None:
    found = fired(medications=[{"atc": atc, "name": "x"}])
    assert (rule in found) is fires
    if fires:
        assert found[rule].severity is Severity.CAUTION
        assert found[rule].evidence == {"atc": [atc]}


def test_escitalopram_fires_no_medication_rule() -> None:
    assert fired(medications=[{"atc": "N06AB10"}]) == {}


# --- Age ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("birth", "on", "age"), [
    (date(1980, 5, 1), date(2026, 4, 30), 45),
    (date(1980, 5, 1), date(2026, 5, 1), 46),
    (date(2008, 2, 29), date(2026, 2, 28), 17),  # leap-day birthday not yet reached
    (date(2008, 2, 29), date(2026, 3, 1), 18),  # reached on 1 March
    (date(2008, 2, 29), date(2028, 2, 29), 20),
    (date(2026, 11, 24), date(2026, 11, 24), 0),
])
def test_age_is_whole_years_on_the_assessment_date(birth: date, on: date, age: int) -> None:
    assert age_on(birth, on) == age


def test_leap_day_birthday_reaches_18_on_1_march() -> None:
    patient = {"birth_date": "2008-02-29"}
    assert "AGE-UNDER-18" in fired(patient, assessed_on="2026-02-28")
    assert "AGE-UNDER-18" not in fired(patient, assessed_on="2026-03-01")


@pytest.mark.parametrize(("birth", "fires"), [
    (born_aged(18, day_before_birthday=True), True), (born_aged(18), False), (born_aged(0), True),
])
def test_age_under_18(birth: str, fires: bool) -> None:
    found = fired({"birth_date": birth})
    assert ("AGE-UNDER-18" in found) is fires


@pytest.mark.parametrize(("birth", "fires"), [
    (born_aged(65, day_before_birthday=True), False), (born_aged(65), True), (born_aged(90), True),
])
def test_age_65_plus(birth: str, fires: bool) -> None:
    found = fired({"birth_date": birth})
    assert ("AGE-65-PLUS" in found) is fires
    if fires:
        assert found["AGE-65-PLUS"].severity is Severity.CAUTION


# --- Allergy, pregnancy, breastfeeding ----------------------------------------------------------

@pytest.mark.parametrize(("substance", "fires"), [
    ("ketamine", True), ("  Ketamine ", True), ("ESKETAMINE", True),
    ("ketamine hcl", False), ("arketamine", False), ("penicillin", False),
])
def test_allergy_matches_exactly_after_trim_and_case(substance: str, fires: bool) -> None:
    found = fired(allergies=[{"substance": substance}])
    assert ("ALLERGY-KETAMINE" in found) is fires


def test_allergy_evidence_lists_each_matching_substance() -> None:
    found = fired(allergies=[{"substance": "Esketamine"}, {"substance": "latex"},
                             {"substance": " ketamine"}])
    assert found["ALLERGY-KETAMINE"].evidence == {"substances": ["Esketamine", "ketamine"]}


@pytest.mark.parametrize(("pregnant", "fires"), [(True, True), (False, False), (None, False)])
def test_pregnancy(pregnant: bool | None, fires: bool) -> None:
    found = fired({"sex": "female", "pregnant": pregnant})
    assert ("PREGNANCY" in found) is fires


@pytest.mark.parametrize(("patient", "fires"), [
    ({"sex": "female", "birth_date": born_aged(54)}, True),
    ({"sex": "female", "birth_date": born_aged(54), "pregnant": None}, True),
    ({"sex": "female", "birth_date": born_aged(55)}, False),  # boundary: age < 55
    ({"sex": "female", "birth_date": born_aged(30), "pregnant": False}, False),
    ({"sex": "female", "birth_date": born_aged(30), "pregnant": True}, False),  # PREGNANCY instead
    ({"sex": "male", "birth_date": born_aged(30)}, False),
    ({"sex": "unknown", "birth_date": born_aged(30)}, False),
])
def test_pregnancy_unknown(patient: dict[str, Any], fires: bool) -> None:
    found = fired(patient)
    assert ("PREGNANCY-UNKNOWN" in found) is fires


@pytest.mark.parametrize(("value", "fires"), [(True, True), (False, False), (None, False)])
def test_breastfeeding(value: bool | None, fires: bool) -> None:
    assert ("BREASTFEEDING" in fired({"breastfeeding": value})) is fires


# --- Hepatic ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("grade", "conditions", "expected"), [
    ("severe", [], {"HEPATIC-SEVERE"}),
    ("moderate", [], {"HEPATIC-MODERATE"}),
    ("moderate", [cond("K72.10")], {"HEPATIC-SEVERE"}),  # MODERATE only if SEVERE did not fire
    ("mild", [], set()),
    ("none", [], set()),
    ("none", [cond("K72.10")], {"HEPATIC-SEVERE"}),
])
def test_hepatic_rules(grade: str, conditions: list[dict[str, str]], expected: set[str]) -> None:
    found = fired(hepatic_impairment=grade, conditions=conditions)
    assert {r for r in found if r.startswith("HEPATIC")} == expected


def test_hepatic_severe_evidence_names_grade_and_code() -> None:
    found = fired(hepatic_impairment="severe", conditions=[cond("K72.10")])
    assert found["HEPATIC-SEVERE"].evidence == {"hepatic_impairment": "severe",
                                                "codes": ["K72.10"]}


# --- Vitals -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("vitals", "evidence"), [
    ({"systolic": 180}, {"systolic": 180, "threshold": 180}),
    ({"systolic": 182, "diastolic": 100}, {"systolic": 182, "threshold": 180}),
    ({"diastolic": 110}, {"diastolic": 110, "threshold": 110}),
    ({"systolic": 179, "diastolic": 109}, None),
    ({"systolic": 200, "diastolic": 120},
     {"systolic": 200, "systolic_threshold": 180, "diastolic": 120, "diastolic_threshold": 110}),
])
def test_bp_crisis(vitals: dict[str, int], evidence: dict[str, int] | None) -> None:
    found = fired(vitals=vitals)
    assert (found["BP-CRISIS"].evidence if "BP-CRISIS" in found else None) == evidence
    if evidence is not None:
        assert "BP-HIGH" not in found  # BP-HIGH only when BP-CRISIS did not fire


@pytest.mark.parametrize(("age", "vitals", "evidence"), [
    (46, {"systolic": 141}, {"systolic": 141, "threshold": 140}),
    (46, {"systolic": 140}, None),
    (64, {"systolic": 145}, {"systolic": 145, "threshold": 140}),
    (65, {"systolic": 150}, None),  # older patients: > 150
    (65, {"systolic": 151}, {"systolic": 151, "threshold": 150, "age": 65}),
    (46, {"diastolic": 91}, {"diastolic": 91, "threshold": 90}),
    (46, {"diastolic": 90}, None),
    (46, {"systolic": 179, "diastolic": 109},
     {"systolic": 179, "systolic_threshold": 140, "diastolic": 109, "diastolic_threshold": 90}),
])
def test_bp_high(age: int, vitals: dict[str, int], evidence: dict[str, int] | None) -> None:
    found = fired({"birth_date": born_aged(age)}, vitals=vitals)
    assert (found["BP-HIGH"].evidence if "BP-HIGH" in found else None) == evidence


@pytest.mark.parametrize(("heart_rate", "fires"), [(111, True), (110, False), (None, False)])
def test_tachycardia(heart_rate: int | None, fires: bool) -> None:
    found = fired(vitals={"heart_rate": heart_rate})
    assert ("TACHYCARDIA" in found) is fires


@pytest.mark.parametrize(("spo2", "fires"), [(91, True), (92, False), (91.5, True), (None, False)])
def test_low_spo2(spo2: float | None, fires: bool) -> None:
    found = fired(vitals={"spo2": spo2})
    assert ("LOW-SPO2" in found) is fires
    if fires:
        assert found["LOW-SPO2"].evidence == {"spo2": spo2, "threshold": 92}


def test_missing_vitals_never_fire() -> None:
    assert fired(vitals=None) == {}
    assert fired(vitals={}) == {}
    assert fired(vitals={"systolic": None, "diastolic": None, "heart_rate": None,
                         "spo2": None}) == {}


# --- Scales -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("item9", "fires"), [(0, False), (1, True), (3, True)])
def test_phq9_item9(item9: int, fires: bool) -> None:
    found = fired(scales={"phq9": [0] * 8 + [item9]})
    assert ("PHQ9-ITEM9" in found) is fires
    if fires:
        assert found["PHQ9-ITEM9"].evidence == {"phq9_item9": item9}


def test_phq9_severe_total_without_item9_does_not_fire() -> None:
    assert "PHQ9-ITEM9" not in fired(scales={"phq9": [3] * 8 + [0]})


@pytest.mark.parametrize(("answers", "fires"), [
    ([1, 1, 0, 1, 0, 0, 0], True),
    ([0, 0, 0, 0, 0, 1, 1], True),
    ([1, 1, 1, 0, 0, 1, 0], False),  # moderate
    ([1, 0, 0, 0, 0, 0, 0], False),  # low
])
def test_cssrs_high_risk(answers: list[int], fires: bool) -> None:
    found = fired(scales={"cssrs_screen": answers})
    assert ("CSSRS-HIGH-RISK" in found) is fires
    if fires:
        assert found["CSSRS-HIGH-RISK"].evidence == {"risk": "high", "answers": answers}


# --- Protocol exception and metadata ------------------------------------------------------------

@pytest.mark.parametrize(("protocol", "severity"), [
    ("iv-ketamine-crps", Severity.CONTRAINDICATION),
    ("esketamine-trd", Severity.WARNING),
    ("esketamine-mdsi", Severity.WARNING),
    ("iv-ketamine-depression", Severity.WARNING),
])
def test_active_sud_is_a_contraindication_only_for_crps(protocol: str, severity: Severity) -> None:
    assert fired(protocol=protocol, conditions=[cond("F10.20")])["SUD-ACTIVE"].severity is severity


def test_sud_history_stays_a_caution_for_crps() -> None:
    found = fired(protocol="iv-ketamine-crps", conditions=[cond("F10.20", "history")])
    assert found["SUD-HISTORY"].severity is Severity.CAUTION


def test_the_clean_baseline_fires_nothing() -> None:
    assert fired() == {}
    assert BASELINE["patient"]["sex"] == "male"


EXPECTED_DEFAULT_SEVERITY = {
    "contraindication": {"AGE-UNDER-18", "ALLERGY-KETAMINE", "ANEURYSM", "AVM",
                         "INTRACRANIAL-HEMORRHAGE", "PREGNANCY", "PSYCHOSIS-ACTIVE",
                         "MANIA-ACTIVE", "HEPATIC-SEVERE", "CARDIAC-UNSTABLE", "BP-CRISIS"},
    "warning": {"PREGNANCY-UNKNOWN", "BREASTFEEDING", "PSYCHOSIS-HISTORY", "SUD-ACTIVE",
                "HEPATIC-MODERATE", "HEART-FAILURE", "ARRHYTHMIA", "RAISED-ICP", "GLAUCOMA",
                "CYSTITIS", "BP-HIGH", "TACHYCARDIA", "LOW-SPO2", "PHQ9-ITEM9", "CSSRS-HIGH-RISK"},
    "caution": {"SUD-HISTORY", "BENZODIAZEPINE", "Z-DRUG", "OPIOID", "STIMULANT", "MAOI",
                "LAMOTRIGINE", "AGE-65-PLUS"},
}


def test_rule_ids_and_default_severities_are_the_contracts() -> None:
    by_severity: dict[str, set[str]] = {}
    for spec in RULES.values():
        by_severity.setdefault(spec.severity.value, set()).add(spec.id)
    assert by_severity == EXPECTED_DEFAULT_SEVERITY


def test_every_rule_cites_a_clinical_facts_section() -> None:
    for spec in RULES.values():
        assert spec.source.startswith("clinical-facts "), spec.id
        assert spec.title and spec.message


def test_every_rule_has_a_firing_case_in_this_file() -> None:
    covered = {r for r, *_, fires in CONDITION_CASES if fires}
    covered |= {r for r, _, fires in MEDICATION_CASES if fires}
    covered |= {"AGE-UNDER-18", "AGE-65-PLUS", "ALLERGY-KETAMINE", "PREGNANCY",
                "PREGNANCY-UNKNOWN", "BREASTFEEDING", "HEPATIC-MODERATE", "BP-CRISIS",
                "BP-HIGH", "TACHYCARDIA", "LOW-SPO2", "PHQ9-ITEM9", "CSSRS-HIGH-RISK"}
    assert covered == set(RULES)
