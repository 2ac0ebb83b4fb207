"""Every refusal the contract lists (screening-rules-v1.md, Input), each naming its field on one
line, and nothing but IntakeInvalid escaping, whatever the input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketasafe.screening.exceptions import IntakeInvalid
from ketasafe.screening.intake import (
    ConditionStatus,
    HepaticImpairment,
    Sex,
    parse_intake,
    parse_intake_json,
)

from .builders import CONTRACT_EXAMPLE, cond, data


def refused(payload: Any) -> str:
    """The one-line message for a refused intake (a dict, or JSON text)."""
    with pytest.raises(IntakeInvalid) as info:
        if isinstance(payload, str | bytes):
            parse_intake_json(payload)
        else:
            parse_intake(payload)
    message = str(info.value)
    assert "\n" not in message
    assert message == f"{info.value.field}: {info.value.message}"
    return message


def without(d: dict[str, Any], *path: str) -> dict[str, Any]:
    target = d
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return d


def test_contract_example_parses_with_every_field() -> None:
    intake = parse_intake_json(json.dumps(CONTRACT_EXAMPLE))
    assert intake.patient.sex is Sex.FEMALE
    assert intake.patient.pregnant is False and intake.patient.height_cm == 165.0
    assert intake.vitals is not None and intake.vitals.systolic == 128
    assert intake.conditions[0].status is ConditionStatus.ACTIVE
    assert intake.medications[0].name == "escitalopram"
    assert intake.scales.cssrs_screen == (1, 0, 0, 0, 0, 0, 0)


def test_optional_parts_default_to_empty_and_none() -> None:
    intake = parse_intake(data())
    assert (intake.conditions, intake.medications, intake.allergies) == ((), (), ())
    assert intake.vitals is None and intake.hepatic_impairment is HepaticImpairment.NONE
    assert intake.patient.pregnant is None and intake.scales.phq9 is None
    assert parse_intake(data(conditions=None, hepatic_impairment=None)).conditions == ()


# --- JSON ---------------------------------------------------------------------------------------

def test_empty_input_is_bad_json() -> None:
    assert refused("") == "JSON: Expecting value line 1 column 1"


@pytest.mark.parametrize("text", [
    "{", "{'protocol': 1}", '{"a": NaN}', '{"a": Infinity}', b"\xff\xfe{", "[" * 100_000,
])
def test_malformed_json_is_refused_as_json(text: str | bytes) -> None:
    assert refused(text).startswith("JSON: ")


@pytest.mark.parametrize("text", ["[]", "42", '"intake"', "null", "true"])
def test_a_top_level_that_is_not_an_object_is_refused(text: str) -> None:
    assert refused(text).startswith("intake: expected an object")


def test_utf8_bytes_with_a_bom_are_accepted() -> None:
    raw = b"\xef\xbb\xbf" + json.dumps(data()).encode()
    assert parse_intake_json(raw).protocol == "esketamine-trd"


# --- Required fields and top-level values -------------------------------------------------------

@pytest.mark.parametrize(("path", "field"), [
    (("protocol",), "protocol"),
    (("assessed_on",), "assessed_on"),
    (("patient",), "patient"),
    (("patient", "birth_date"), "patient.birth_date"),
    (("patient", "sex"), "patient.sex"),
    (("patient", "weight_kg"), "patient.weight_kg"),
])
def test_a_missing_required_field_is_named(path: tuple[str, ...], field: str) -> None:
    assert refused(without(data(), *path)) == f"{field}: missing required field"


def test_unknown_protocol_is_refused() -> None:
    assert refused(data(protocol="oral-ketamine")) == "protocol: unknown protocol 'oral-ketamine'"


@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "24/11/2026", "20261124", 20261124])
def test_a_bad_assessment_date_is_refused(value: object) -> None:
    assert refused(data(assessed_on=value)).startswith("assessed_on: ")


def test_birth_date_after_assessed_on_is_refused() -> None:
    message = refused(data({"birth_date": "2026-11-25"}))
    assert message == "patient.birth_date: 2026-11-25 is after assessed_on 2026-11-24"


def test_birth_date_on_the_assessment_date_is_accepted() -> None:
    assert parse_intake(data({"birth_date": "2026-11-24"})).patient.birth_date.year == 2026


@pytest.mark.parametrize("sex", ["F", "Female", "", 1])
def test_unknown_sex_is_refused(sex: object) -> None:
    assert refused(data({"sex": sex})).startswith("patient.sex: ")


@pytest.mark.parametrize("value", ["mild ", "child-pugh-c", "SEVERE"])
def test_unknown_hepatic_impairment_is_refused(value: str) -> None:
    assert refused(data(hepatic_impairment=value)) == (
        f"hepatic_impairment: unknown hepatic_impairment {value!r}")


@pytest.mark.parametrize(("where", "key"), [("", "medication"), ("patient.", "pregnent"),
                                            ("vitals.", "sbp")])
def test_unknown_keys_are_refused_so_a_typo_cannot_hide_data(where: str, key: str) -> None:
    payload = data(vitals={"systolic": 120})
    target = payload if not where else payload[where.rstrip(".")]
    target[key] = 1
    assert refused(payload) == f"{where}{key}: unknown field"


# --- Numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "ok"), [
    (20, True), (350, True), (70.5, True), (19.9, False), (350.1, False), (400, False),
])
def test_weight_range_is_20_to_350_inclusive(value: float, ok: bool) -> None:
    if ok:
        assert parse_intake(data({"weight_kg": value})).patient.weight_kg == value
    else:
        assert refused(data({"weight_kg": value})) == f"patient.weight_kg: {value} is outside 20-350"


@pytest.mark.parametrize("value", ["70", True, [70], {"kg": 70}])
def test_a_weight_that_is_not_a_number_is_refused(value: object) -> None:
    assert refused(data({"weight_kg": value})).startswith("patient.weight_kg: expected a number")


def test_a_float_overflowing_to_infinity_is_refused() -> None:
    text = json.dumps(data()).replace("70.0", "1e400")
    assert refused(text).startswith("patient.weight_kg: ")


@pytest.mark.parametrize(("key", "lo", "hi"), [
    ("systolic", 50, 300), ("diastolic", 20, 200), ("heart_rate", 20, 250), ("spo2", 50, 100),
])
def test_vital_ranges_are_inclusive(key: str, lo: int, hi: int) -> None:
    for ok in (lo, hi):
        assert getattr(parse_intake(data(vitals={key: ok})).vitals, key) == ok
    for bad in (lo - 1, hi + 1):
        assert refused(data(vitals={key: bad})) == f"vitals.{key}: {bad} is outside {lo}-{hi}"
    assert refused(data(vitals={key: "120"})).startswith(f"vitals.{key}: expected a number")
    assert refused(data(vitals={key: False})).startswith(f"vitals.{key}: expected a number")


def test_vitals_must_be_an_object() -> None:
    assert refused(data(vitals=[120, 80])) == "vitals: expected an object, got list"


@pytest.mark.parametrize("key", ["pregnant", "breastfeeding"])
def test_pregnant_and_breastfeeding_must_be_boolean_or_null(key: str) -> None:
    assert refused(data({key: "no"})).startswith(f"patient.{key}: ")
    assert refused(data({key: 0})).startswith(f"patient.{key}: ")


def test_height_must_be_a_plausible_number_when_given() -> None:
    assert refused(data({"height_cm": 1.65})).startswith("patient.height_cm: ")


# --- Conditions, medications, allergies ---------------------------------------------------------

@pytest.mark.parametrize("key", ["system", "code", "status"])
def test_a_condition_without_system_code_or_status_is_refused(key: str) -> None:
    conditions = [cond("F33.2"), cond("I10"), without(cond("I48.0"), key)]
    assert refused(data(conditions=conditions)) == f"conditions[2].{key}: missing required field"


def test_an_unknown_condition_status_is_refused() -> None:
    conditions = [cond("F33.2"), cond("I10"), cond("I48.0", "chronic")]
    assert refused(data(conditions=conditions)) == "conditions[2].status: unknown status 'chronic'"


@pytest.mark.parametrize("system", ["icd-10", "ICD-10-CM", "snomed"])
def test_a_condition_system_other_than_icd10cm_is_refused(system: str) -> None:
    bad = {"system": system, "code": "I71.4", "status": "active"}
    assert refused(data(conditions=[bad])).startswith("conditions[0].system: unknown system")


@pytest.mark.parametrize("code", ["", "  ", "aneurysm", "71.4", 714])
def test_a_condition_code_that_is_not_icd10cm_shaped_is_refused(code: object) -> None:
    bad = {"system": "icd-10-cm", "code": code, "status": "active"}
    assert refused(data(conditions=[bad])).startswith("conditions[0].code: ")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("conditions", {"code": "I71"}, "conditions: expected a list, got object"),
    ("conditions", ["I71.4"], "conditions[0]: expected an object, got string"),
    ("medications", [{"name": "lorazepam"}], "medications[0].atc: missing required field"),
    ("medications", [{"atc": ""}], "medications[0].atc: must not be empty"),
    ("allergies", [{"name": "ketamine"}], "allergies[0].substance: missing required field"),
    ("allergies", "ketamine", "allergies: expected a list, got string"),
])
def test_list_entries_are_checked(key: str, value: object, message: str) -> None:
    payload = data()
    payload[key] = value
    assert refused(payload) == message


def test_list_entries_may_carry_extra_display_keys() -> None:
    entry = {**cond("I71.4"), "display": "AAA"}
    assert parse_intake(data(conditions=[entry])).conditions[0].code == "I71.4"


# --- Scales -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("scales", "message"), [
    ({"gad7": [0] * 7}, "scales.gad7: unknown scale (allowed: phq9, cssrs_screen)"),
    ({"cssrs-screen": [0] * 7}, "scales.cssrs-screen: unknown scale (allowed: phq9, cssrs_screen)"),
    ({"phq9": [0] * 8}, "scales.phq9: expected 9 answers, got 8"),
    ({"phq9": [0, 0, 4, 0, 0, 0, 0, 0, 0]}, "scales.phq9[2]: 4 is outside 0-3"),
    ({"phq9": [0, 0, "1", 0, 0, 0, 0, 0, 0]}, "scales.phq9[2]: '1' is not an integer"),
    ({"phq9": "000000000"}, "scales.phq9: expected a list, got string"),
    ({"cssrs_screen": [0, 0, 0, 0, 0, 0]}, "scales.cssrs_screen: expected 7 answers, got 6"),
    ({"cssrs_screen": [1, 0, 1, 0, 0, 0, 0]}, "scales.cssrs_screen: Q3-Q5 must be 0 when Q2 is 0"),
    ({"cssrs_screen": [0, 0, 0, 0, 0, 0, 1]},
     "scales.cssrs_screen: 'within 3 months' must be 0 when Q6 is 0"),
    ([], "scales: expected an object, got list"),
])
def test_scale_answers_are_validated_like_ketasafe_score(scales: object, message: str) -> None:
    assert refused(data(scales=scales)) == message


# --- Never anything but IntakeInvalid -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                   max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.binary(max_size=60))
def test_arbitrary_text_is_an_intake_or_intake_invalid(text: str | bytes) -> None:
    try:
        parse_intake_json(text)
    except IntakeInvalid as exc:
        assert "\n" not in str(exc)


FIELDS = [("protocol",), ("assessed_on",), ("patient",), ("patient", "birth_date"),
          ("patient", "sex"), ("patient", "weight_kg"), ("patient", "pregnant"), ("vitals",),
          ("vitals", "systolic"), ("vitals", "spo2"), ("conditions",), ("conditions", 0),
          ("conditions", 0, "status"), ("medications",), ("allergies", 0), ("scales",),
          ("scales", "phq9"), ("scales", "cssrs_screen"), ("hepatic_impairment",)]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FIELDS), json_values)
def test_any_value_in_any_field_is_accepted_or_refused_cleanly(
    path: tuple[str | int, ...], value: object
) -> None:
    payload: Any = json.loads(json.dumps(CONTRACT_EXAMPLE))
    target = payload
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        parse_intake(payload)
    except IntakeInvalid as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("key", ["\n", "", "a\nb", "x" * 500])
def test_odd_unknown_keys_are_named_on_one_line(key: str) -> None:
    payload = data(vitals={"systolic": 120})
    payload["vitals"][key] = 1
    message = refused(payload)
    assert message.startswith("vitals.'") and message.endswith(": unknown field")
