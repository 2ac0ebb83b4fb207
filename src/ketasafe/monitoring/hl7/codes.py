"""Device codes (MDC, Philips MDIL) to LOINC + UCUM, and unit conversion. Codes are data
(STYLE.md 13): every entry carries its source. Pure: no Django.

The map is a parameter of ``map_observation`` so the listener can pass the map of the sending
device, as edited by a clinic admin (interop-and-anchors.md §3.3: "the ingest layer needs a
per-device-model code map ... not a hard-coded list"). ``DEFAULT_CODE_MAP`` is what ships.

Keys are ``(coding system, code)`` as sent in OBX-3.3 / OBX-3.1, normalised by ``code_key``;
the system ``WILDCARD`` matches any system, including none. The default map has no wildcard
entries: a local code sent without a coding system stays unmapped until an admin maps it for
that device (issue 5: "An unmapped code is stored as received, flagged unmapped; never guessed").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from ketasafe.monitoring.hl7.parse import ParsedObservation

VitalKind = Literal[
    "systolic",
    "diastolic",
    "map",
    "heart_rate",
    "pulse_rate",
    "spo2",
    "resp_rate",
    "temperature",
    "weight",
]
MappingFlag = Literal[
    "unmapped",  # no entry for (system, code): stored as received, never guessed
    "unit_missing",  # OBX-6 empty and the unit cannot be assumed for this measure
    "unit_assumed",  # OBX-6 empty; the measure has only one plausible unit (e.g. SpO2 in %)
    "unit_unknown",  # OBX-6 is not a unit we know
    "unit_mismatch",  # a known unit that cannot be converted to the measure's UCUM unit
    "implausible",  # outside the transmission sanity range (see CodeMapEntry.plausible)
    "status_not_usable",  # OBX-11 says there is no valid result (X, D, W, ...)
]

WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class CodeMapEntry:
    """What a device code means. ``ucum_unit`` is the unit values are converted to ("" for an
    entry that carries no value, such as the NIBP compound). ``plausible`` is a transmission
    sanity range in that unit, not a clinical limit: outside it a value cannot be physiological
    and is usually a device sentinel (IEEE 11073-20601 FLOAT NaN is sent as 8388607)."""

    loinc: str
    display: str
    ucum_unit: str
    kind: VitalKind | None
    source: str
    extra_loinc: tuple[str, ...] = ()
    assume_unit_if_missing: bool = False
    plausible: tuple[Decimal, Decimal] | None = None


@dataclass(frozen=True, slots=True)
class MappedObservation:
    """The meaning of one observation. ``value`` is in ``ucum_unit`` and is set only when it may
    be used for alerts and charts; otherwise ``flags`` says why it is ``None``."""

    loinc: str | None
    display: str | None
    ucum_unit: str | None
    value: Decimal | None
    kind: VitalKind | None
    flags: tuple[MappingFlag, ...]
    extra_loinc: tuple[str, ...] = ()


CodeMap = Mapping[tuple[str, str], CodeMapEntry]

# map_observation runs once per OBX on the ingest hot path (benchmarks/hl7_parse.py). The
# dataclass __init__ of a frozen class stores each field through object.__setattr__ (~1.5 µs
# for these 7); _mapped stores them through the slot descriptors instead (~0.5 µs). The check
# fails the import if a field, a default order or a __post_init__ appears that it would miss.
_MAPPED_FIELDS = ("loinc", "display", "ucum_unit", "value", "kind", "flags", "extra_loinc")
if (
    tuple(f.name for f in fields(MappedObservation)) != _MAPPED_FIELDS
    or MappedObservation.__slots__ != _MAPPED_FIELDS
    or hasattr(MappedObservation, "__post_init__")
):
    raise ImportError("codes: MappedObservation changed; update _mapped")
(_set_loinc, _set_display, _set_ucum_unit, _set_value, _set_kind, _set_flags,
 _set_extra_loinc) = (getattr(MappedObservation, name).__set__ for name in _MAPPED_FIELDS)  # fmt: skip


def _mapped(
    loinc: str, display: str, ucum_unit: str | None, value: Decimal | None, kind: VitalKind | None,
    flags: tuple[MappingFlag, ...], extra_loinc: tuple[str, ...],
) -> MappedObservation:
    """``MappedObservation(loinc, display, ucum_unit, value, kind, flags, extra_loinc)``."""
    mapped: MappedObservation = object.__new__(MappedObservation)
    _set_loinc(mapped, loinc)
    _set_display(mapped, display)
    _set_ucum_unit(mapped, ucum_unit)
    _set_value(mapped, value)
    _set_kind(mapped, kind)
    _set_flags(mapped, flags)
    _set_extra_loinc(mapped, extra_loinc)
    return mapped


# The result for every unmapped code; immutable, so one object serves all.
_UNMAPPED = MappedObservation(None, None, None, None, None, ("unmapped",))


def code_key(system: str, code: str) -> tuple[str, str]:
    """Normalised map key: system upper-cased, code lower-cased (Philips writes MDIL hex in lower
    case, ``0002-4bb8``; MDC and LOINC codes are digits and dashes, so case cannot collide)."""
    return (system.strip().upper(), code.strip().lower())


def build_code_map(
    entries: Iterable[tuple[str, str, CodeMapEntry]],
) -> dict[tuple[str, str], CodeMapEntry]:
    """Build a map from (system, code, entry) rows, e.g. the admin-edited table."""
    return {code_key(system, code): entry for system, code, entry in entries}


def mdil_code(mdc: int) -> str:
    """Philips MDIL spelling of an MDC code: partition and term code in hex, ``pppp-tttt``.
    IEEE 11073-10101 codes are partition * 2**16 + term, so 147842 (MDC_ECG_HEART_RATE) is
    ``0002-4182``, as seen in public Philips exports (``0002-4182^HR^MDIL``,
    ``0002-4bb8^SpO2^MDIL``, ``0004-0f20^mmHg^MDIL``)."""
    partition, term = divmod(mdc, 1 << 16)
    return f"{partition:04x}-{term:04x}"


_BP = (Decimal(0), Decimal(400))
_RATE = (Decimal(0), Decimal(350))
_TEMP = (Decimal(10), Decimal(50))
_S_PHD = "HL7 PHD IG / PoCD IG (interop-and-anchors.md §3.3)"
_S_UNCONFIRMED = "[unconfirmed: vendor test messages; check NIST RTMMS before release, §3.3]"
_S_THERMO = "IEEE 11073-10408 thermometer nomenclature as found in public code [check RTMMS]"
_S_LOINC_TEMP = (
    "LOINC 8310-5: FHIR R4 body temperature profile (§3.2), which requires 8310-5 whatever the site"
)


def _bp(loinc: str, display: str, kind: VitalKind, source: str) -> CodeMapEntry:
    return CodeMapEntry(loinc, display, "mm[Hg]", kind, source, plausible=_BP)


def _rate(loinc: str, display: str, kind: VitalKind, source: str, *extra: str) -> CodeMapEntry:
    # A rate has one unit (/min), so a missing OBX-6 can be assumed (flagged unit_assumed).
    return CodeMapEntry(loinc, display, "/min", kind, source, extra, True, _RATE)


def _temp(source: str) -> CodeMapEntry:
    # No unit is assumed for temperature: 37 and 98.6 are both plausible numbers.
    return CodeMapEntry(
        "8310-5", "Body temperature", "Cel", "temperature", f"{source}; {_S_LOINC_TEMP}",
        plausible=_TEMP,
    )


# (MDC code, REFID, entry). The numbers are checked against interop-and-anchors.md §3.2/§3.3
# and the conformance samples (which carry 150020-150023 and 150456; no heart or pulse rate).
MDC_VITALS: tuple[tuple[int, str, CodeMapEntry], ...] = (
    (150020, "MDC_PRESS_BLD_NONINV", CodeMapEntry(
        "85354-9", "Blood pressure panel", "", None,
        f"MDC: {_S_PHD}; LOINC: FHIR R4 BP profile (§3.2). A compound: carries no value",
    )),
    (150021, "MDC_PRESS_BLD_NONINV_SYS", _bp(
        "8480-6", "Systolic blood pressure", "systolic",
        f"MDC: {_S_PHD}, paired with LOINC 8480-6; LOINC: FHIR R4 BP profile (§3.2)",
    )),
    (150022, "MDC_PRESS_BLD_NONINV_DIA", _bp(
        "8462-4", "Diastolic blood pressure", "diastolic",
        f"MDC: {_S_PHD}, paired with LOINC 8462-4; LOINC: FHIR R4 BP profile (§3.2)",
    )),
    (150023, "MDC_PRESS_BLD_NONINV_MEAN", _bp(
        "8478-0", "Mean blood pressure", "map",
        "MDC: PHD IG example and PCD-01 test messages (§3.3), conformance samples; "
        "LOINC 8478-0 [not in §3.2: check against LOINC]",
    )),
    (147842, "MDC_ECG_HEART_RATE", _rate(
        "8867-4", "Heart rate", "heart_rate",
        f"MDC: {_S_UNCONFIRMED}; Philips 0002-4182 'HR'; LOINC: FHIR R4 heart rate (§3.2)",
    )),
    (149530, "MDC_PULS_OXIM_PULS_RATE", _rate(
        "8889-8", "Heart rate by Pulse oximetry", "pulse_rate",
        "MDC: PHD IG spot numeric (§3.3); LOINC 8889-8 [not in §3.2: check against LOINC], "
        "plus the generic heart rate 8867-4", "8867-4",
    )),
    (149546, "MDC_PULS_RATE_NON_INV", _rate(
        "8867-4", "Heart rate", "pulse_rate",
        f"MDC (pulse rate from the NIBP cuff): {_S_UNCONFIRMED}; LOINC: FHIR heart rate (§3.2)",
    )),
    (150456, "MDC_PULS_OXIM_SAT_O2", CodeMapEntry(
        "2708-6", "Oxygen saturation in Arterial blood", "%", "spo2",
        "MDC: US Core satO2 example (§3.3) and FHIR observation-example-satO2.json, which "
        "carries 2708-6, 59408-5 and MDC 150456 together; LOINC 2708-6 FHIR core, 59408-5 "
        "US Core pulse oximetry (§3.2)",
        ("59408-5",), True, (Decimal(0), Decimal(100)),
    )),
    (151562, "MDC_RESP_RATE", _rate(
        "9279-1", "Respiratory rate", "resp_rate",
        "MDC: DK Core IEEE value set (§3.3); Philips 0002-500a 'RR'; LOINC: FHIR respiratory "
        "rate profile (§3.2)",
    )),
    (151578, "MDC_TTHOR_RESP_RATE", _rate(
        "9279-1", "Respiratory rate", "resp_rate",
        f"MDC (impedance breathing rate): {_S_UNCONFIRMED}; LOINC: FHIR resp. rate (§3.2)",
    )),
    (150344, "MDC_TEMP", _temp(f"MDC: {_S_UNCONFIRMED}")),
    (150364, "MDC_TEMP_BODY", _temp(
        "MDC: IEEE 11073-20601/10408; public FHIR examples pair 150364 with LOINC 8310-5"
    )),
    (150368, "MDC_TEMP_CORE", _temp(f"MDC: {_S_THERMO}; Philips 0002-4b60 'Tcore'")),
    (150392, "MDC_TEMP_TYMP", _temp(f"MDC: {_S_THERMO}")),
    (188420, "MDC_TEMP_RECT", _temp(f"MDC: {_S_THERMO}")),
    (188424, "MDC_TEMP_ORAL", _temp(f"MDC: {_S_THERMO}")),
    (188428, "MDC_TEMP_EAR", _temp(f"MDC: {_S_THERMO}")),
    (188452, "MDC_TEMP_AXILLA", _temp(f"MDC: {_S_THERMO}")),
    (188736, "MDC_MASS_BODY_ACTUAL", CodeMapEntry(
        "29463-7", "Body weight", "kg", "weight",
        "MDC: Continua H.812 table (§3.3); public FHIR examples pair 188736 with 29463-7; "
        "LOINC: FHIR body weight profile (§3.2)",
        plausible=(Decimal("0.2"), Decimal(700)),
    )),
)  # fmt: skip


def _default_map() -> dict[tuple[str, str], CodeMapEntry]:
    rows: list[tuple[str, str, CodeMapEntry]] = []
    for mdc, _refid, entry in MDC_VITALS:
        rows.append(("MDC", str(mdc), entry))
        philips = f"{entry.source}. Philips MDIL key {mdil_code(mdc)}: see mdil_code()"
        rows.append(("MDIL", mdil_code(mdc), replace(entry, source=philips)))
    return build_code_map(rows)


DEFAULT_CODE_MAP: Mapping[tuple[str, str], CodeMapEntry] = _default_map()


# Units: MDC unit codes (partition 4, IEEE 11073-10101 "dimensions"), their MDIL spelling, and
# unit strings seen in OBX-6.1/6.2 (UCUM itself, MDC REFIDs, common free text) -> UCUM.
# MDC term codes: MMHG 3872, BEAT_PER_MIN 2720, PULS_PER_MIN 2752, RESP_PER_MIN 2784,
# PERCENT 544, DEGC 6048, FAHR 4416, KILO_G 1731, LB 1760 (public IntelliVue nomenclature
# tables and 11073-10415 headers; 266016/264864/262688/268192 also in §3.3 and the samples).
_MDC_UNITS: tuple[tuple[int, str, str], ...] = (
    (266016, "MDC_DIM_MMHG", "mm[Hg]"),
    (264864, "MDC_DIM_BEAT_PER_MIN", "/min"),
    (264896, "MDC_DIM_PULS_PER_MIN", "/min"),
    (264928, "MDC_DIM_RESP_PER_MIN", "/min"),
    (262688, "MDC_DIM_PERCENT", "%"),
    (268192, "MDC_DIM_DEGC", "Cel"),
    (266560, "MDC_DIM_FAHR", "[degF]"),
    (263875, "MDC_DIM_KILO_G", "kg"),
    (263904, "MDC_DIM_LB", "[lb_av]"),
)
_TEXT_UNITS: dict[str, str] = {
    "mm[Hg]": "mm[Hg]", "mmHg": "mm[Hg]", "mm Hg": "mm[Hg]",
    "/min": "/min", "1/min": "/min", "{beats}/min": "/min", "{beat}/min": "/min",
    "{breaths}/min": "/min", "bpm": "/min", "beats/min": "/min", "rpm": "/min",
    "breaths/min": "/min",
    "%": "%",
    "Cel": "Cel", "°C": "Cel", "degC": "Cel", "[degF]": "[degF]", "°F": "[degF]", "degF": "[degF]",
    "kg": "kg", "[lb_av]": "[lb_av]", "lb": "[lb_av]", "lbs": "[lb_av]",
}  # fmt: skip
UNIT_CODES: dict[tuple[str, str], str] = {}
for _code, _refid, _ucum in _MDC_UNITS:
    UNIT_CODES[code_key("MDC", str(_code))] = _ucum
    UNIT_CODES[code_key("MDIL", mdil_code(_code))] = _ucum
    _TEXT_UNITS[_refid] = _ucum

_CENT = Decimal("0.01")  # finer than any monitor's resolution for these measures
# UCUM: [degF] = degf(5 K/9), i.e. Cel = (F - 32) * 5/9; [lb_av] = 453.59237 g exactly.
CONVERSIONS: dict[tuple[str, str], Callable[[Decimal], Decimal]] = {
    ("[degF]", "Cel"): lambda f: ((f - 32) * 5 / 9).quantize(_CENT, ROUND_HALF_EVEN),
    ("[lb_av]", "kg"): lambda lb: (lb * Decimal("0.45359237")).quantize(_CENT, ROUND_HALF_EVEN),
}

# HL7 table 0085 result statuses that mean "no valid result": X cannot be obtained, D deleted,
# W wrong, N not asked, I pending, O order detail only.
_NOT_USABLE_STATUS = frozenset({"X", "D", "W", "N", "I", "O"})


def resolve_unit(obs: ParsedObservation) -> str | None:
    """UCUM unit of OBX-6, or ``None`` if we do not know it. Tries the coded unit in its system,
    then the code and the text as unit strings."""
    ucum = UNIT_CODES.get((obs.units_system.strip().upper(), obs.units_code.strip().lower()))  # code_key
    if ucum is None:
        ucum = _TEXT_UNITS.get(obs.units_code) or _TEXT_UNITS.get(obs.units_text)
    return ucum


def lookup(obs: ParsedObservation, code_map: CodeMap) -> CodeMapEntry | None:
    """The entry for OBX-3: exact (system, code) first, then the wildcard system."""
    entry = code_map.get(code_key(obs.code_system, obs.code))
    if entry is None:
        entry = code_map.get(code_key(WILDCARD, obs.code))
    return entry


def map_observation(
    obs: ParsedObservation, code_map: CodeMap = DEFAULT_CODE_MAP
) -> MappedObservation:
    """Give an observation its LOINC code, UCUM unit and a value in that unit.

    Never guesses: an unknown code gives ``kind=None`` and flag ``unmapped``; an unknown or
    unconvertible unit gives ``value=None`` with a flag, so a kPa pressure or an unlabelled
    temperature can never be compared with a mm[Hg] or Cel threshold.
    """
    # lookup(), with the first code_key written out (called per OBX).
    entry = code_map.get((obs.code_system.strip().upper(), obs.code.strip().lower()))
    if entry is None:
        entry = code_map.get(code_key(WILDCARD, obs.code))
        if entry is None:
            return _UNMAPPED
    flags: list[MappingFlag] = []
    value = _value(obs, entry, flags)
    return _mapped(
        entry.loinc, entry.display, entry.ucum_unit or None, value, entry.kind, tuple(flags),
        entry.extra_loinc,
    )


def _value(
    obs: ParsedObservation, entry: CodeMapEntry, flags: list[MappingFlag]
) -> Decimal | None:
    raw = obs.numeric_value
    if raw is None or not entry.ucum_unit:
        return None
    if obs.result_status in _NOT_USABLE_STATUS:
        flags.append("status_not_usable")
        return None
    if not (obs.units_code or obs.units_text):
        if not entry.assume_unit_if_missing:
            flags.append("unit_missing")
            return None
        flags.append("unit_assumed")
        unit = entry.ucum_unit
    else:
        resolved = resolve_unit(obs)
        if resolved is None:
            flags.append("unit_unknown")
            return None
        unit = resolved
    value = raw
    if unit != entry.ucum_unit:
        convert = CONVERSIONS.get((unit, entry.ucum_unit))
        if convert is None:
            flags.append("unit_mismatch")
            return None
        value = convert(raw)
    if entry.plausible and not entry.plausible[0] <= value <= entry.plausible[1]:
        flags.append("implausible")
        return None
    return value
