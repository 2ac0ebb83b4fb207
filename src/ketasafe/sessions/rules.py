"""Pure session rules: blood-pressure limits, the monitoring-check schedule and the discharge
criteria. No Django, no clock: every time is a parameter (STYLE §1).

A CheckResult is one gate's verdict. ``hard`` failures can never be overridden; a soft failure
blocks until a prescriber and a second clinician override it (services.do_override).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

# How late a scheduled check may be before the session page flags it as overdue.
OVERDUE_GRACE = timedelta(minutes=5)
# A "before discharge" BP must be this recent (minutes) when discharge is asked for.
DISCHARGE_BP_MAX_AGE_MIN = 30
# Most IV "after infusion" checks generated ahead (the page shows the next one).
_MAX_GENERATED = 48


@dataclass(frozen=True)
class CheckResult:
    code: str
    passed: bool
    hard: bool
    message: str
    overridden: bool = False  # a soft failure accepted by an audited two-clinician override
    # What exactly was judged (e.g. "145/92@<time of the reading>"): an override covers only the
    # result with the same code, message and basis, so any new reading needs a new override.
    basis: str = ""

    @property
    def blocking(self) -> bool:
        return not self.passed and (self.hard or not self.overridden)

    @property
    def overridable(self) -> bool:
        return not self.passed and not self.hard and not self.overridden

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def blocking(results: Sequence[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.blocking]


@dataclass(frozen=True)
class BpLimits:
    """The screening rule set's BP-CRISIS and BP-HIGH thresholds (contract: screening-rules-v1,
    clinical-facts 1.4 and 2.3). Crisis: systolic >= or diastolic >=; high: strictly above."""

    crisis_systolic: int = 180
    crisis_diastolic: int = 110
    high_systolic: int = 140
    high_systolic_older: int = 150
    older_age: int = 65
    high_diastolic: int = 90

    @classmethod
    def from_thresholds(cls, t: Mapping[str, int]) -> BpLimits:
        return cls(t["bp_crisis_systolic"], t["bp_crisis_diastolic"], t["bp_high_systolic"],
                   t["bp_high_systolic_older"], t["bp_high_older_age"], t["bp_high_diastolic"])

    def is_crisis(self, systolic: float, diastolic: float) -> bool:
        return systolic >= self.crisis_systolic or diastolic >= self.crisis_diastolic

    def is_high(self, systolic: float, diastolic: float, age: int) -> bool:
        limit = self.high_systolic_older if age >= self.older_age else self.high_systolic
        return systolic > limit or diastolic > self.high_diastolic

    def high_text(self, age: int) -> str:
        limit = self.high_systolic_older if age >= self.older_age else self.high_systolic
        return f"{limit}/{self.high_diastolic}"


def bp_checks(systolic: float, diastolic: float, *, age: int, limits: BpLimits,
              basis: str = "") -> list[CheckResult]:
    """BP-CRISIS (hard) and BP-HIGH (soft: facts 1.4, a clinician-judgement threshold) of one
    paired reading; ``basis`` identifies that reading (see CheckResult.basis)."""
    bp = f"{systolic:g}/{diastolic:g} mmHg"
    if limits.is_crisis(systolic, diastolic):
        return [CheckResult("BP-CRISIS", False, True,
                            f"BP {bp} is in the crisis range (>= {limits.crisis_systolic}/"
                            f"{limits.crisis_diastolic}): do not dose. This cannot be overridden.",
                            basis=basis)]
    results = [CheckResult("BP-CRISIS", True, True,
                           f"BP {bp} is below the crisis range {limits.crisis_systolic}/"
                           f"{limits.crisis_diastolic}", basis=basis)]
    if limits.is_high(systolic, diastolic, age):
        results.append(CheckResult(
            "BP-HIGH", False, False,
            f"BP {bp} is above the pre-dose limit {limits.high_text(age)} (age {age}): a "
            "prescriber must weigh the BP rise and override with a reason and a second clinician",
            basis=basis))
    else:
        results.append(CheckResult("BP-HIGH", True, False,
                                   f"BP {bp} is within the pre-dose limit {limits.high_text(age)}",
                                   basis=basis))
    return results


@dataclass(frozen=True)
class DueCheck:
    code: str
    label: str
    due_at: datetime | None  # None: "at that step" (before dosing, before discharge)


def check_schedule(*, checkpoints: Sequence[tuple[str, int | None]], every_min_during: int | None,
                   every_min_after: int | None, dosing_started_at: datetime | None,
                   infusion_end: datetime | None, infusion_stopped: bool, now: datetime,
                   min_monitoring_min: int | None = None) -> list[DueCheck]:
    """The checks a session should have, in order (facts 1.4-1.5 for esketamine: before
    dosing, about 40 min after, before discharge; facts 2.3 for IV: every 10 min during the
    infusion and every 15 min after it).

    ``infusion_end`` is the actual stop time once stopped, else the planned end. IV checks after
    the infusion are listed up to the first one still in the future.
    """
    out: list[DueCheck] = []
    after: list[DueCheck] = []
    for code, minutes in checkpoints:
        if code.startswith("pre"):
            out.append(DueCheck(code, "before dosing", None))
        elif code == "before-discharge":
            due = (dosing_started_at + timedelta(minutes=min_monitoring_min)
                   if dosing_started_at is not None and min_monitoring_min else None)
            after.append(DueCheck(code, "before discharge", due))
        elif minutes is not None and dosing_started_at is not None:
            out.append(DueCheck(code, f"{minutes} min after the first dose",
                                dosing_started_at + timedelta(minutes=minutes)))
        elif minutes is not None:
            out.append(DueCheck(code, f"{minutes} min after the first dose", None))
    if dosing_started_at is not None and infusion_end is not None:
        if every_min_during:
            step = timedelta(minutes=every_min_during)
            at, n = dosing_started_at + step, 1
            while at < infusion_end and n <= _MAX_GENERATED:
                minutes = every_min_during * n
                out.append(DueCheck(f"during-{minutes}", f"infusion + {minutes} min", at))
                at, n = at + step, n + 1
        if every_min_after and infusion_stopped:
            step = timedelta(minutes=every_min_after)
            at, n = infusion_end + step, 1
            while n <= _MAX_GENERATED:
                minutes = every_min_after * n
                out.append(DueCheck(f"after-{minutes}", f"{minutes} min after the infusion", at))
                if at > now:
                    break
                at, n = at + step, n + 1
    return out + after


def overdue(schedule: Sequence[DueCheck], done_codes: set[str], now: datetime) -> list[DueCheck]:
    return [c for c in schedule
            if c.due_at is not None and c.code not in done_codes and c.due_at + OVERDUE_GRACE < now]


def cadss6_total(answers: Sequence[int]) -> int:
    """CADSS-6 short form (facts 4.5: items 1, 2, 6, 7, 15, 22), each 0-4; ValueError otherwise."""
    if len(answers) != 6:
        raise ValueError(f"the CADSS short form has 6 items; {len(answers)} answers given")
    for index, value in enumerate(answers, start=1):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
            raise ValueError(f"item {index}: {value!r} is not 0-4")
    return sum(answers)


@dataclass(frozen=True)
class DischargeInputs:
    kind: str  # "esketamine" or "iv"
    now: datetime
    dosing_started_at: datetime | None
    min_monitoring_min: int | None  # esketamine: from the first device (facts 1.6)
    infusion_stopped_at: datetime | None  # IV
    min_after_infusion_min: int | None  # IV
    aldrete_total: int | None
    aldrete_ready: bool
    last_bp: tuple[float, float, datetime] | None  # systolic, diastolic, observed at
    previous_bp: tuple[float, float, datetime] | None  # the reading before it (for "falling")
    age: int
    limits: BpLimits
    last_moaas: int | None
    responsible_adult_present: bool
    driving_instructions_given: bool
    adverse_events_missing_note: int
    # Monitor alerts of this session still raised (nobody acknowledged them). Once the session
    # leaves the chair it leaves the chair board, so none may be left unseen.
    unacknowledged_alerts: int
    # Readings of this session the alert rules have not judged yet (an evaluation that failed):
    # an alert they would raise must not come after the patient has left.
    unjudged_readings: int


def discharge_checks(d: DischargeInputs) -> list[CheckResult]:
    """Every discharge criterion; all are hard (an early discharge is impossible; a patient who
    leaves anyway is recorded as against medical advice, not discharged)."""
    out: list[CheckResult] = []

    def add(code: str, ok: bool, message: str) -> None:
        out.append(CheckResult(code, ok, True, message))

    if d.dosing_started_at is None:
        add("MIN-MONITORING", False, "no dose was given")
    elif d.kind == "esketamine":
        need = d.min_monitoring_min or 0
        elapsed = int((d.now - d.dosing_started_at).total_seconds() // 60)
        add("MIN-MONITORING", elapsed >= need,
            f"{elapsed} min since the first device; at least {need} min are required "
            f"(facts 1.6){'' if elapsed >= need else f'; {need - elapsed} min to go'}")
    else:
        need = d.min_after_infusion_min or 0
        if d.infusion_stopped_at is None:
            add("MIN-MONITORING", False, "the infusion has not been stopped")
        else:
            elapsed = int((d.now - d.infusion_stopped_at).total_seconds() // 60)
            add("MIN-MONITORING", elapsed >= need,
                f"{elapsed} min since the infusion stopped; at least {need} min are required")
    if d.aldrete_total is None:
        add("ALDRETE", False, "the modified Aldrete score was not entered")
    else:
        add("ALDRETE", d.aldrete_ready,
            f"modified Aldrete score {d.aldrete_total}; 9 or more is required (facts 4.10)")
    if d.last_bp is None:
        add("BP-BEFORE-DISCHARGE", False,
            f"no blood pressure in the last {DISCHARGE_BP_MAX_AGE_MIN} min: record one")
    else:
        sys_, dia, _at = d.last_bp
        bp = f"{sys_:g}/{dia:g} mmHg"
        if d.limits.is_crisis(sys_, dia):
            add("BP-BEFORE-DISCHARGE", False, f"last BP {bp} is in the crisis range")
        elif not d.limits.is_high(sys_, dia, d.age):
            add("BP-BEFORE-DISCHARGE", True, f"last BP {bp} is within limits")
        elif d.previous_bp is not None and sys_ < d.previous_bp[0] and dia <= d.previous_bp[1]:
            add("BP-BEFORE-DISCHARGE", True,
                f"last BP {bp} is above {d.limits.high_text(d.age)} but falling "
                f"(from {d.previous_bp[0]:g}/{d.previous_bp[1]:g})")
        else:
            add("BP-BEFORE-DISCHARGE", False,
                f"last BP {bp} is above {d.limits.high_text(d.age)} and not falling: keep "
                "monitoring (facts 1.6)")
    add("SEDATION-RESOLVED", d.last_moaas == 5,
        "sedation resolved (MOAA/S 5)" if d.last_moaas == 5 else
        (f"last MOAA/S is {d.last_moaas}; it must be 5 (alert)" if d.last_moaas is not None
         else "no MOAA/S recorded after dosing"))
    add("RESPONSIBLE-ADULT", d.responsible_adult_present,
        "a responsible adult is present" if d.responsible_adult_present
        else "no responsible adult confirmed to take the patient home")
    add("DRIVING-INSTRUCTIONS", d.driving_instructions_given,
        "told not to drive until the next day after a restful sleep"
        if d.driving_instructions_given else "driving instructions not confirmed (facts 1.6)")
    add("ADVERSE-EVENT-NOTES", d.adverse_events_missing_note == 0,
        "every grade 3+ adverse event has a prescriber note" if not d.adverse_events_missing_note
        else f"{d.adverse_events_missing_note} grade 3+ adverse event(s) need a prescriber note")
    add("ALERTS-ACKNOWLEDGED", d.unacknowledged_alerts == 0,
        "every monitor alert of this session has been acknowledged" if not d.unacknowledged_alerts
        else f"{d.unacknowledged_alerts} monitor alert(s) of this session not acknowledged: acknowledge "
             "them on the chair board first")
    add("READINGS-JUDGED", d.unjudged_readings == 0,
        "every vital sign of this session has been checked against the alert rules" if not d.unjudged_readings
        else f"{d.unjudged_readings} vital sign reading(s) of this session not yet checked against the alert "
             "rules (the alert check failed): try again in a minute; if this persists, report it")
    return out
