"""Dose arithmetic against contracts/cli.md `dose`. Runs without a database or settings."""

from __future__ import annotations

import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from ketasafe.protocols.dosing import (
    EsketamineDoseResult,
    IvDoseResult,
    compute_dose,
)
from ketasafe.protocols.exceptions import DoseInputError, DoseOutOfRange, UnknownProtocol
from ketasafe.protocols.management.commands.dose import Command

DEP = "iv-ketamine-depression"
CRPS = "iv-ketamine-crps"
TRD = "esketamine-trd"
MDSI = "esketamine-mdsi"

CONTRACT_EXAMPLE = (
    '{"protocol": "iv-ketamine-depression", "weight_kg": 82.0, "mg_per_kg": 0.5, '
    '"dose_mg": 41.0, "concentration_mg_per_ml": 10.0, "drug_volume_ml": 4.1, '
    '"final_volume_ml": 100.0, "duration_min": 40, "rate_ml_per_h": 150.0}'
)


def iv_dose(protocol: str, **inputs: object) -> IvDoseResult:
    result = compute_dose(protocol, **inputs)  # type: ignore[arg-type]
    assert isinstance(result, IvDoseResult)
    return result


def run(*argv: str) -> str:
    out = io.StringIO()
    call_command(Command(), *argv, stdout=out)
    return out.getvalue().strip()


# --- the contract example and output shape -------------------------------------------------


def test_contract_example_is_printed_exactly() -> None:
    assert run(DEP, "--weight-kg", "82") == CONTRACT_EXAMPLE


def test_contract_example_from_the_function() -> None:
    assert json.dumps(compute_dose(DEP, weight_kg=82).as_dict()) == CONTRACT_EXAMPLE


def test_crps_keys_replace_mg_per_kg_with_mg_per_kg_per_h() -> None:
    result = compute_dose(CRPS, weight_kg="82").as_dict()
    assert list(result) == [
        "protocol", "weight_kg", "mg_per_kg_per_h", "dose_mg", "concentration_mg_per_ml",
        "drug_volume_ml", "final_volume_ml", "duration_min", "rate_ml_per_h",
    ]  # fmt: skip
    # 82 x 0.35 x 4 = 114.8 mg; 250 mL over 240 min = 62.5 mL/h.
    assert result == {
        "protocol": CRPS, "weight_kg": 82.0, "mg_per_kg_per_h": 0.35, "dose_mg": 114.8,
        "concentration_mg_per_ml": 10.0, "drug_volume_ml": 11.48, "final_volume_ml": 250.0,
        "duration_min": 240, "rate_ml_per_h": 62.5,
    }  # fmt: skip


def test_esketamine_keys_in_contract_order_without_weight() -> None:
    result = compute_dose(TRD, session=3, dose_mg=84).as_dict()
    assert json.dumps(result) == (
        '{"protocol": "esketamine-trd", "session": 3, "dose_mg": 84.0, "devices": 3, '
        '"minutes_between_devices": 5, "min_monitoring_min": 120}'
    )


def test_esketamine_weight_is_printed_last_when_given_and_does_not_change_the_dose() -> None:
    without = compute_dose(TRD, session=2).as_dict()
    with_weight = compute_dose(TRD, session=2, weight_kg="350").as_dict()
    assert list(with_weight) == [*without, "weight_kg"]
    assert with_weight["weight_kg"] == 350.0
    assert with_weight["dose_mg"] == without["dose_mg"] == 56.0


def test_integer_fields_are_ints_and_measures_are_floats() -> None:
    iv = compute_dose(DEP, weight_kg=70, duration_min="60").as_dict()
    assert type(iv["duration_min"]) is int and iv["duration_min"] == 60
    assert all(type(iv[k]) is float for k in ("weight_kg", "dose_mg", "rate_ml_per_h"))
    esk = compute_dose(MDSI, session="2").as_dict()
    for key in ("session", "devices", "minutes_between_devices", "min_monitoring_min"):
        assert type(esk[key]) is int
    assert type(esk["dose_mg"]) is float


def test_result_types_by_kind() -> None:
    assert isinstance(compute_dose(DEP, weight_kg=70), IvDoseResult)
    assert isinstance(compute_dose(TRD, session=1), EsketamineDoseResult)


# --- rounding ------------------------------------------------------------------------------


@pytest.mark.parametrize("weight", ["72.5", 72.5, Decimal("72.5")])
def test_half_rounds_away_from_zero_on_the_exact_decimal(weight: object) -> None:
    # 72.5 x 0.5 = 36.25 exactly; round(36.25, 1) in binary floats gives 36.2.
    result = compute_dose(DEP, weight_kg=weight)  # type: ignore[arg-type]
    assert result.dose_mg == Decimal("36.3")
    assert result.as_dict()["dose_mg"] == 36.3


def test_float_inputs_use_their_decimal_text_not_their_binary_value() -> None:
    # 0.35 as a binary float is 0.34999...; from its text it is exactly 0.35.
    # 50 x 0.35 x 4 = 70.0 either way, so use a weight where the difference shows:
    # 20.5 x 0.35 x 4 = 28.7 exactly.
    assert compute_dose(CRPS, weight_kg=20.5, mg_per_kg_per_h=0.35).dose_mg == Decimal("28.7")


def test_drug_volume_is_drawn_from_the_rounded_dose() -> None:
    # 72.92 x 0.5 = 36.46 -> 36.5 mg; 36.5 / 100 = 0.365 -> 0.37 mL.
    # From the unrounded dose it would be 0.3646 -> 0.36 mL.
    result = iv_dose(DEP, weight_kg="72.92", concentration_mg_per_ml="100")
    assert result.dose_mg == Decimal("36.5")
    assert result.drug_volume_ml == Decimal("0.37")


def test_rate_rounds_to_a_tenth() -> None:
    # 250 mL over 70 min x 60 = 214.2857... -> 214.3 mL/h
    result = iv_dose(DEP, weight_kg=70, final_volume_ml=250, duration_min=70)
    assert result.rate_ml_per_h == Decimal("214.3")


# --- limits: inclusive at both ends, refused just outside -----------------------------------

IV_EDGES = [
    # (protocol, option, inside low, inside high, just below, just above)
    (DEP, "weight_kg", "20", "350", "19.9", "350.1"),
    (DEP, "mg_per_kg", "0.1", "0.75", "0.09", "0.76"),
    (DEP, "final_volume_ml", "50", "250", "49.9", "250.1"),
    (DEP, "duration_min", "40", "100", "39", "101"),
    (CRPS, "weight_kg", "20", "350", "19.99", "350.01"),
    (CRPS, "mg_per_kg_per_h", "0.1", "0.35", "0.099", "0.351"),
    (CRPS, "final_volume_ml", "50", "250", "49", "251"),
]


@pytest.mark.parametrize(("protocol", "option", "low", "high", "below", "above"), IV_EDGES)
def test_iv_limits_are_inclusive_and_refused_just_outside(
    protocol: str, option: str, low: str, high: str, below: str, above: str
) -> None:
    base: dict[str, str] = {"weight_kg": "70"}
    for value in (low, high):
        result = compute_dose(protocol, **{**base, option: value})
        assert str(getattr(result, _attr(option))) == value
    for value in (below, above):
        with pytest.raises(DoseOutOfRange) as caught:
            compute_dose(protocol, **{**base, option: value})
        assert caught.value.option == "--" + option.replace("_", "-")
        assert str(caught.value).startswith(f"--{option.replace('_', '-')} {value} is outside")


def _attr(option: str) -> str:
    return {"mg_per_kg": "dose_per_kg", "mg_per_kg_per_h": "dose_per_kg"}.get(option, option)


def test_weight_message_names_the_limit_exactly() -> None:
    with pytest.raises(
        DoseOutOfRange,
        match=r"^--weight-kg 19\.9 is outside the allowed range "
        r"20-350 kg$",
    ):
        compute_dose(DEP, weight_kg="19.9")


@pytest.mark.parametrize("concentration", ["10", "50", "100", "10.0"])
def test_allowed_concentrations(concentration: str) -> None:
    result = iv_dose(DEP, weight_kg=80, concentration_mg_per_ml=concentration)
    assert result.concentration_mg_per_ml == Decimal(concentration)


@pytest.mark.parametrize("concentration", ["20", "0", "9.99", "1000"])
def test_other_concentrations_are_refused(concentration: str) -> None:
    message = r"^--concentration-mg-per-ml .* \(10, 50, 100 mg/mL\)$"
    with pytest.raises(DoseOutOfRange, match=message):
        compute_dose(DEP, weight_kg=80, concentration_mg_per_ml=concentration)


def test_duration_must_be_whole_minutes() -> None:
    with pytest.raises(DoseInputError, match="--duration-min 40.5 must be a whole number"):
        compute_dose(DEP, weight_kg=80, duration_min="40.5")


@pytest.mark.parametrize("duration", ["240", "40"])
def test_crps_refuses_any_duration(duration: str) -> None:
    with pytest.raises(DoseInputError, match="--duration-min is not accepted .* fixed at 240"):
        compute_dose(CRPS, weight_kg=80, duration_min=duration)


@pytest.mark.parametrize("protocol", [DEP, CRPS])
def test_iv_requires_weight(protocol: str) -> None:
    with pytest.raises(DoseInputError, match=f"--weight-kg is required for {protocol}"):
        compute_dose(protocol)


@pytest.mark.parametrize(
    ("protocol", "option"),
    [
        (DEP, "mg_per_kg_per_h"),
        (CRPS, "mg_per_kg"),
        (DEP, "session"),
        (DEP, "dose_mg"),
        (TRD, "mg_per_kg"),
        (TRD, "concentration_mg_per_ml"),
        (MDSI, "duration_min"),
        (MDSI, "final_volume_ml"),
    ],
)
def test_options_a_protocol_does_not_take_are_refused_not_ignored(protocol: str, option: str) -> None:
    kwargs = {"weight_kg": "70", "session": "2"} if protocol.startswith("esk") else {"weight_kg": "70"}
    with pytest.raises(DoseInputError, match=f"--{option.replace('_', '-')} does not apply"):
        compute_dose(protocol, **{**kwargs, option: "1"})


@pytest.mark.parametrize("bad", ["abc", "", "1e2", "1_0", "٣", "nan", "NaN", "inf", "8 2"])
def test_non_numbers_are_refused_naming_the_option(bad: str) -> None:
    with pytest.raises(DoseInputError, match="^--weight-kg .* not a"):
        compute_dose(DEP, weight_kg=bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True])
def test_non_finite_and_boolean_values_are_refused(bad: object) -> None:
    with pytest.raises(DoseInputError, match="^--mg-per-kg "):
        compute_dose(DEP, weight_kg=70, mg_per_kg=bad)  # type: ignore[arg-type]


def test_unknown_protocol_names_the_known_ones() -> None:
    with pytest.raises(UnknownProtocol, match="unknown protocol 'iv-ketamine' .*esketamine-trd"):
        compute_dose("iv-ketamine", weight_kg=70)


# --- esketamine ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "session", "dose", "devices"),
    [
        (TRD, "1", None, 2),  # default 56
        (TRD, "1", "56", 2),
        (TRD, "2", None, 2),
        (TRD, "2", "84", 3),
        (MDSI, "1", None, 3),  # default 84
        (MDSI, "1", "84", 3),
        (MDSI, "2", "56", 2),
        (MDSI, "9", "84", 3),
    ],
)
def test_esketamine_allowed_doses_and_devices(protocol: str, session: str, dose: str | None, devices: int) -> None:
    result = compute_dose(protocol, session=session, dose_mg=dose)
    assert isinstance(result, EsketamineDoseResult)
    assert result.devices == devices
    assert result.dose_mg == 28 * devices
    assert (result.minutes_between_devices, result.min_monitoring_min) == (5, 120)


def test_trd_session_1_allows_only_56() -> None:
    with pytest.raises(DoseOutOfRange, match="session 1 allows only 56 mg"):
        compute_dose(TRD, session=1, dose_mg=84)


def test_mdsi_session_1_allows_only_84() -> None:
    with pytest.raises(DoseOutOfRange, match="session 1 allows only 84 mg"):
        compute_dose(MDSI, session=1, dose_mg=56)


@pytest.mark.parametrize("dose", ["28", "70", "112", "0", "-56", "56.5"])
@pytest.mark.parametrize("protocol", [TRD, MDSI])
def test_esketamine_other_doses_are_refused(protocol: str, dose: str) -> None:
    with pytest.raises(DoseOutOfRange, match="is not an allowed dose .*56 or 84 mg"):
        compute_dose(protocol, session=2, dose_mg=dose)


@pytest.mark.parametrize("protocol", [TRD, MDSI])
def test_esketamine_requires_a_session(protocol: str) -> None:
    with pytest.raises(DoseInputError, match=f"--session is required for {protocol}"):
        compute_dose(protocol, dose_mg=56)


@pytest.mark.parametrize(("session", "problem"), [("0", "1 or more"), ("-1", "1 or more"), ("1.5", "whole number")])
def test_esketamine_session_must_be_a_positive_whole_number(session: str, problem: str) -> None:
    with pytest.raises(DoseInputError, match=problem):
        compute_dose(TRD, session=session)


@pytest.mark.parametrize("weight", ["19.9", "350.1"])
def test_esketamine_weight_when_given_is_range_checked(weight: str) -> None:
    with pytest.raises(DoseOutOfRange, match="--weight-kg .* 20-350 kg"):
        compute_dose(TRD, session=2, weight_kg=weight)


# --- the management command ----------------------------------------------------------------


def test_command_prints_esketamine_json() -> None:
    assert json.loads(run(MDSI, "--session", "1")) == {
        "protocol": MDSI, "session": 1, "dose_mg": 84.0, "devices": 3,
        "minutes_between_devices": 5, "min_monitoring_min": 120,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((DEP, "--weight-kg", "19.9"), "--weight-kg 19.9 is outside the allowed range 20-350 kg"),
        ((DEP, "--weight-kg", "heavy"), "--weight-kg 'heavy' is not a number"),
        ((DEP,), "--weight-kg is required for iv-ketamine-depression"),
        ((CRPS, "--weight-kg", "80", "--duration-min", "240"), "--duration-min is not accepted"),
        ((TRD, "--session", "1", "--dose-mg", "84"), "session 1 allows only 56 mg"),
        (("ketamine", "--weight-kg", "80"), "unknown protocol 'ketamine'"),
    ],
)
def test_command_errors_exit_2_with_one_line(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        run(*argv)
    assert caught.value.returncode == 2
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# --- properties ----------------------------------------------------------------------------

weights = st.decimals(min_value=20, max_value=350, places=2)
volumes = st.decimals(min_value=50, max_value=250, places=1)
concentrations = st.sampled_from(["10", "50", "100"])


def _check_iv(result: IvDoseResult, expected_mg: Decimal, low_mg: Decimal, high_mg: Decimal) -> None:
    assert abs(result.dose_mg - expected_mg) <= Decimal("0.05")
    drawn = result.drug_volume_ml * result.concentration_mg_per_ml
    assert abs(drawn - result.dose_mg) <= Decimal("0.005") * result.concentration_mg_per_ml
    assert low_mg <= result.dose_mg <= high_mg
    assert result.drug_volume_ml <= result.final_volume_ml  # the drug fits in the bag
    assert Decimal("50") <= result.final_volume_ml <= Decimal("250")


@given(
    weights,
    st.decimals(min_value="0.1", max_value="0.75", places=3),
    concentrations,
    volumes,
    st.integers(min_value=40, max_value=100),
)
def test_any_valid_depression_input_gives_weight_times_mg_per_kg(
    weight: Decimal, per_kg: Decimal, concentration: str, volume: Decimal, minutes: int
) -> None:
    result = compute_dose(
        DEP,
        weight_kg=str(weight),
        mg_per_kg=str(per_kg),
        concentration_mg_per_ml=concentration,
        final_volume_ml=str(volume),
        duration_min=minutes,
    )
    assert isinstance(result, IvDoseResult)
    # The extremes the protocol allows: 20 kg x 0.1 and 350 kg x 0.75.
    _check_iv(result, weight * per_kg, Decimal("2.0"), Decimal("262.5"))
    assert 40 <= result.duration_min <= 100
    assert abs(result.rate_ml_per_h - volume * 60 / minutes) <= Decimal("0.05")


@given(
    weights,
    st.decimals(min_value="0.1", max_value="0.35", places=3),
    concentrations,
    volumes,
)
def test_any_valid_crps_input_gives_weight_times_rate_times_4_hours(
    weight: Decimal, per_kg_h: Decimal, concentration: str, volume: Decimal
) -> None:
    result = compute_dose(
        CRPS,
        weight_kg=str(weight),
        mg_per_kg_per_h=str(per_kg_h),
        concentration_mg_per_ml=concentration,
        final_volume_ml=str(volume),
    )
    assert isinstance(result, IvDoseResult)
    _check_iv(result, weight * per_kg_h * 4, Decimal("8.0"), Decimal("490.0"))
    assert result.duration_min == 240


@given(st.floats(min_value=20, max_value=350), st.floats(min_value=0.1, max_value=0.75))
def test_float_inputs_are_taken_at_their_shortest_decimal_text(weight: float, per_kg: float) -> None:
    result = compute_dose(DEP, weight_kg=weight, mg_per_kg=per_kg)
    assert abs(result.dose_mg - Decimal(repr(weight)) * Decimal(repr(per_kg))) <= Decimal("0.05")


@given(
    st.one_of(
        st.decimals(max_value="19.99", places=2, allow_nan=False, allow_infinity=False),
        st.decimals(min_value="350.01", places=2, allow_nan=False, allow_infinity=False),
    )
)
def test_any_weight_outside_the_range_is_refused_never_clamped(weight: Decimal) -> None:
    with pytest.raises(DoseOutOfRange, match="--weight-kg"):
        compute_dose(DEP, weight_kg=str(weight))
