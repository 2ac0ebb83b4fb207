"""The session gates, read from the database: pre-checks, the check schedule and discharge.

Read-only: nothing here changes or audits anything. ``services.py`` calls these inside the row
lock and refuses a transition when any result is blocking; the session page shows the same
results, so what the nurse sees is what the gate decides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.db.models import Q

from ketasafe.accounts.access import has_capability
from ketasafe.clinic.models import ClinicSettings
from ketasafe.lib.timeutil import clinic_tz
from ketasafe.monitoring.models import PENDING_JUDGEMENT, Alert, AlertStatus, Observation, VitalKind
from ketasafe.monitoring.services import latest_vitals, vitals_series
from ketasafe.outcomes.scales import score
from ketasafe.protocols import services as protocol_services
from ketasafe.protocols.course import check_session
from ketasafe.protocols.definitions import ProtocolDefinition
from ketasafe.protocols.dosing import DoseResult
from ketasafe.protocols.exceptions import ProtocolError
from ketasafe.protocols.models import TreatmentOrder

from .models import Checklist, MonitoringCheck, Override, PregnancyTest, TreatmentSession
from .rules import (
    DISCHARGE_BP_MAX_AGE_MIN,
    BpLimits,
    CheckResult,
    DischargeInputs,
    DueCheck,
    bp_checks,
    check_schedule,
    discharge_checks,
    overdue,
)
from .state import ACTIVE, DRUG_ON_BOARD, Status

PREDOSE_KINDS = (VitalKind.SYSTOLIC, VitalKind.DIASTOLIC, VitalKind.HEART_RATE, VitalKind.SPO2)
REMS_QUESTIONS = {
    "benzodiazepines": "benzodiazepines",
    "nonbenzo_hypnotics": "non-benzodiazepine sedative hypnotics",
    "psychostimulants": "psychostimulants",
    "maois": "MAOIs",
    "opioids": "opioids",
}


def clinic_date(at: dt.datetime) -> dt.date:
    return at.astimezone(clinic_tz()).date()


def active_thresholds() -> Mapping[str, Any]:
    """The thresholds of the active screening rule set (default-v1 until a clinic activates
    another): the pre-checks apply the same limits as the screening the clinic runs now."""
    from ketasafe.screening.models import RuleSetVersion
    from ketasafe.screening.rules import DEFAULT_V1

    row = RuleSetVersion.objects.exclude(activated_at=None).order_by("-activated_at", "-id").first()
    return (row.ruleset() if row is not None else DEFAULT_V1).thresholds


def bp_limits() -> BpLimits:
    """From the active screening rule set (default-v1: 180/110 and 140 (150 at 65+)/90)."""
    return BpLimits.from_thresholds(active_thresholds())


def order_for(session: TreatmentSession) -> TreatmentOrder | None:
    """The signed version of the session's course (a changed order applies to later sessions)."""
    return protocol_services.current_version(session.order)


def definition_of(session: TreatmentSession) -> ProtocolDefinition:
    order = order_for(session) or session.order
    return protocol_services.definition_for(order.protocol_version)


def course_sessions(session: TreatmentSession) -> Any:
    root = session.order.course_root_id
    return TreatmentSession.objects.filter(Q(order_id=root) | Q(order__root_id=root))


def previous_doses(session: TreatmentSession) -> list[dt.datetime]:
    """First-dose times of the course's other sessions in which drug was given."""
    return list(course_sessions(session).exclude(pk=session.pk)
                .exclude(dosing_started_at=None).values_list("dosing_started_at", flat=True))


def patient_session_problems(session: TreatmentSession, definition: ProtocolDefinition,
                             at: dt.datetime) -> list[str]:
    """Why this patient's OTHER sessions (any course) forbid dosing now: another session in
    progress (checked in, or drug on board), or drug given within the protocol's minimum
    interval. The course rules see only one course; this sees every session of the patient."""
    others = (TreatmentSession.objects.filter(patient_id=session.patient_id)
              .exclude(pk=session.pk).select_related("order__protocol_version"))
    problems = []
    in_progress = [s.value for s in ACTIVE if s != Status.SCHEDULED]
    for other in others.filter(status__in=in_progress).order_by("scheduled_at"):
        what = ("has drug on board" if Status(other.status) in DRUG_ON_BOARD
                else "is in progress")
        problems.append(f"session {other.session_number} of {other.order.protocol_version.protocol_id} "
                        f"(#{other.pk}) {what} ({str(other.status).replace('_', ' ')}): end it first")
    hours = definition.course.min_interval_hours
    recent = (others.exclude(dosing_started_at=None)
              .filter(dosing_started_at__gt=at - dt.timedelta(hours=hours), dosing_started_at__lte=at)
              .order_by("-dosing_started_at").first())
    if recent is not None and recent.dosing_started_at is not None:
        ago = (at - recent.dosing_started_at).total_seconds() / 3600
        local = recent.dosing_started_at.astimezone(clinic_tz())
        problems.append(f"drug was given in session {recent.session_number} of "
                        f"{recent.order.protocol_version.protocol_id} (#{recent.pk}) at "
                        f"{local:%Y-%m-%d %H:%M}, {ago:.1f} h ago; {definition.id} needs at least "
                        f"{hours} h between doses")
    return problems


@dataclass(frozen=True)
class CurrentDose:
    """The dose a session would be given now, and a fingerprint of everything it comes from
    (the dose, the order version and the dated weight): the Start-dosing form carries it, so
    a page built before the order or weight changed cannot give a dose the nurse never saw."""

    result: DoseResult
    order: TreatmentOrder
    measurement_id: int | None

    @property
    def text(self) -> str:
        return dose_text(self.result.as_dict())

    @property
    def fingerprint(self) -> str:
        data = {"dose": self.result.as_dict(), "order": self.order.pk, "version": self.order.version,
                "measurement": self.measurement_id}
        raw = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()

    def token(self) -> str:
        """For the form: the fingerprint with the dose text shown (signed, so it can be
        quoted back in a refusal)."""
        return signing.dumps({"fp": self.fingerprint, "text": self.text}, salt=_DOSE_SALT)


_DOSE_SALT = "ketasafe.sessions.start-dosing-dose"


def read_dose_token(token: str) -> tuple[str, str] | None:
    """(fingerprint, dose text) from a Start-dosing form, or None when it was tampered with."""
    try:
        data = signing.loads(token, salt=_DOSE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("fp"), str):
        return None
    return data["fp"], str(data.get("text", ""))


def current_dose(session: TreatmentSession, at: dt.datetime) -> CurrentDose | None:
    """The dose of this session at ``at`` (None when the course order was cancelled); raises
    ProtocolError when it cannot be computed."""
    order = order_for(session)
    if order is None:
        return None
    on = clinic_date(at)
    result = protocol_services.compute_order_dose(order, session_number=session.session_number, on=on)
    measurement = protocol_services.dated_weight(session.patient, on)
    return CurrentDose(result, order, measurement.pk if measurement is not None else None)


def checklist_of(session: TreatmentSession) -> Checklist:
    found = Checklist.objects.filter(session=session).first()
    return found if found is not None else Checklist(session=session)


def pregnancy_test_required(session: TreatmentSession, at: dt.datetime) -> bool:
    """Where the clinic requires one: a female patient under the rule set's pregnancy age."""
    if not ClinicSettings.current().require_pregnancy_test:
        return False
    patient = session.patient
    if patient.sex != "female" or patient.pregnancy_status == "not_applicable":
        return False
    return patient.age_on(clinic_date(at)) < active_thresholds()["pregnancy_unknown_max_age"]


def _gate(patient: Any, protocol_id: str, at: dt.datetime) -> Any:
    from ketasafe.consent import gate

    try:
        return gate.treatment_allowed(patient, protocol_id, at)
    except ImportError as exc:  # the consent work not installed: fail safe, never open
        return gate.TreatmentGate(False, (gate.GateProblem("gate_unavailable",
                                                           f"consent gate unavailable ({exc})"),))


def precheck_results(session: TreatmentSession, at: dt.datetime) -> list[CheckResult]:
    """Every pre-dose check for this session at ``at`` (all listed, so staff fix them at once).

    Hard: treatment allowed, order signed, course rules, dose computable, prescriber on site,
    recent pre-dose vitals, BP-CRISIS, fasting (esketamine), ride home, pregnancy test (where
    required), REMS concomitant-medicine answers. Soft: BP-HIGH (facts 1.4).
    """
    results: list[CheckResult] = []

    def add(code: str, ok: bool, message: str, hard: bool = True) -> None:
        results.append(CheckResult(code, ok, hard, message))

    patient = session.patient
    order = order_for(session)
    definition = definition_of(session)
    on = clinic_date(at)

    gate = _gate(patient, definition.id, at)
    add("TREATMENT-ALLOWED", gate.allowed,
        "screening and consent are in order" if gate.allowed else
        "treatment not allowed: " + "; ".join(p.message for p in gate.missing))

    problems = patient_session_problems(session, definition, at)
    add("PATIENT-SESSIONS", not problems,
        "no other session of this patient is in progress or within the minimum interval"
        if not problems else "another session of this patient forbids dosing: " + "; ".join(problems))

    if order is None:
        add("ORDER-SIGNED", False, "the course order was cancelled: no signed order covers this session")
    else:
        add("ORDER-SIGNED", True, f"order {order.pk} v{order.version} signed by "
            f"{order.signed_by.get_full_name() or order.signed_by.get_username()}")
        violations = check_session(
            definition, course_start=order.course_start, previous_sessions=previous_doses(session),
            proposed_at=at, session_number=session.session_number,
            sessions_ordered=order.sessions_ordered,
            reassessment_recorded=order.reassessment_recorded_at is not None, tz=clinic_tz())
        for v in violations:
            add(f"COURSE-{v.code}", False, v.message)
        if not violations:
            add("COURSE", True, f"session {session.session_number} of {order.sessions_ordered} "
                "ordered; interval and frequency rules met")
        try:
            dose = protocol_services.compute_order_dose(order, session_number=session.session_number,
                                                        on=on)
            add("DOSE", True, f"computed dose {dose_text(dose.as_dict())}")
        except ProtocolError as exc:
            add("DOSE", False, f"the dose cannot be computed: {exc}")

    prescriber = session.prescriber_on_site
    ok = prescriber is not None and has_capability(prescriber, "order_treatment")
    add("PRESCRIBER-ON-SITE", ok,
        f"{prescriber.get_full_name() or prescriber.get_username()} is the prescriber on site"
        if ok and prescriber is not None else
        "name the prescriber on site for this session (REMS: on site during dosing and monitoring)")

    max_age = ClinicSettings.current().predose_vitals_max_age_min
    recent = latest_vitals(session, since=at - dt.timedelta(minutes=max_age))
    missing = [k.label for k in PREDOSE_KINDS if k.value not in recent]
    add("VITALS-RECENT", not missing,
        f"pre-dose vitals recorded within the last {max_age} min" if not missing else
        f"pre-dose vitals within the last {max_age} min are missing: {', '.join(missing)}")
    if VitalKind.SYSTOLIC in recent or VitalKind.DIASTOLIC in recent:
        # Judge the newest reading whose systolic and diastolic were taken together; a newer
        # lone value means the BP now is unknown, so it blocks until a full BP is recorded.
        paired = _bp_readings(session, at - dt.timedelta(minutes=max_age))
        newest_single = max(o.observed_at for k, o in recent.items()
                            if k in (VitalKind.SYSTOLIC, VitalKind.DIASTOLIC))
        if paired and paired[-1][2] >= newest_single:
            add("BP-PAIRED", True, "the newest BP has systolic and diastolic taken together")
        else:
            lone = ", ".join(f"{VitalKind(k).label} {float(o.value or 0):g} at "
                             f"{o.observed_at.astimezone(clinic_tz()):%H:%M}"
                             for k, o in sorted(recent.items())
                             if k in (VitalKind.SYSTOLIC, VitalKind.DIASTOLIC)
                             and o.observed_at == newest_single)
            add("BP-PAIRED", False, f"the newest BP value ({lone}) was not taken with its pair: "
                "record systolic and diastolic together")
        if paired:
            systolic, diastolic, taken = paired[-1]
            results.extend(bp_checks(systolic, diastolic, age=patient.age_on(on), limits=bp_limits(),
                                     basis=f"{systolic:g}/{diastolic:g}@{taken.isoformat()}"))

    checklist = checklist_of(session)
    if definition.kind == "esketamine":
        add("FASTING", checklist.fasting_confirmed is True,
            "fasting confirmed (no food 2 h, no liquids 30 min)" if checklist.fasting_confirmed
            else "confirm fasting: no food for 2 h and no liquids for 30 min (facts 1.2)")
    add("RIDE-HOME", checklist.ride_home_arranged is True,
        "a ride home is arranged" if checklist.ride_home_arranged else
        "arrange a ride home: no driving until the next day (facts 1.6)")
    if pregnancy_test_required(session, at):
        result = checklist.pregnancy_test
        add("PREGNANCY-TEST", result == PregnancyTest.NEGATIVE,
            "pregnancy test negative" if result == PregnancyTest.NEGATIVE else
            ("pregnancy test POSITIVE: do not dose" if result == PregnancyTest.POSITIVE
             else "the clinic requires a pregnancy test result before dosing"))
    unanswered = [label for name, label in REMS_QUESTIONS.items() if getattr(checklist, name) is None]
    add("REMS-MEDICINES", not unanswered,
        "concomitant-medicine questions answered" if not unanswered else
        "answer the concomitant-medicine questions: " + ", ".join(unanswered))

    # An override covers only the exact failed result it was given for (same code, message and
    # basis, e.g. the same BP reading): a new reading needs a new override.
    overridden = set(Override.objects.filter(session=session)
                     .values_list("check_code", "check_message", "check_basis"))
    return [CheckResult(r.code, r.passed, r.hard, r.message, basis=r.basis,
                        overridden=(not r.passed and not r.hard
                                    and (r.code, r.message[:300], r.basis) in overridden))
            for r in results]


def dose_text(d: dict[str, Any]) -> str:
    if "devices" in d:
        return f"{d['dose_mg']:g} mg = {d['devices']} devices, {d['minutes_between_devices']} min apart"
    basis = "mg/kg/h" if "mg_per_kg_per_h" in d else "mg/kg"
    per_kg = d.get("mg_per_kg_per_h", d.get("mg_per_kg"))
    return (f"{d['dose_mg']:g} mg ({per_kg:g} {basis} x {d['weight_kg']:g} kg) = "
            f"{d['drug_volume_ml']:g} mL of {d['concentration_mg_per_ml']:g} mg/mL in "
            f"{d['final_volume_ml']:g} mL over {d['duration_min']} min at {d['rate_ml_per_h']:g} mL/h")


# --- the check schedule -------------------------------------------------------------------------

def schedule_for(session: TreatmentSession, at: dt.datetime, *,
                 definition: ProtocolDefinition | None = None,
                 done: set[str] | None = None) -> list[tuple[DueCheck, str]]:
    """The session's checks with a state each: "done", "overdue", "due" or "upcoming".

    A caller showing many sessions (the chair board) passes each one's definition and done
    check codes, read in bulk, so this runs no query of its own.
    """
    definition = definition or definition_of(session)
    adm = getattr(session, "administration", None) if session.pk else None
    infusion_end = None
    stopped = False
    if adm is not None and definition.kind == "iv":
        if adm.stopped_at is not None:
            infusion_end, stopped = adm.stopped_at, True
        elif adm.duration_min:
            infusion_end = adm.started_at + dt.timedelta(minutes=adm.duration_min)
    esk = definition.esketamine
    plan = check_schedule(
        checkpoints=[(c.code, c.minutes_after_dose) for c in definition.vitals.checkpoints],
        every_min_during=definition.vitals.every_min_during_infusion,
        every_min_after=definition.vitals.every_min_after_infusion,
        dosing_started_at=session.dosing_started_at, infusion_end=infusion_end,
        infusion_stopped=stopped, now=at,
        min_monitoring_min=esk.min_monitoring_min if esk else None)
    if done is None:
        done = set(MonitoringCheck.objects.filter(session=session).values_list("code", flat=True))
    late = {c.code for c in overdue(plan, done, at)} if Status(session.status) in (
        Status.DOSING, Status.MONITORING, Status.RECOVERY) else set()
    out = []
    for check in plan:
        if check.code in done:
            state = "done"
        elif check.code in late:
            state = "overdue"
        elif check.due_at is None or check.due_at <= at:
            state = "due"
        else:
            state = "upcoming"
        out.append((check, state))
    return out


def next_check_code(schedule: Sequence[tuple[DueCheck, str]]) -> str:
    for check, state in schedule:
        if state in ("overdue", "due"):
            return check.code
    for check, state in schedule:
        if state == "upcoming":
            return check.code
    return "extra"


# --- discharge ----------------------------------------------------------------------------------

def _bp_readings(session: TreatmentSession, since: dt.datetime | None) -> list[tuple[float, float, dt.datetime]]:
    """(systolic, diastolic, at) pairs observed together, oldest first."""
    series = vitals_series(session, (VitalKind.SYSTOLIC, VitalKind.DIASTOLIC))
    by_time: dict[dt.datetime, dict[str, float]] = {}
    for obs in series:
        if since is not None and obs.observed_at < since:
            continue
        by_time.setdefault(obs.observed_at, {})[obs.kind] = float(obs.value or 0)
    return [(v[VitalKind.SYSTOLIC], v[VitalKind.DIASTOLIC], at)
            for at, v in sorted(by_time.items()) if len(v) == 2]


def aldrete_result(answers: Sequence[int] | None) -> tuple[int | None, bool]:
    """(total, discharge_ready) from score("aldrete"); ValueError for invalid answers."""
    if answers is None:
        return None, False
    result = score("aldrete", list(answers))
    return result.total, "discharge_ready" in result.flags


def discharge_results(session: TreatmentSession, at: dt.datetime, *,
                      aldrete_answers: Sequence[int] | None, responsible_adult_present: bool,
                      driving_instructions_given: bool) -> tuple[list[CheckResult], int | None]:
    definition = definition_of(session)
    total, ready = aldrete_result(aldrete_answers)
    readings = _bp_readings(session, session.dosing_started_at)
    cutoff = at - dt.timedelta(minutes=DISCHARGE_BP_MAX_AGE_MIN)
    last = readings[-1] if readings and readings[-1][2] >= cutoff else None
    previous = readings[-2] if last is not None and len(readings) >= 2 else None
    moaas = (MonitoringCheck.objects.filter(session=session).exclude(moaas=None)
             .filter(observed_at__gte=session.dosing_started_at or at)
             .order_by("-observed_at", "-id").values_list("moaas", flat=True).first())
    adm = getattr(session, "administration", None)
    missing_notes = sum(1 for e in session.adverse_events.all() if e.needs_prescriber_note)
    unacknowledged = Alert.objects.filter(session=session, status=AlertStatus.RAISED).count()
    unjudged = Observation.objects.filter(PENDING_JUDGEMENT, session=session).count()
    inputs = DischargeInputs(
        kind=definition.kind, now=at, dosing_started_at=session.dosing_started_at,
        min_monitoring_min=definition.esketamine.min_monitoring_min if definition.esketamine else None,
        infusion_stopped_at=adm.stopped_at if adm is not None else None,
        # IV (facts 2.5 gives no minimum): the protocol's own discharge minimum, which a clinic
        # may only raise (never the check interval: tighter checks must not shorten it).
        min_after_infusion_min=(definition.iv.min_monitoring_after_infusion_min
                                if definition.iv else None),
        aldrete_total=total, aldrete_ready=ready, last_bp=last, previous_bp=previous,
        age=session.patient.age_on(clinic_date(at)), limits=bp_limits(), last_moaas=moaas,
        responsible_adult_present=responsible_adult_present,
        driving_instructions_given=driving_instructions_given,
        adverse_events_missing_note=missing_notes, unacknowledged_alerts=unacknowledged,
        unjudged_readings=unjudged)
    return discharge_checks(inputs), total
