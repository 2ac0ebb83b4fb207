"""Dose arithmetic for one session under a protocol's limits (contracts/cli.md, `dose`).

Pure: no Django, no clock. Every input becomes a Decimal built from its text, so 72.5 x 0.5 is
exactly 36.25 and rounds half away from zero to 36.3 mg (ROUND_HALF_UP is away from zero in
``decimal``); binary floats and ``round()`` (half to even) would give 36.2. Every range is
inclusive and nothing is clamped: an input out of range raises DoseOutOfRange naming the limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from .definitions import EsketamineDosing, IvDosing, ProtocolDefinition, fmt, get_protocol
from .exceptions import DoseInputError, DoseOutOfRange

Number = Decimal | int | float | str

_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_TENTH = Decimal("0.1")
_HUNDREDTH = Decimal("0.01")


@dataclass(frozen=True)
class IvDoseResult:
    protocol: str
    dose_basis: str  # "mg_per_kg" or "mg_per_kg_per_h": the key as_dict() prints
    weight_kg: Decimal
    dose_per_kg: Decimal
    dose_mg: Decimal
    concentration_mg_per_ml: Decimal
    drug_volume_ml: Decimal
    final_volume_ml: Decimal
    duration_min: int
    rate_ml_per_h: Decimal

    def as_dict(self) -> dict[str, str | int | float]:
        """The contract's keys in the contract's order."""
        return {
            "protocol": self.protocol,
            "weight_kg": float(self.weight_kg),
            self.dose_basis: float(self.dose_per_kg),
            "dose_mg": float(self.dose_mg),
            "concentration_mg_per_ml": float(self.concentration_mg_per_ml),
            "drug_volume_ml": float(self.drug_volume_ml),
            "final_volume_ml": float(self.final_volume_ml),
            "duration_min": self.duration_min,
            "rate_ml_per_h": float(self.rate_ml_per_h),
        }


@dataclass(frozen=True)
class EsketamineDoseResult:
    protocol: str
    session: int
    dose_mg: Decimal
    devices: int
    minutes_between_devices: int
    min_monitoring_min: int
    weight_kg: Decimal | None = None  # recorded when given; never changes the dose

    def as_dict(self) -> dict[str, str | int | float]:
        """The contract's keys in the contract's order; weight_kg only when given."""
        out: dict[str, str | int | float] = {
            "protocol": self.protocol,
            "session": self.session,
            "dose_mg": float(self.dose_mg),
            "devices": self.devices,
            "minutes_between_devices": self.minutes_between_devices,
            "min_monitoring_min": self.min_monitoring_min,
        }
        if self.weight_kg is not None:
            out["weight_kg"] = float(self.weight_kg)
        return out


DoseResult = IvDoseResult | EsketamineDoseResult


def option_name(param: str) -> str:
    """The CLI option for a keyword argument: weight_kg -> --weight-kg."""
    return "--" + param.replace("_", "-")


def to_decimal(param: str, value: Number | None) -> Decimal | None:
    """The exact decimal value of an input, from its text; None stays None.

    Raises DoseInputError naming the option for anything that is not a finite number.
    """
    if value is None:
        return None
    option = option_name(param)
    if isinstance(value, bool):
        raise DoseInputError(f"{option} {value} is not a number", option=option)
    if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value.strip()):
        # Decimal() alone would also take "1_0", "1e1", "NaN" and non-ASCII digits ("٣").
        raise DoseInputError(f"{option} {value!r} is not a number", option=option)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:  # a value of another type, despite the annotation
        raise DoseInputError(f"{option} {value!r} is not a number", option=option) from None
    if not number.is_finite():
        raise DoseInputError(f"{option} {value} is not a finite number", option=option)
    return number


def _round(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_UP)


def _whole(param: str, value: Decimal, what: str) -> int:
    if value != value.to_integral_value():
        option = option_name(param)
        raise DoseInputError(f"{option} {value} must be a whole number of {what}", option=option)
    return int(value)


def _in_range(param: str, value: Decimal, low: Decimal | int, high: Decimal | int, unit: str) -> None:
    if not low <= value <= high:
        option = option_name(param)
        raise DoseOutOfRange(
            f"{option} {value} is outside the allowed range {fmt(low)}-{fmt(high)} {unit}",
            option=option,
        )


def _refuse(param: str, protocol: ProtocolDefinition, why: str = "") -> DoseInputError:
    option = option_name(param)
    return DoseInputError(f"{option} does not apply to {protocol.id}{why}", option=option)


def compute_dose(
    protocol: ProtocolDefinition | str,
    *,
    weight_kg: Number | None = None,
    mg_per_kg: Number | None = None,
    mg_per_kg_per_h: Number | None = None,
    concentration_mg_per_ml: Number | None = None,
    final_volume_ml: Number | None = None,
    duration_min: Number | None = None,
    session: Number | None = None,
    dose_mg: Number | None = None,
) -> DoseResult:
    """The dose for one session under ``protocol`` (a definition, or a shipped protocol's id).

    Inputs left as None take the protocol's default. An option the protocol does not take is
    refused rather than ignored, so a mistaken order never looks accepted. Raises
    DoseInputError / DoseOutOfRange (one line naming the option and the limit) or
    UnknownProtocol.
    """
    defn = get_protocol(protocol) if isinstance(protocol, str) else protocol
    given = {
        "weight_kg": to_decimal("weight_kg", weight_kg),
        "mg_per_kg": to_decimal("mg_per_kg", mg_per_kg),
        "mg_per_kg_per_h": to_decimal("mg_per_kg_per_h", mg_per_kg_per_h),
        "concentration_mg_per_ml": to_decimal("concentration_mg_per_ml", concentration_mg_per_ml),
        "final_volume_ml": to_decimal("final_volume_ml", final_volume_ml),
        "duration_min": to_decimal("duration_min", duration_min),
        "session": to_decimal("session", session),
        "dose_mg": to_decimal("dose_mg", dose_mg),
    }
    if defn.iv is not None:
        return _iv_dose(defn, defn.iv, given)
    assert defn.esketamine is not None  # ProtocolDefinition guarantees one kind of limits
    return _esketamine_dose(defn, defn.esketamine, given)


def _check_weight(weight: Decimal, limits: IvDosing | EsketamineDosing) -> None:
    _in_range("weight_kg", weight, limits.weight_kg_min, limits.weight_kg_max, "kg")


def _iv_dose(defn: ProtocolDefinition, iv: IvDosing, given: dict[str, Decimal | None]) -> DoseResult:
    for param in ("session", "dose_mg"):
        if given[param] is not None:
            raise _refuse(param, defn)
    other_basis = "mg_per_kg_per_h" if iv.dose_basis == "mg_per_kg" else "mg_per_kg"
    if given[other_basis] is not None:
        raise _refuse(other_basis, defn, f" (it is dosed in {option_name(iv.dose_basis)})")

    weight = given["weight_kg"]
    if weight is None:
        option = option_name("weight_kg")
        raise DoseInputError(f"{option} is required for {defn.id}", option=option)
    _check_weight(weight, iv)

    unit = "mg/kg" if iv.dose_basis == "mg_per_kg" else "mg/kg/h"
    per_kg = given[iv.dose_basis]
    per_kg = iv.dose_per_kg_default if per_kg is None else per_kg
    _in_range(iv.dose_basis, per_kg, iv.dose_per_kg_min, iv.dose_per_kg_max, unit)

    concentration = given["concentration_mg_per_ml"]
    concentration = iv.concentration_mg_per_ml_default if concentration is None else concentration
    if concentration not in iv.concentrations_mg_per_ml:
        option = option_name("concentration_mg_per_ml")
        allowed = ", ".join(fmt(c) for c in iv.concentrations_mg_per_ml)
        raise DoseOutOfRange(f"{option} {concentration} is not an allowed strength ({allowed} mg/mL)", option=option)

    volume = given["final_volume_ml"]
    volume = iv.final_volume_ml_default if volume is None else volume
    _in_range("final_volume_ml", volume, iv.final_volume_ml_min, iv.final_volume_ml_max, "mL")

    raw_minutes = given["duration_min"]
    if iv.infusion_minutes_fixed and raw_minutes is not None:
        option = option_name("duration_min")
        raise DoseInputError(
            f"{option} is not accepted for {defn.id}: the infusion time is fixed at {iv.infusion_minutes_default} min",
            option=option,
        )
    if raw_minutes is None:
        minutes = iv.infusion_minutes_default
    else:
        low, high = iv.infusion_minutes_min, iv.infusion_minutes_max
        _in_range("duration_min", raw_minutes, low, high, "min")
        minutes = _whole("duration_min", raw_minutes, "minutes")

    # mg/kg is for the whole infusion; mg/kg/h runs for the infusion's hours (CRPS: x 4).
    hours = Decimal(minutes) / 60 if iv.dose_basis == "mg_per_kg_per_h" else Decimal(1)
    dose = _round(weight * per_kg * hours, _TENTH)
    # The volume is drawn up from the ROUNDED dose: the dose printed is the dose given.
    drug_volume = _round(dose / concentration, _HUNDREDTH)
    # Multiply before dividing, so the only inexact step is the final rounding.
    rate = _round(volume * 60 / minutes, _TENTH)
    return IvDoseResult(
        protocol=defn.id,
        dose_basis=iv.dose_basis,
        weight_kg=weight,
        dose_per_kg=per_kg,
        dose_mg=dose,
        concentration_mg_per_ml=concentration,
        drug_volume_ml=drug_volume,
        final_volume_ml=volume,
        duration_min=minutes,
        rate_ml_per_h=rate,
    )


def _esketamine_dose(defn: ProtocolDefinition, esk: EsketamineDosing, given: dict[str, Decimal | None]) -> DoseResult:
    iv_only = ("mg_per_kg", "mg_per_kg_per_h", "concentration_mg_per_ml", "final_volume_ml")
    for param in (*iv_only, "duration_min"):
        if given[param] is not None:
            raise _refuse(param, defn)

    weight = given["weight_kg"]
    if weight is not None:
        _check_weight(weight, esk)

    raw_session = given["session"]
    option = option_name("session")
    if raw_session is None:
        raise DoseInputError(f"{option} is required for {defn.id}", option=option)
    session = _whole("session", raw_session, "sessions")
    if session < 1:
        raise DoseOutOfRange(f"{option} {raw_session} must be 1 or more", option=option)

    dose = given["dose_mg"]
    dose = Decimal(esk.dose_mg_default) if dose is None else dose
    option = option_name("dose_mg")
    if dose not in esk.allowed_doses_mg:
        allowed = " or ".join(str(d) for d in esk.allowed_doses_mg)
        raise DoseOutOfRange(f"{option} {dose} is not an allowed dose for {defn.id} ({allowed} mg)", option=option)
    # facts 1.3: TRD day 1 is 56 mg; MDSI is 84 mg from the start (contracts/cli.md).
    if session == 1 and dose != esk.session_1_dose_mg:
        raise DoseOutOfRange(
            f"{option} {dose} is not allowed at session 1 of {defn.id} "
            f"(session 1 allows only {esk.session_1_dose_mg} mg)",
            option=option,
        )
    return EsketamineDoseResult(
        protocol=defn.id,
        session=session,
        dose_mg=dose,
        devices=int(dose) // esk.device_mg,  # facts 1.2: 28 mg per device
        minutes_between_devices=esk.minutes_between_devices,
        min_monitoring_min=esk.min_monitoring_min,
        weight_kg=weight,
    )
