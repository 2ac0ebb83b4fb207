"""The four shipped treatment protocols and the rules for a clinic's own version of one.

Pure: no Django, no clock. Facts cited as "facts 1.3" are sections of
shared/reference/clinical-facts.md; each setting's status there ([C] confirmed, [S] secondary,
[U] unconfirmed) is recorded in ``ProtocolDefinition.sources``. Settings marked [U] are clinic
settings (facts, preamble: "Do not hard-code it. Make it a clinician-configurable parameter"), so
``derive`` lets a clinic move them either way within sanity bounds; every other limit may only be
tightened.

Every field of a component dataclass carries a ``rule`` in its metadata saying how a clinic
version may change it; ``_check_within`` enforces those rules against the shipped definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

from .exceptions import ProtocolLimitError, UnknownProtocol

ProtocolKind = Literal["esketamine", "iv"]
DoseBasis = Literal["mg_per_kg", "mg_per_kg_per_h"]
# C/S/U as in the facts sheet; "design" marks a KetaSafe choice fixed by the CLI contract
# (a plausibility range, vial strengths), not a clinical fact.
SourceStatus = Literal["C", "S", "U", "design"]

SHIPPED_VERSION = "ketasafe-v1"

# How a clinic version may change a field (see _check_within).
_FIXED = {"rule": "fixed"}  # never changes
_UPPER = {"rule": "upper"}  # a hard upper limit: may be lowered, never raised
_LOWER = {"rule": "lower"}  # a hard lower limit: may be raised, never lowered
_DEFAULT = {"rule": "default"}  # free, but must lie inside its own (possibly narrowed) range
_SUBSET = {"rule": "subset"}  # a non-empty subset of the shipped choices
_SUPERSET = {"rule": "superset"}  # may add items, never drop a shipped one
_DOSE_STEPS = {"rule": "dose_steps"}  # esketamine doses: device steps up to the maximum
_EARLIER = {"rule": "earlier"}  # a gate that may come earlier, never later or be removed
_PHASES = {"rule": "phases"}


def _clinic(low: int, high: int) -> dict[str, Any]:
    """A clinic setting ([U] in the facts, or only a default for orders): free either way
    within these sanity bounds (inclusive)."""
    return {"rule": "clinic", "bounds": (low, high)}


def fmt(value: Decimal | int) -> str:
    """A number as a person writes it: 350, 0.75, 10 (no exponent, no trailing zeros)."""
    if isinstance(value, int):
        return str(value)
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class IvDosing:
    """IV racemic ketamine limits, all ranges inclusive (contracts/cli.md `dose`)."""

    weight_kg_min: Decimal = field(metadata=_LOWER)
    weight_kg_max: Decimal = field(metadata=_UPPER)
    # mg/kg over the infusion (depression, facts 2.1) or mg/kg per hour (CRPS, facts 3).
    dose_basis: DoseBasis = field(metadata=_FIXED)
    dose_per_kg_default: Decimal = field(metadata=_DEFAULT)
    dose_per_kg_min: Decimal = field(metadata=_LOWER)
    dose_per_kg_max: Decimal = field(metadata=_UPPER)
    concentrations_mg_per_ml: tuple[Decimal, ...] = field(metadata=_SUBSET)
    concentration_mg_per_ml_default: Decimal = field(metadata=_DEFAULT)
    final_volume_ml_default: Decimal = field(metadata=_DEFAULT)
    final_volume_ml_min: Decimal = field(metadata=_LOWER)
    final_volume_ml_max: Decimal = field(metadata=_UPPER)
    infusion_minutes_default: int = field(metadata=_DEFAULT)
    infusion_minutes_min: int = field(metadata=_LOWER)
    infusion_minutes_max: int = field(metadata=_UPPER)
    # CRPS: 0.35 mg/kg/h "over 4 h" (facts 3), so the time is part of the dose, not an option.
    infusion_minutes_fixed: bool = field(metadata=_FIXED)
    # The least monitoring time after the infusion stops before discharge. Its own setting, not
    # derived from the check interval (tightening the checks must never shorten it); a clinic may
    # only raise it.
    min_monitoring_after_infusion_min: int = field(metadata=_LOWER)


@dataclass(frozen=True)
class EsketamineDosing:
    """SPRAVATO limits (facts 1.2, 1.3, 1.6)."""

    weight_kg_min: Decimal = field(metadata=_LOWER)
    weight_kg_max: Decimal = field(metadata=_UPPER)
    allowed_doses_mg: tuple[int, ...] = field(metadata=_DOSE_STEPS)
    dose_mg_default: int = field(metadata=_DEFAULT)
    session_1_dose_mg: int = field(metadata=_UPPER)
    device_mg: int = field(metadata=_FIXED)
    max_dose_mg: int = field(metadata=_FIXED)
    minutes_between_devices: int = field(metadata=_LOWER)
    min_monitoring_min: int = field(metadata=_LOWER)


@dataclass(frozen=True)
class VitalsCheckpoint:
    """A named vital-signs reading; ``minutes_after_dose`` None means "at that step"."""

    code: str
    minutes_after_dose: int | None = None


@dataclass(frozen=True)
class VitalsSchedule:
    checkpoints: tuple[VitalsCheckpoint, ...] = field(metadata=_SUPERSET)
    # IV only (facts 2.3, Emory): a reading every N minutes; a clinic may only shorten N.
    every_min_during_infusion: int | None = field(metadata=_UPPER)
    every_min_after_infusion: int | None = field(metadata=_UPPER)
    continuous_pulse_oximetry: bool = field(metadata=_FIXED)


@dataclass(frozen=True)
class CoursePhase:
    """Weeks of the course (week 1 = the first 7 days) and the most sessions allowed in any
    rolling 7 days within the phase."""

    code: str
    first_week: int
    last_week: int | None
    max_sessions_per_7_days: int
    # True where the frequency is [U] (IV, facts 2.1): the clinic may raise it up to daily.
    max_is_clinic_setting: bool = False

    def contains_week(self, week: int) -> bool:
        return self.first_week <= week and (self.last_week is None or week <= self.last_week)


@dataclass(frozen=True)
class CourseSettings:
    phases: tuple[CoursePhase, ...] = field(metadata=_PHASES)
    # No source gives a minimum gap between sessions [U]; the floor of 20 h keeps every protocol
    # at most daily, the most frequent schedule in the facts (CRPS, facts 3).
    min_interval_hours: int = field(metadata=_clinic(20, 720))
    course_length_default: int = field(metadata=_clinic(1, 100))
    reassessment_after_week: int | None = field(metadata=_EARLIER)


Component = IvDosing | EsketamineDosing | VitalsSchedule | CourseSettings


@dataclass(frozen=True)
class Source:
    setting: str
    status: SourceStatus
    cite: str


@dataclass(frozen=True)
class ProtocolDefinition:
    """One versioned protocol. Construct shipped ones here; clinics get theirs from ``derive``.

    A definition whose id is a shipped protocol's is checked against that protocol's hard limits
    on construction, so no code path can widen a shipped limit.
    """

    id: str
    title: str
    kind: ProtocolKind
    version_label: str
    vitals: VitalsSchedule
    course: CourseSettings
    sources: tuple[Source, ...]
    iv: IvDosing | None = None
    esketamine: EsketamineDosing | None = None

    def __post_init__(self) -> None:
        # Against the shipped limits first: that names the limit a clinic tried to cross,
        # rather than a default it left outside a range it could not have.
        shipped = _SHIPPED.get(self.id)
        if shipped is not None and shipped is not self:
            _check_within(self, shipped)
        _check_consistent(self)

    @property
    def components(self) -> tuple[Component, ...]:
        """The limits present, in a fixed order: dosing, then vitals, then course."""
        parts = (self.iv, self.esketamine, self.vitals, self.course)
        return tuple(p for p in parts if p is not None)

    @property
    def clinic_settings(self) -> frozenset[str]:
        """Settings that are [U] in the facts: the UI shows them as the clinic's own choice."""
        return frozenset(s.setting for s in self.sources if s.status == "U")

    def source(self, setting: str) -> Source:
        for s in self.sources:
            if s.setting == setting:
                return s
        raise KeyError(setting)

    def derive(self, version_label: str, **changes: object) -> ProtocolDefinition:
        """A clinic version with ``changes`` applied, e.g.
        ``derive("clinic-2026-01", mg_per_kg_max="0.6", min_interval_hours=72)``.

        Keys are field names of the components (``IvDosing``, ``EsketamineDosing``,
        ``VitalsSchedule``, ``CourseSettings``), or ``title``; for IV the dose fields may also be
        named after the CLI option (``mg_per_kg_max``, ``mg_per_kg_per_h_default``).
        Raises ProtocolLimitError naming the setting when a change leaves the shipped limits.
        """
        if not version_label.strip():
            raise ProtocolLimitError("a clinic version needs a version label", setting="version")
        by_component: dict[int, dict[str, object]] = {}
        top: dict[str, Any] = {"version_label": version_label}
        components = self.components
        for key, raw in changes.items():
            if key == "title":
                top["title"] = _coerce(key, self.title, raw, optional=False)
                continue
            name = self._field_name(key)
            for index, part in enumerate(components):
                found = next((f for f in fields(part) if f.name == name), None)
                if found is not None:
                    # Annotations are strings here (postponed evaluation): "int | None".
                    optional = "None" in str(found.type)
                    value = _coerce(key, getattr(part, name), raw, optional=optional)
                    by_component.setdefault(index, {})[name] = value
                    break
            else:
                raise ProtocolLimitError(f"{key} is not a setting of {self.id}", setting=key)
        for index, part_changes in by_component.items():
            target: Any = components[index]  # replace() cannot be typed over a union
            top[_component_attr(target)] = replace(target, **part_changes)
        return replace(self, **top)

    def _field_name(self, key: str) -> str:
        if self.iv is not None and key.startswith(self.iv.dose_basis + "_"):
            suffix = key.removeprefix(self.iv.dose_basis + "_")
            if suffix in ("default", "min", "max"):
                return f"dose_per_kg_{suffix}"
        return key

    def display_name(self, name: str) -> str:
        """The name a clinician knows a field by (``mg_per_kg_max`` for ``dose_per_kg_max``)."""
        if self.iv is not None and name.startswith("dose_per_kg_"):
            return self.iv.dose_basis + name.removeprefix("dose_per_kg")
        return name


def _component_attr(part: Component) -> str:
    return {
        IvDosing: "iv",
        EsketamineDosing: "esketamine",
        VitalsSchedule: "vitals",
        CourseSettings: "course",
    }[type(part)]


def _coerce(key: str, current: object, raw: object, *, optional: bool) -> object:
    """Give a change the type of the value it replaces (numbers from their text, so "0.6" and
    0.6 both mean Decimal("0.6")); anything else raises ProtocolLimitError naming the key."""
    bad = ProtocolLimitError(f"{key} {raw!r} is not a valid value", setting=key)
    if raw is None:
        if optional:
            return None  # the field's rule decides whether removing it is allowed
        raise bad
    if isinstance(current, bool) or isinstance(raw, bool):
        if isinstance(current, bool) and isinstance(raw, bool):
            return raw
        raise bad
    if isinstance(current, str):
        if isinstance(raw, str) and raw.strip():
            return raw
        raise bad
    if isinstance(current, tuple):
        if not isinstance(raw, list | tuple):
            raise bad
        if current and not isinstance(current[0], Decimal | int):
            # checkpoints or phases: each must be of the shipped item type.
            if not all(isinstance(item, type(current[0])) for item in raw):
                raise bad
            return tuple(raw)
        kind: object = current[0] if current else 0
        return tuple(_coerce(key, kind, item, optional=False) for item in raw)
    if not isinstance(raw, Decimal | int | float | str):
        raise bad
    try:
        number = Decimal(str(raw))
    except ArithmeticError:
        raise bad from None
    if not number.is_finite():
        raise bad
    if isinstance(current, Decimal):
        return number
    # int settings (minutes, hours, mg, weeks) and int-or-None ones (a gate not yet set).
    if number != number.to_integral_value():
        raise ProtocolLimitError(f"{key} {raw!r} must be a whole number", setting=key)
    return int(number)


def _fail(defn: ProtocolDefinition, name: str, problem: str) -> ProtocolLimitError:
    shown = defn.display_name(name)
    return ProtocolLimitError(f"{defn.id}: {shown} {problem}", setting=shown)


def _check_within(new: ProtocolDefinition, shipped: ProtocolDefinition) -> None:
    """Every change from the shipped definition obeys its field's rule."""
    if (new.kind, new.iv is None, new.esketamine is None) != (
        shipped.kind,
        shipped.iv is None,
        shipped.esketamine is None,
    ):
        raise _fail(new, "kind", f"must stay {shipped.kind}")
    if new.sources != shipped.sources:
        raise _fail(new, "sources", "are fixed by the shipped protocol")
    for part_new, part_old in zip(new.components, shipped.components, strict=True):
        for f in fields(part_new):
            old, value = getattr(part_old, f.name), getattr(part_new, f.name)
            if old != value:
                _check_rule(new, f.name, f.metadata, old, value)


def _check_rule(defn: ProtocolDefinition, name: str, meta: Mapping[str, Any], old: Any, value: Any) -> None:
    rule = meta["rule"]
    if rule == "fixed":
        raise _fail(defn, name, f"is fixed at {_show(old)} and cannot be changed")
    if rule == "upper" and (old is None or value is None or value > old):
        raise _fail(defn, name, f"{_show(value)} is above the shipped limit {_show(old)}")
    if rule == "lower" and value < old:
        raise _fail(defn, name, f"{_show(value)} is below the shipped limit {_show(old)}")
    if rule == "subset" and not (value and set(value) <= set(old)):
        raise _fail(defn, name, f"must be a non-empty subset of {_show(old)}")
    if rule == "superset" and not set(old) <= set(value):
        raise _fail(defn, name, "may add checkpoints but never drop a shipped one")
    if rule == "clinic":
        low, high = meta["bounds"]
        if not low <= value <= high:
            raise _fail(defn, name, f"{_show(value)} is outside the allowed range {low}-{high}")
    if rule == "earlier":
        if old is not None and (value is None or value > old):
            raise _fail(defn, name, f"may come earlier than week {old} but not later or be removed")
        if value is not None and value < 1:
            raise _fail(defn, name, f"{value} must be week 1 or later")
    if rule == "phases":
        _check_phases_within(defn, value, old)


def _check_phases_within(defn: ProtocolDefinition, new: tuple[CoursePhase, ...], old: tuple[CoursePhase, ...]) -> None:
    shape = [(p.code, p.first_week, p.last_week, p.max_is_clinic_setting) for p in new]
    if shape != [(p.code, p.first_week, p.last_week, p.max_is_clinic_setting) for p in old]:
        raise _fail(defn, "phases", "must keep the shipped phases and their weeks")
    for p_new, p_old in zip(new, old, strict=True):
        n = p_new.max_sessions_per_7_days
        # [U] frequencies may rise to daily at most (the 20 h interval floor); label ones may
        # only fall (facts 1.3: "a maximum session frequency for each phase").
        ceiling = 7 if p_old.max_is_clinic_setting else p_old.max_sessions_per_7_days
        if n > ceiling:
            raise _fail(
                defn,
                "phases",
                f"{p_new.code}: {n} sessions per 7 days is above the limit {ceiling}",
            )


def _show(value: object) -> str:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return fmt(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return str(value)


def _check_consistent(defn: ProtocolDefinition) -> None:
    """Internal consistency, whoever built the definition: defaults inside their ranges."""
    if (defn.kind == "iv") != (defn.iv is not None) or (defn.kind == "esketamine") != (defn.esketamine is not None):
        raise _fail(defn, "kind", "does not match the dosing limits given")
    if defn.iv is not None:
        iv = defn.iv
        for stem in ("weight_kg", "dose_per_kg", "final_volume_ml", "infusion_minutes"):
            low, high = getattr(iv, stem + "_min"), getattr(iv, stem + "_max")
            if not 0 < low <= high:
                raise _fail(defn, stem + "_min", f"{_show(low)} must be above 0 and <= max")
            default = getattr(iv, stem + "_default", low)
            if not low <= default <= high:
                raise _fail(defn, stem + "_default", f"{_show(default)} is outside its range")
        if iv.concentration_mg_per_ml_default not in iv.concentrations_mg_per_ml:
            raise _fail(defn, "concentration_mg_per_ml_default", "is not an allowed strength")
        if iv.infusion_minutes_fixed and iv.infusion_minutes_min != iv.infusion_minutes_max:
            raise _fail(defn, "infusion_minutes_min", "must equal the max when the time is fixed")
    if defn.esketamine is not None:
        esk = defn.esketamine
        # facts 1.3: "84 mg per session at most; doses only in 28 mg steps".
        steps = all(d % esk.device_mg == 0 and esk.device_mg <= d <= esk.max_dose_mg for d in esk.allowed_doses_mg)
        if not esk.allowed_doses_mg or not steps:
            raise _fail(
                defn,
                "allowed_doses_mg",
                f"{_show(esk.allowed_doses_mg)} must be {esk.device_mg} mg steps up to {esk.max_dose_mg} mg",
            )
        for name in ("dose_mg_default", "session_1_dose_mg"):
            if getattr(esk, name) not in esk.allowed_doses_mg:
                raise _fail(defn, name, "is not one of the allowed doses")
    _check_phases_consistent(defn)


def _check_phases_consistent(defn: ProtocolDefinition) -> None:
    phases = defn.course.phases
    expected_first = 1
    for index, phase in enumerate(phases):
        last = index == len(phases) - 1
        if phase.first_week != expected_first or (phase.last_week is None) != last:
            raise _fail(defn, "phases", "must run from week 1 without gaps, the last open-ended")
        if phase.last_week is not None:
            if phase.last_week < phase.first_week:
                raise _fail(defn, "phases", f"{phase.code} ends before it starts")
            expected_first = phase.last_week + 1
        if phase.max_sessions_per_7_days < 1:
            raise _fail(defn, "phases", f"{phase.code} must allow at least 1 session per 7 days")


def get_protocol(protocol_id: str) -> ProtocolDefinition:
    """The shipped protocol with this id; UnknownProtocol (one line, listing the ids) if none."""
    try:
        return _SHIPPED[protocol_id]
    except KeyError:
        known = ", ".join(sorted(_SHIPPED))
        raise UnknownProtocol(f"unknown protocol {protocol_id!r} (known: {known})") from None


# --- The shipped protocols --------------------------------------------------------------------

_SHIPPED: dict[str, ProtocolDefinition] = {}

_D = Decimal
_WEIGHT = dict(weight_kg_min=_D("20"), weight_kg_max=_D("350"))
# Plausibility range of an adult weight, fixed by the CLI contract; not a clinical fact.
_WEIGHT_SOURCES = (
    Source("weight_kg_min", "design", "contracts/cli.md dose: weight 20-350 kg"),
    Source("weight_kg_max", "design", "contracts/cli.md dose: weight 20-350 kg"),
)

_ESKETAMINE_VITALS = VitalsSchedule(
    checkpoints=(
        VitalsCheckpoint("pre-dose"),  # facts 1.4: BP before every dose
        VitalsCheckpoint("post-dose", 40),  # facts 1.5: BP peaks ~40 min after dosing
        VitalsCheckpoint("before-discharge"),  # facts 1.9: PMF records BP before the session ends
    ),
    every_min_during_infusion=None,
    every_min_after_infusion=None,
    continuous_pulse_oximetry=True,  # facts 1.6 and 1.9: pulse oximetry at every session
)

_IV_VITALS = VitalsSchedule(
    checkpoints=(
        VitalsCheckpoint("pre-infusion"),  # facts 2.2: baseline BP is taken
        VitalsCheckpoint("before-discharge"),  # facts 2.5: back to baseline vital signs
    ),
    # facts 2.3 (Emory, 684 infusions): every 10 min during and every 15 min after the infusion.
    every_min_during_infusion=10,
    every_min_after_infusion=15,
    continuous_pulse_oximetry=True,  # facts 2.2/2.4: continuous respiratory assessment
)

_ESKETAMINE_SOURCES = (
    *_WEIGHT_SOURCES,
    Source("allowed_doses_mg", "C", "facts 1.3: 56 or 84 mg; 28 mg steps [S] (SRC-MIMS-HK)"),
    Source("device_mg", "C", "facts 1.2: each device delivers 28 mg"),
    Source("max_dose_mg", "C", "facts 1.3: 84 mg per session at most"),
    Source("minutes_between_devices", "S", "facts 1.2: 5 minutes between devices"),
    Source("min_monitoring_min", "C", "facts 1.6, 1.9: monitor at least 2 hours"),
    Source("checkpoints", "C", "facts 1.4, 1.5, 1.9: BP before, ~40 min after, before discharge"),
    Source("continuous_pulse_oximetry", "C", "facts 1.6, 1.9: pulse oximetry every session"),
    Source(
        "min_interval_hours",
        "U",
        "no source gives a minimum gap; 48 h is KetaSafe's default from 'twice weekly' (1.3)",
    ),
)

_TRD_DOSING = EsketamineDosing(
    **_WEIGHT,
    allowed_doses_mg=(56, 84),
    dose_mg_default=56,
    session_1_dose_mg=56,  # facts 1.3: "Day 1: 56 mg"
    device_mg=28,
    max_dose_mg=84,
    minutes_between_devices=5,
    min_monitoring_min=120,
)

ESKETAMINE_TRD = ProtocolDefinition(
    id="esketamine-trd",
    title="SPRAVATO (esketamine nasal spray), treatment-resistant depression",
    kind="esketamine",
    version_label=SHIPPED_VERSION,
    esketamine=_TRD_DOSING,
    vitals=_ESKETAMINE_VITALS,
    course=CourseSettings(
        # facts 1.3 (US label): induction twice weekly weeks 1-4, weekly weeks 5-8, then weekly
        # or every 2 weeks (the most frequent allowed is weekly).
        phases=(
            CoursePhase("induction", 1, 4, 2),
            CoursePhase("maintenance", 5, 8, 1),
            CoursePhase("continuation", 9, None, 1),
        ),
        min_interval_hours=48,
        course_length_default=8,  # the induction: twice weekly for 4 weeks
        reassessment_after_week=4,  # facts 1.3: check benefit at the end of induction
    ),
    sources=(
        *_ESKETAMINE_SOURCES,
        Source("dose_mg_default", "C", "facts 1.3: TRD day 1 56 mg; contract default 56"),
        Source("session_1_dose_mg", "C", "facts 1.3: TRD day 1: 56 mg"),
        Source("phases", "C", "facts 1.3: twice weekly wk 1-4, weekly wk 5-8, wk 9+ weekly/2-wk"),
        Source("course_length_default", "C", "facts 1.3: induction, twice weekly for 4 weeks"),
        Source("reassessment_after_week", "C", "facts 1.3: check benefit at end of induction"),
    ),
)

ESKETAMINE_MDSI = ProtocolDefinition(
    id="esketamine-mdsi",
    title="SPRAVATO (esketamine nasal spray), depression with acute suicidal ideation",
    kind="esketamine",
    version_label=SHIPPED_VERSION,
    esketamine=replace(
        _TRD_DOSING,
        dose_mg_default=84,  # facts 1.3: MDSI 84 mg, may be reduced to 56 for tolerability
        session_1_dose_mg=84,
    ),
    vitals=_ESKETAMINE_VITALS,
    course=CourseSettings(
        # facts 1.3: twice weekly for 4 weeks; beyond 4 weeks "has not been systematically
        # studied", so later sessions keep the twice-weekly ceiling behind the review gate.
        phases=(
            CoursePhase("treatment", 1, 4, 2),
            CoursePhase("beyond-4-weeks", 5, None, 2),
        ),
        min_interval_hours=48,
        course_length_default=8,
        reassessment_after_week=4,  # facts 1.3: MDSI, check at 4 weeks
    ),
    sources=(
        *_ESKETAMINE_SOURCES,
        Source("dose_mg_default", "C", "facts 1.3: MDSI 84 mg"),
        Source("session_1_dose_mg", "C", "facts 1.3: MDSI 84 mg (contract: session 1 only 84)"),
        Source("phases", "C", "facts 1.3: MDSI twice weekly for 4 weeks"),
        Source("course_length_default", "C", "facts 1.3: twice weekly for 4 weeks"),
        Source("reassessment_after_week", "C", "facts 1.3: MDSI, check at 4 weeks"),
    ),
)

_IV_SOURCES = (
    *_WEIGHT_SOURCES,
    Source("concentrations_mg_per_ml", "design", "contracts/cli.md dose: 10, 50 or 100 mg/mL"),
    Source("concentration_mg_per_ml_default", "design", "contracts/cli.md dose: default 10"),
    Source("final_volume_ml_default", "design", "contracts/cli.md dose"),
    Source("final_volume_ml_min", "design", "contracts/cli.md dose: 50-250 mL"),
    Source("final_volume_ml_max", "design", "contracts/cli.md dose: 50-250 mL"),
    Source("continuous_pulse_oximetry", "S", "facts 2.2, 2.4: continuous respiratory checks"),
    Source(
        "min_monitoring_after_infusion_min",
        "design",
        "no source gives a minimum after the infusion (facts 2.5); 15 min, one Emory check interval "
        "(facts 2.3), as a floor a clinic may only raise",
    ),
)

_DEPRESSION_DOSING = IvDosing(
    **_WEIGHT,
    dose_basis="mg_per_kg",
    # facts 2.1: usually 0.5 mg/kg; some respond to 0.1, others need up to 0.75.
    dose_per_kg_default=_D("0.5"),
    dose_per_kg_min=_D("0.1"),
    dose_per_kg_max=_D("0.75"),
    concentrations_mg_per_ml=(_D("10"), _D("50"), _D("100")),
    concentration_mg_per_ml_default=_D("10"),
    final_volume_ml_default=_D("100"),
    final_volume_ml_min=_D("50"),
    final_volume_ml_max=_D("250"),
    infusion_minutes_default=40,
    infusion_minutes_min=40,
    infusion_minutes_max=100,
    infusion_minutes_fixed=False,
    min_monitoring_after_infusion_min=15,
)

_IV_NO_GATE = "facts 2.4: a defined course; no reassessment gate given, the order's count ends it"

IV_KETAMINE_DEPRESSION = ProtocolDefinition(
    id="iv-ketamine-depression",
    title="IV racemic ketamine, depression (off-label), 0.5 mg/kg over 40 min",
    kind="iv",
    version_label=SHIPPED_VERSION,
    iv=_DEPRESSION_DOSING,
    vitals=_IV_VITALS,
    course=CourseSettings(
        # facts 2.1: "2-3 infusions a week for about 2 weeks, for example 6" is [U].
        phases=(CoursePhase("series", 1, None, 3, max_is_clinic_setting=True),),
        min_interval_hours=24,
        course_length_default=6,
        reassessment_after_week=None,  # no guideline gate; the ordered count ends the series
    ),
    sources=(
        *_IV_SOURCES,
        Source("dose_per_kg_default", "C", "facts 2.1: 0.5 mg/kg reference dose (SRC-FAVA)"),
        Source("dose_per_kg_min", "S", "facts 2.1: some respond to 0.1 mg/kg"),
        Source("dose_per_kg_max", "S", "facts 2.1: others need up to 0.75 mg/kg"),
        Source("infusion_minutes_default", "C", "facts 2.1: over 40 minutes"),
        Source("infusion_minutes_min", "design", "facts 2.1 reports 2-100 min; contract 40-100"),
        Source("infusion_minutes_max", "S", "facts 2.1: sessions up to 100 min reported"),
        Source("checkpoints", "S", "facts 2.2: baseline BP; 2.5: back to baseline vitals"),
        Source("every_min_during_infusion", "C", "facts 2.3: Emory, every 10 min during"),
        Source("every_min_after_infusion", "C", "facts 2.3: Emory, every 15 min after"),
        Source("phases", "U", "facts 2.1: 2-3 infusions a week is clinic practice, not guideline"),
        Source("min_interval_hours", "U", "facts 2.1 gives no gap; 24 h KetaSafe default"),
        Source("course_length_default", "U", "facts 2.1: e.g. 6 infusions (clinic practice)"),
        Source("reassessment_after_week", "design", _IV_NO_GATE),
    ),
)

IV_KETAMINE_CRPS = ProtocolDefinition(
    id="iv-ketamine-crps",
    title="IV racemic ketamine, complex regional pain syndrome, 0.35 mg/kg/h for 4 h",
    kind="iv",
    version_label=SHIPPED_VERSION,
    iv=replace(
        _DEPRESSION_DOSING,
        dose_basis="mg_per_kg_per_h",
        # facts 3: 0.35 mg/kg/h over 4 h daily for 10 days; the contract allows 0.1-0.35.
        dose_per_kg_default=_D("0.35"),
        dose_per_kg_min=_D("0.1"),
        dose_per_kg_max=_D("0.35"),
        final_volume_ml_default=_D("250"),
        infusion_minutes_default=240,
        infusion_minutes_min=240,
        infusion_minutes_max=240,
        infusion_minutes_fixed=True,
    ),
    vitals=_IV_VITALS,
    course=CourseSettings(
        phases=(CoursePhase("series", 1, None, 7),),  # facts 3: daily
        min_interval_hours=20,  # daily infusions, with room to move the time of day
        course_length_default=10,  # facts 3: daily for 10 days
        reassessment_after_week=None,
    ),
    sources=(
        *_IV_SOURCES,
        Source("dose_per_kg_default", "C", "facts 3: 0.35 mg/kg/h over 4 h (guideline summary)"),
        Source("dose_per_kg_min", "design", "contracts/cli.md dose: 0.1-0.35 mg/kg/h"),
        Source("dose_per_kg_max", "C", "facts 3: 0.35 mg/kg/h"),
        Source("infusion_minutes_default", "C", "facts 3: over 4 h"),
        Source("infusion_minutes_min", "C", "facts 3: over 4 h"),
        Source("infusion_minutes_max", "C", "facts 3: over 4 h"),
        # facts 3: the guideline's monitoring text was not retrieved; Emory's IV schedule
        # (facts 2.3, depression) is applied by analogy.
        Source("checkpoints", "U", "facts 3 monitoring [U]; IV depression schedule, facts 2.2"),
        Source("every_min_during_infusion", "U", "facts 3 [U]; facts 2.3 Emory by analogy"),
        Source("every_min_after_infusion", "U", "facts 3 [U]; facts 2.3 Emory by analogy"),
        Source("phases", "C", "facts 3: daily infusions (guideline summary)"),
        Source("min_interval_hours", "U", "facts 3 says daily; 20 h is KetaSafe's default"),
        Source("course_length_default", "C", "facts 3: daily for 10 days"),
        Source("reassessment_after_week", "design", _IV_NO_GATE),
    ),
)

for _protocol in (ESKETAMINE_TRD, ESKETAMINE_MDSI, IV_KETAMINE_DEPRESSION, IV_KETAMINE_CRPS):
    _SHIPPED[_protocol.id] = _protocol

SHIPPED_PROTOCOLS: Mapping[str, ProtocolDefinition] = MappingProxyType(_SHIPPED)
PROTOCOL_IDS: tuple[str, ...] = tuple(sorted(_SHIPPED))
