"""Parse and validate a screening intake (contracts/screening-rules-v1.md, Input). Pure.

Everything the contract says to refuse raises IntakeInvalid naming the field; nothing else ever
escapes, whatever the JSON holds. Two choices beyond the contract, both for safety:

- Unknown keys at the top level, in ``patient`` and in ``vitals`` are refused: a misspelt
  ``medication`` or ``breastfeding`` would otherwise vanish silently and a rule would not fire.
  Entries of ``conditions``, ``medications`` and ``allergies`` may carry extra keys (display text),
  because their required keys already catch a misspelling.
- A medication needs an ``atc`` code: without one no medication rule can see it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar, cast

from ketasafe.outcomes.exceptions import ScaleAnswersInvalid
from ketasafe.outcomes.scales import score
from ketasafe.screening.codes import PROTOCOLS
from ketasafe.screening.exceptions import IntakeInvalid

__all__ = [
    "Allergy",
    "Condition",
    "ConditionStatus",
    "HepaticImpairment",
    "Intake",
    "IntakeInvalid",
    "Medication",
    "Patient",
    "Scales",
    "Sex",
    "Vitals",
    "parse_intake",
    "parse_intake_json",
]


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class ConditionStatus(StrEnum):
    ACTIVE = "active"
    HISTORY = "history"
    RESOLVED = "resolved"


class HepaticImpairment(StrEnum):
    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


@dataclass(frozen=True, slots=True)
class Patient:
    birth_date: date
    sex: Sex
    weight_kg: float
    height_cm: float | None = None
    pregnant: bool | None = None  # None: not recorded (PREGNANCY-UNKNOWN may fire)
    breastfeeding: bool | None = None


@dataclass(frozen=True, slots=True)
class Vitals:
    # Numbers are kept as given (int stays int) so evidence echoes the input exactly.
    systolic: float | None = None
    diastolic: float | None = None
    heart_rate: float | None = None
    spo2: float | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    system: str
    code: str
    status: ConditionStatus


@dataclass(frozen=True, slots=True)
class Medication:
    atc: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Allergy:
    substance: str


@dataclass(frozen=True, slots=True)
class Scales:
    phq9: tuple[int, ...] | None = None
    cssrs_screen: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Intake:
    protocol: str
    assessed_on: date
    patient: Patient
    vitals: Vitals | None = None  # None: no vitals given, so no vitals rule can fire
    hepatic_impairment: HepaticImpairment = HepaticImpairment.NONE
    conditions: tuple[Condition, ...] = ()
    medications: tuple[Medication, ...] = ()
    allergies: tuple[Allergy, ...] = ()
    scales: Scales = Scales()


# Inclusive ranges from the contract's Input section.
WEIGHT_KG = (20, 350)
VITAL_RANGES: Mapping[str, tuple[int, int]] = {
    "systolic": (50, 300),
    "diastolic": (20, 200),
    "heart_rate": (20, 250),
    "spo2": (50, 100),
}
# Not in the contract: a sanity range so a metres-for-centimetres slip is caught.
HEIGHT_CM = (50, 260)
CONDITION_SYSTEM = "icd-10-cm"
# Loose ICD-10-CM shape: letter, digit, alphanumeric, then an optional dotted extension.
_ICD_SHAPE = re.compile(r"[A-Za-z][0-9][0-9A-Za-z](\.?[0-9A-Za-z]{1,4})?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
SCALE_KEYS: Mapping[str, str] = {"phq9": "phq9", "cssrs_screen": "cssrs-screen"}

_TOP_KEYS = frozenset({
    "protocol", "assessed_on", "patient", "vitals", "hepatic_impairment", "conditions",
    "medications", "allergies", "scales",
})
_PATIENT_KEYS = frozenset({
    "birth_date", "sex", "weight_kg", "height_cm", "pregnant", "breastfeeding",
})

_E = TypeVar("_E", bound=StrEnum)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list",
            dict: "object"}.get(type(value), type(value).__name__)


def _object(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise IntakeInvalid(field, f"expected an object, got {_type_name(value)}")
    return cast(Mapping[str, Any], value)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _key_name(key: str) -> str:
    """A key as shown in an error: quoted when it is not plain, so a key holding a newline or
    nothing at all still gives one readable line."""
    return key if _PLAIN_KEY.fullmatch(key) else repr(key[:64])


def _no_unknown_keys(obj: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
    for key in obj:
        if key not in allowed:
            raise IntakeInvalid(f"{prefix}{_key_name(key)}", "unknown field")


def _required(obj: Mapping[str, Any], key: str, field: str) -> object:
    value = obj.get(key)
    if value is None:
        raise IntakeInvalid(field, "missing required field")
    return value


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise IntakeInvalid(field, f"expected a string, got {_type_name(value)}")
    if not value.strip():
        raise IntakeInvalid(field, "must not be empty")
    if "\x00" in value:
        # PostgreSQL cannot store a NUL in text or jsonb; no real value holds one.
        raise IntakeInvalid(field, "must not contain a NUL character")
    return value


def _number(value: object, field: str, lo: int, hi: int) -> float:
    # bool is an int in Python; true must never pass as 1 kg or 1 mmHg.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IntakeInvalid(field, f"expected a number, got {_type_name(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise IntakeInvalid(field, f"{value} is not a finite number")
    if not lo <= value <= hi:
        raise IntakeInvalid(field, f"{value} is outside {lo}-{hi}")
    return value


def _optional_bool(value: object, field: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise IntakeInvalid(field, f"expected true, false or null, got {_type_name(value)}")


def _date(value: object, field: str) -> date:
    text = _string(value, field)
    # fromisoformat alone also accepts "20261124" and week dates; the contract means YYYY-MM-DD.
    if not _ISO_DATE.fullmatch(text):
        raise IntakeInvalid(field, f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise IntakeInvalid(field, f"{text!r} is not a valid date ({exc})") from None


def _choice(value: object, field: str, enum: type[_E], what: str) -> _E:
    if not isinstance(value, str):
        raise IntakeInvalid(field, f"expected a string, got {_type_name(value)}")
    try:
        return enum(value)
    except ValueError:
        raise IntakeInvalid(field, f"unknown {what} {value!r}") from None


def _list(obj: Mapping[str, Any], key: str) -> Sequence[object]:
    value = obj.get(key)
    if value is None:
        return ()  # lists default to empty (contract)
    if not isinstance(value, list):
        raise IntakeInvalid(key, f"expected a list, got {_type_name(value)}")
    return cast(list[object], value)


def _parse_patient(value: object) -> Patient:
    obj = _object(value, "patient")
    _no_unknown_keys(obj, _PATIENT_KEYS, "patient.")
    birth_date = _date(_required(obj, "birth_date", "patient.birth_date"), "patient.birth_date")
    sex = _choice(_required(obj, "sex", "patient.sex"), "patient.sex", Sex, "sex")
    weight = _number(_required(obj, "weight_kg", "patient.weight_kg"), "patient.weight_kg",
                     *WEIGHT_KG)
    height_raw = obj.get("height_cm")
    height = None if height_raw is None else _number(height_raw, "patient.height_cm", *HEIGHT_CM)
    return Patient(
        birth_date=birth_date,
        sex=sex,
        weight_kg=weight,
        height_cm=height,
        pregnant=_optional_bool(obj.get("pregnant"), "patient.pregnant"),
        breastfeeding=_optional_bool(obj.get("breastfeeding"), "patient.breastfeeding"),
    )


def _parse_vitals(value: object) -> Vitals | None:
    if value is None:
        return None
    obj = _object(value, "vitals")
    _no_unknown_keys(obj, frozenset(VITAL_RANGES), "vitals.")
    found: dict[str, float | None] = {}
    for key, (lo, hi) in VITAL_RANGES.items():
        raw = obj.get(key)
        found[key] = None if raw is None else _number(raw, f"vitals.{key}", lo, hi)
    return Vitals(**found)


def _parse_condition(value: object, field: str) -> Condition:
    obj = _object(value, field)
    system = _string(_required(obj, "system", f"{field}.system"), f"{field}.system")
    if system != CONDITION_SYSTEM:
        raise IntakeInvalid(f"{field}.system",
                            f"unknown system {system!r} (only {CONDITION_SYSTEM})")
    code = _string(_required(obj, "code", f"{field}.code"), f"{field}.code").strip()
    if not _ICD_SHAPE.fullmatch(code):
        raise IntakeInvalid(f"{field}.code", f"{code!r} is not an ICD-10-CM code")
    status = _choice(_required(obj, "status", f"{field}.status"), f"{field}.status",
                     ConditionStatus, "status")
    return Condition(system=system, code=code, status=status)


def _parse_medication(value: object, field: str) -> Medication:
    obj = _object(value, field)
    atc = _string(_required(obj, "atc", f"{field}.atc"), f"{field}.atc").strip()
    name_raw = obj.get("name")
    name = None if name_raw is None else _string(name_raw, f"{field}.name")
    return Medication(atc=atc, name=name)


def _parse_allergy(value: object, field: str) -> Allergy:
    obj = _object(value, field)
    substance = _string(_required(obj, "substance", f"{field}.substance"), f"{field}.substance")
    return Allergy(substance=substance)


_T = TypeVar("_T")


def _parse_items(obj: Mapping[str, Any], key: str,
                 parse: Callable[[object, str], _T]) -> tuple[_T, ...]:
    return tuple(parse(item, f"{key}[{i}]") for i, item in enumerate(_list(obj, key)))


def _parse_scales(value: object) -> Scales:
    if value is None:
        return Scales()
    obj = _object(value, "scales")
    parsed: dict[str, tuple[int, ...] | None] = {}
    for key, raw in obj.items():
        if key not in SCALE_KEYS:
            raise IntakeInvalid(f"scales.{_key_name(key)}",
                                "unknown scale (allowed: phq9, cssrs_screen)")
        if raw is None:
            parsed[key] = None
            continue
        if not isinstance(raw, list):
            raise IntakeInvalid(f"scales.{key}", f"expected a list, got {_type_name(raw)}")
        answers = cast(list[int], raw)  # score() checks every element's type at run time
        try:
            # The same validation as `ketasafe score`, C-SSRS skip logic included (cli.md).
            score(SCALE_KEYS[key], answers)
        except ScaleAnswersInvalid as exc:
            field = f"scales.{key}" if exc.item is None else f"scales.{key}[{exc.item - 1}]"
            raise IntakeInvalid(field, exc.detail) from None
        parsed[key] = tuple(answers)
    return Scales(**parsed)


def parse_intake(data: object) -> Intake:
    """Validate decoded JSON (``json.loads`` output) and return a frozen Intake.

    Raises IntakeInvalid naming the first bad field; never any other exception.
    """
    obj = _object(data, "intake")
    _no_unknown_keys(obj, _TOP_KEYS, "")
    protocol = _string(_required(obj, "protocol", "protocol"), "protocol")
    if protocol not in PROTOCOLS.prefixes:
        raise IntakeInvalid("protocol", f"unknown protocol {protocol!r}")
    assessed_on = _date(_required(obj, "assessed_on", "assessed_on"), "assessed_on")
    patient = _parse_patient(_required(obj, "patient", "patient"))
    if patient.birth_date > assessed_on:
        raise IntakeInvalid(
            "patient.birth_date",
            f"{patient.birth_date.isoformat()} is after assessed_on {assessed_on.isoformat()}",
        )
    hepatic_raw = obj.get("hepatic_impairment")
    hepatic = (HepaticImpairment.NONE if hepatic_raw is None else
               _choice(hepatic_raw, "hepatic_impairment", HepaticImpairment,
                       "hepatic_impairment"))
    return Intake(
        protocol=protocol,
        assessed_on=assessed_on,
        patient=patient,
        vitals=_parse_vitals(obj.get("vitals")),
        hepatic_impairment=hepatic,
        conditions=_parse_items(obj, "conditions", _parse_condition),
        medications=_parse_items(obj, "medications", _parse_medication),
        allergies=_parse_items(obj, "allergies", _parse_allergy),
        scales=_parse_scales(obj.get("scales")),
    )


def _refuse_constant(name: str) -> object:
    # Python's json accepts NaN and Infinity; JSON does not, and NaN compares false with every
    # threshold, so it would silently fire nothing.
    raise ValueError(f"{name} is not valid JSON")


def decode_json(text: str | bytes) -> Any:
    """Decode JSON text (str, or UTF-8 bytes); every failure (bad JSON, bad encoding, NaN,
    nesting too deep for the decoder) raises IntakeInvalid."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise IntakeInvalid("JSON", f"{exc.msg} line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise IntakeInvalid("JSON", "input is not valid UTF-8") from None
    except ValueError as exc:  # NaN / Infinity, or an integer too long to convert
        raise IntakeInvalid("JSON", str(exc)) from None
    except RecursionError:
        raise IntakeInvalid("JSON", "nested too deeply") from None


def parse_intake_json(text: str | bytes) -> Intake:
    """Decode JSON text (str, or UTF-8 bytes) and validate it with parse_intake.

    Every failure, bad JSON or bad encoding included, raises IntakeInvalid.
    """
    data = decode_json(text)
    return parse_intake(data)
