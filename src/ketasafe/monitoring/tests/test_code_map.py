"""Code map: MDC / Philips MDIL to LOINC + UCUM, unit conversion, and never guessing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketasafe.monitoring.hl7 import codes
from ketasafe.monitoring.hl7.codes import (
    _TEXT_UNITS,
    DEFAULT_CODE_MAP,
    MDC_VITALS,
    UNIT_CODES,
    WILDCARD,
    CodeMap,
    CodeMapEntry,
    MappedObservation,
    MappingFlag,
    build_code_map,
    code_key,
    lookup,
    map_observation,
    mdil_code,
    resolve_unit,
)
from ketasafe.monitoring.hl7.parse import ParsedObservation, parse_oru

SAMPLES = Path(__file__).resolve().parents[4].parent / "shared" / "conformance" / "hl7"


def obx(code: str, system: str, value: str | None, units: tuple[str, str, str] = ("", "", ""),
        status: str = "R") -> ParsedObservation:  # fmt: skip
    return ParsedObservation(
        position=0, set_id="1", value_type="NM", code=code, code_text="", code_system=system,
        sub_id="", raw_value=value or "", numeric_value=Decimal(value) if value else None,
        units_code=units[0], units_text=units[1], units_system=units[2], result_status=status,
        observed_at=None, device_id=None, flags=(),
    )  # fmt: skip


MMHG = ("266016", "MDC_DIM_MMHG", "MDC")


def test_every_default_entry_has_a_source_and_a_known_kind() -> None:
    assert len(DEFAULT_CODE_MAP) == 2 * len(MDC_VITALS)
    for entry in DEFAULT_CODE_MAP.values():
        assert entry.source.strip()
        assert entry.loinc


@pytest.mark.parametrize(
    ("code", "loinc", "unit", "kind"),
    [("150021", "8480-6", "mm[Hg]", "systolic"), ("150022", "8462-4", "mm[Hg]", "diastolic"),
     ("150023", "8478-0", "mm[Hg]", "map"), ("147842", "8867-4", "/min", "heart_rate"),
     ("149530", "8889-8", "/min", "pulse_rate"), ("150456", "2708-6", "%", "spo2"),
     ("151562", "9279-1", "/min", "resp_rate"), ("150344", "8310-5", "Cel", "temperature"),
     ("150364", "8310-5", "Cel", "temperature"), ("188736", "29463-7", "kg", "weight")],
)  # fmt: skip
def test_shipped_vital_codes(code: str, loinc: str, unit: str, kind: str) -> None:
    entry = DEFAULT_CODE_MAP[("MDC", code)]
    assert (entry.loinc, entry.ucum_unit, entry.kind) == (loinc, unit, kind)


def test_spo2_carries_both_loinc_codes() -> None:
    assert DEFAULT_CODE_MAP[("MDC", "150456")].extra_loinc == ("59408-5",)


@pytest.mark.parametrize(
    ("mdc", "mdil"),
    [(147842, "0002-4182"), (150456, "0002-4bb8"), (151562, "0002-500a"),
     (150022, "0002-4a06"), (266016, "0004-0f20"), (264864, "0004-0aa0"), (268192, "0004-17a0")],
)  # fmt: skip
def test_mdil_spelling_matches_public_philips_exports(mdc: int, mdil: str) -> None:
    assert mdil_code(mdc) == mdil


def test_philips_mdil_observation_maps_with_mdil_units() -> None:
    m = map_observation(obx("0002-4BB8", "MDIL", "97", ("0004-0220", "%", "MDIL")))
    assert (m.kind, m.loinc, m.ucum_unit, m.value, m.flags) == ("spo2", "2708-6", "%",
                                                                Decimal("97"), ())  # fmt: skip


def test_pcd01_sample_maps_bp_and_leaves_device_codes_unmapped() -> None:
    msg = parse_oru((SAMPLES / "ipf_pcd01_bp_request.hl7").read_bytes(), default_tz=UTC)
    mapped = {o.code: map_observation(o) for o in msg.observations}
    assert mapped["150021"].value == Decimal("120") and mapped["150021"].kind == "systolic"
    assert mapped["150022"].value == Decimal("80")
    assert mapped["150023"].kind == "map"
    assert mapped["150020"].loinc == "85354-9" and mapped["150020"].value is None
    assert mapped["528391"].flags == ("unmapped",)


def test_oximeter_sample_maps_spo2() -> None:
    msg = parse_oru((SAMPLES / "ipf_continua_wan_oximeter.hl7").read_bytes(), default_tz=UTC)
    spo2 = map_observation(next(o for o in msg.observations if o.code == "150456"))
    assert (spo2.kind, spo2.value, spo2.ucum_unit) == ("spo2", Decimal("80.5"), "%")


def test_lab_glucose_is_unmapped_never_guessed() -> None:
    msg = parse_oru(
        (SAMPLES / "python_hl7_normative_lab_oru_v24.hl7").read_bytes(), default_tz=UTC
    )
    for obs in msg.observations:
        m = map_observation(obs)
        assert (m.kind, m.loinc, m.value, m.flags) == (None, None, None, ("unmapped",))


def test_local_code_without_system_is_unmapped_by_default() -> None:
    assert map_observation(obx("150021", "", "120", MMHG)).flags == ("unmapped",)
    assert map_observation(obx("HR", "", "72", ("bpm", "", ""))).flags == ("unmapped",)


def test_admin_map_with_wildcard_maps_a_local_code() -> None:
    hr = DEFAULT_CODE_MAP[("MDC", "147842")]
    local = replace(hr, source="clinic admin, 2025-03-01: Acme monitor sends HR without system")
    code_map = {**DEFAULT_CODE_MAP, **build_code_map([(WILDCARD, "HR", local)])}
    m = map_observation(obx("hr", "", "72", ("bpm", "", "")), code_map)
    assert (m.kind, m.value, m.ucum_unit) == ("heart_rate", Decimal("72"), "/min")


def test_exact_system_wins_over_wildcard() -> None:
    weird = CodeMapEntry("X-1", "wrong", "mm[Hg]", "diastolic", "test")
    code_map = {**DEFAULT_CODE_MAP, code_key(WILDCARD, "150021"): weird}
    assert map_observation(obx("150021", "MDC", "120", MMHG), code_map).kind == "systolic"


@pytest.mark.parametrize(
    ("value", "celsius"),
    [("98.6", "37.00"), ("100.4", "38.00"), ("104", "40.00"), ("96.8", "36.00"), ("95", "35.00")],
)
def test_fahrenheit_is_converted_to_celsius(value: str, celsius: str) -> None:
    m = map_observation(obx("150364", "MDC", value, ("266560", "MDC_DIM_FAHR", "MDC")))
    assert (m.value, m.ucum_unit, m.flags) == (Decimal(celsius), "Cel", ())
    assert map_observation(obx("150364", "MDC", value, ("[degF]", "", "UCUM"))).value == Decimal(
        celsius
    )


def test_fahrenheit_outside_the_sanity_range_after_conversion_gives_no_value() -> None:
    m = map_observation(obx("150364", "MDC", "32", ("266560", "MDC_DIM_FAHR", "MDC")))
    assert (m.value, m.flags) == (None, ("implausible",))  # 0 Cel: not a body temperature


@pytest.mark.parametrize(("value", "kg"), [("150", "68.04"), ("1", "0.45"), ("220.5", "100.02")])
def test_pounds_are_converted_to_kilograms(value: str, kg: str) -> None:
    m = map_observation(obx("188736", "MDC", value, ("263904", "MDC_DIM_LB", "MDC")))
    assert (m.value, m.ucum_unit) == (Decimal(kg), "kg")
    assert map_observation(obx("188736", "MDC", value, ("lb", "", ""))).value == Decimal(kg)


def test_celsius_and_kilograms_pass_unchanged() -> None:
    assert map_observation(obx("150364", "MDC", "36.8", ("268192", "", "MDC"))).value == Decimal(
        "36.8"
    )
    assert map_observation(obx("188736", "MDC", "80", ("kg", "", "UCUM"))).value == Decimal("80")


def test_unknown_or_wrong_unit_gives_no_value() -> None:
    kpa = map_observation(obx("150021", "MDC", "16", ("265987", "MDC_DIM_KILO_PASCAL", "MDC")))
    assert (kpa.kind, kpa.value, kpa.flags) == ("systolic", None, ("unit_unknown",))
    wrong = map_observation(obx("150021", "MDC", "16", ("%", "", "")))
    assert (wrong.value, wrong.flags) == (None, ("unit_mismatch",))


def test_missing_unit_is_assumed_only_where_unambiguous() -> None:
    spo2 = map_observation(obx("150456", "MDC", "95", ("", "", "")))
    assert (spo2.value, spo2.flags) == (Decimal("95"), ("unit_assumed",))
    temp = map_observation(obx("150364", "MDC", "98.6", ("", "", "")))
    assert (temp.value, temp.flags) == (None, ("unit_missing",))
    bp = map_observation(obx("150021", "MDC", "120", ("", "", "")))
    assert (bp.value, bp.flags) == (None, ("unit_missing",))


@pytest.mark.parametrize("status", ["X", "D", "W"])
def test_results_that_are_not_results_give_no_value(status: str) -> None:
    m = map_observation(obx("150021", "MDC", "120", MMHG, status=status))
    assert (m.value, m.flags) == (None, ("status_not_usable",))


def test_11073_nan_sentinel_is_implausible() -> None:
    m = map_observation(obx("150456", "MDC", "8388607", ("262688", "", "MDC"), status="X"))
    assert m.value is None
    m = map_observation(obx("150456", "MDC", "8388607", ("262688", "", "MDC")))
    assert (m.value, m.flags) == (None, ("implausible",))
    edge = map_observation(obx("150456", "MDC", "100", ("262688", "", "MDC")))
    assert edge.value == Decimal("100")
    zero_hr = map_observation(obx("147842", "MDC", "0", ("264864", "", "MDC")))
    assert zero_hr.value == Decimal("0")  # asystole / leads off must reach the alert rules


def test_no_numeric_value_gives_no_value_and_no_extra_flag() -> None:
    m = map_observation(obx("150021", "MDC", None, MMHG))
    assert (m.kind, m.value, m.flags) == ("systolic", None, ())


# --- admin edits are checked (a typo must not silently stop a vital from alerting) -------------

SYSTOLIC_ROW = {"source": "", "system": "MDC", "code": "150021", "loinc": "8480-6", "display": "Systolic",
                "ucum_unit": "mm[Hg]", "kind": "systolic", "extra_loinc": "", "plausible_low": "0",
                "plausible_high": "400", "reference": "edited", "active": "on"}


@pytest.mark.parametrize("code", ["8480-6", "8462-4", "59408-5", "2708-6", "9279-1", "8867-4", "8310-5"])
def test_real_loinc_codes_pass_the_mod10_check(code: str) -> None:
    from ketasafe.monitoring.codemap import loinc_is_valid

    assert loinc_is_valid(code)


@pytest.mark.parametrize("code", ["banana", "8480-5", "8480", "8480-66", "-6", "84 80-6", ""])
def test_malformed_loinc_codes_or_wrong_check_digits_fail(code: str) -> None:
    from ketasafe.monitoring.codemap import loinc_is_valid

    assert not loinc_is_valid(code)


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field"), [
    ({"loinc": "banana"}, "loinc"),
    ({"loinc": "8480-5"}, "loinc"),
    ({"extra_loinc": "8480-6,nope"}, "extra_loinc"),
    ({"ucum_unit": "mmHg"}, "ucum_unit"),
    ({"ucum_unit": "%"}, "ucum_unit"),
    ({"ucum_unit": ""}, "ucum_unit"),
    ({"plausible_low": ""}, "plausible_low"),
    ({"plausible_high": ""}, "plausible_low"),
    ({"plausible_low": "300", "plausible_high": "200"}, "plausible_low"),
])  # fmt: skip
def test_code_map_form_rejects_entries_that_would_stop_a_vital_alerting(change: dict, field: str) -> None:
    from ketasafe.monitoring.forms import CodeMapEntryForm

    form = CodeMapEntryForm({**SYSTOLIC_ROW, "code": "X1", **change})
    assert not form.is_valid()
    assert field in form.errors, form.errors


@pytest.mark.django_db
def test_code_map_form_accepts_a_correct_entry_and_a_unitless_panel_row() -> None:
    from ketasafe.monitoring.forms import CodeMapEntryForm

    assert CodeMapEntryForm({**SYSTOLIC_ROW, "code": "X1"}).is_valid()
    panel = {**SYSTOLIC_ROW, "code": "X2", "loinc": "85354-9", "ucum_unit": "", "kind": "", "plausible_low": "",
             "plausible_high": ""}
    assert CodeMapEntryForm(panel).is_valid()


@pytest.mark.django_db
def test_the_save_service_refuses_a_bad_entry_too(make_staff) -> None:
    from django.core.exceptions import ValidationError

    from ketasafe.monitoring.codemap import do_save_code_map_entry

    values = {**SYSTOLIC_ROW, "code": "X3", "ucum_unit": "mmHg", "active": True, "plausible_low": Decimal(0),
              "plausible_high": Decimal(400)}
    with pytest.raises(ValidationError):
        do_save_code_map_entry(actor=make_staff("clinic_admin"), values=values)



# --- map_observation against its earlier, straightforward form --------------------------------


# The straightforward forms that map_observation and resolve_unit write out for speed: the
# lookup through lookup() and code_key, the result through the dataclass's own constructor.
# The value rules (_value) are shared, not copied: they were not rewritten.
def _ref_resolve_unit(obs: ParsedObservation) -> str | None:
    ucum = UNIT_CODES.get(code_key(obs.units_system, obs.units_code))
    if ucum is None:
        ucum = _TEXT_UNITS.get(obs.units_code) or _TEXT_UNITS.get(obs.units_text)
    return ucum


def reference_map_observation(obs: ParsedObservation, code_map: CodeMap = DEFAULT_CODE_MAP) -> MappedObservation:
    entry = lookup(obs, code_map)
    if entry is None:
        return MappedObservation(None, None, None, None, None, ("unmapped",))
    flags: list[MappingFlag] = []
    value = codes._value(obs, entry, flags)
    return MappedObservation(loinc=entry.loinc, display=entry.display, ucum_unit=entry.ucum_unit or None,
                             value=value, kind=entry.kind, flags=tuple(flags), extra_loinc=entry.extra_loinc)


ENTRIES = st.builds(
    CodeMapEntry,
    loinc=st.sampled_from(["8480-6", "8867-4", ""]),
    display=st.sampled_from(["Systolic", ""]),
    ucum_unit=st.sampled_from(["mm[Hg]", "/min", "%", "Cel", "kg", ""]),
    kind=st.sampled_from([None, "systolic", "heart_rate", "temperature"]),
    source=st.just("test"),
    extra_loinc=st.sampled_from([(), ("59408-5",)]),
    assume_unit_if_missing=st.booleans(),
    plausible=st.sampled_from([None, (Decimal(0), Decimal(400)), (Decimal("35.5"), Decimal("36.5"))]),
)
KEYS = st.tuples(st.sampled_from(["MDC", "MDIL", "LN", WILDCARD, "", "mdc"]),
                 st.sampled_from(["150021", "0002-4bb8", "0002-4BB8", "x", " 150021 ", ""]))  # fmt: skip
OBSERVATIONS = st.builds(
    ParsedObservation,
    position=st.just(0), set_id=st.just("1"), value_type=st.just("NM"),
    code=st.sampled_from(["150021", "0002-4bb8", "0002-4BB8", "x", " 150021 ", "", "150456"]),
    code_text=st.just(""),
    code_system=st.sampled_from(["MDC", "MDIL", " mdc ", "", "LN", WILDCARD]),
    sub_id=st.just(""), raw_value=st.just(""),
    numeric_value=st.sampled_from([None, Decimal("97"), Decimal("97.0"), Decimal("-0"), Decimal("98.6"),
                                   Decimal("8388607"), Decimal("36")]),
    units_code=st.sampled_from(["", "266016", "262688", "0004-0220", "mmHg", "%", "[degF]", "lb", "kPa"]),
    units_text=st.sampled_from(["", "MDC_DIM_MMHG", "%", "°F", "bpm", "x"]),
    units_system=st.sampled_from(["", "MDC", "mdil", " mdc ", "UCUM"]),
    result_status=st.sampled_from(["F", "R", "X", "D", "", "C"]),
    observed_at=st.none(), device_id=st.none(), flags=st.just(()),
)  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(OBSERVATIONS, st.dictionaries(KEYS, ENTRIES, max_size=6) | st.just(DEFAULT_CODE_MAP))
def test_map_observation_matches_its_reference_form(obs: ParsedObservation, code_map: CodeMap) -> None:
    assert resolve_unit(obs) == _ref_resolve_unit(obs)
    got = map_observation(obs, code_map)
    expected = reference_map_observation(obs, code_map)
    assert type(got) is MappedObservation
    assert got == expected
    assert repr(got) == repr(expected)  # also tells Decimal("97") from Decimal("97.0")
    assert hash(got) == hash(expected)


def test_map_observation_follows_a_code_map_changed_in_place() -> None:
    """Nothing is memoised per code map: a map edited in place (or rebuilt by code_map_for after
    an admin's edit, possibly at the same address) is read as it is now."""
    obs = obx("150021", "MDC", "132", MMHG)
    code_map = dict(DEFAULT_CODE_MAP)
    assert map_observation(obs, code_map).kind == "systolic"
    code_map[("MDC", "150021")] = replace(code_map[("MDC", "150021")], kind="diastolic", loinc="8462-4")
    assert (map_observation(obs, code_map).kind, map_observation(obs, code_map).loinc) == ("diastolic", "8462-4")
    del code_map[("MDC", "150021")]
    assert map_observation(obs, code_map).flags == ("unmapped",)


def test_a_plausible_range_narrower_than_the_shipped_one_is_refused() -> None:
    # SBP 230 outside an admin's 0-150 range would be stored without a value and raise no alert.
    from ketasafe.monitoring.codemap import entry_errors

    row = {"loinc": "8480-6", "ucum_unit": "mm[Hg]", "kind": "systolic"}
    assert "plausible_low" in entry_errors({**row, "plausible_low": Decimal(0), "plausible_high": Decimal(150)})
    assert "plausible_low" in entry_errors({**row, "plausible_low": Decimal(30), "plausible_high": Decimal(400)})
    assert entry_errors({**row, "plausible_low": Decimal(0), "plausible_high": Decimal(500)}) == {}
