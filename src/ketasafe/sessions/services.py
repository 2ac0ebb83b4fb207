"""Every change to a treatment session (STYLE §2, §3).

``_transition`` is the only code that assigns ``TreatmentSession.status``: it checks the state
table, locks the row (select_for_update), compares ``row_version`` when the caller names the
version its form was built from, writes a SessionTransition and the audit entry, and bumps
``row_version``. The ``do_*`` functions evaluate their gate inside the same lock and transaction
as the change, so what was checked is what is committed. Each refusal raises a SessionRefused
(nothing changed) and is audited as ``refused`` outside the rolled-back transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Max
from django.http import HttpRequest
from django.utils import timezone

from ketasafe import audit
from ketasafe.accounts.access import has_capability
from ketasafe.monitoring.services import VitalsInvalid, do_record_manual_vitals
from ketasafe.outcomes.scales import score
from ketasafe.patients.services import lock_patient
from ketasafe.protocols import services as protocol_services
from ketasafe.protocols.exceptions import ProtocolError
from ketasafe.protocols.models import TreatmentOrder
from ketasafe.protocols.reauth import authenticate_staff

from . import checks
from .exceptions import (
    ChairBusy,
    GateRefused,
    InvalidTransition,
    OverrideRefused,
    SessionRefused,
    StaleSession,
    StepRefused,
)
from .models import (
    Administration,
    AdverseEvent,
    AdverseEventType,
    Chair,
    Checklist,
    DeviceDose,
    DischargeAssessment,
    Drug,
    MonitoringCheck,
    Override,
    RateChange,
    SessionTransition,
    TreatmentSession,
)
from .rules import blocking, cadss6_total
from .state import ACTIVE, TRANSITIONS, Status, can_transition

F_ = TypeVar("F_", bound=Callable[..., Any])

# A time entered for something that already happened may be at most this far in the future
# (clock drift between a tablet and the server), never more.
FUTURE_TOLERANCE = dt.timedelta(minutes=1)
# An adverse event may have begun shortly before check-in (noticed in the waiting room), never
# earlier: older events belong to the patient's history, not to this session.
AE_BEFORE_CHECK_IN = dt.timedelta(minutes=60)
END_KINDS = {"cancel": Status.CANCELLED, "abort": Status.ABORTED, "ama": Status.ABORTED}
END_LABELS = {"cancel": "cancelled", "abort": "aborted", "ama": "left against medical advice"}


def now() -> dt.datetime:
    """The service clock (tests pin it by passing ``at=`` or patching this function)."""
    return timezone.now()


def _refusals_audited(func: F_) -> F_:
    """Audit a refused action as ``refused`` after its transaction rolled back."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SessionRefused as exc:
            session = kwargs.get("session") or (args[0] if args else None)
            audit.record("refused", actor=kwargs.get("actor"), request=kwargs.get("request"),
                         patient=getattr(session, "patient_id", None),
                         obj=session if isinstance(session, TreatmentSession) else None,
                         detail=f"{func.__name__}: {exc.message}"[:500])
            raise

    return wrapper  # type: ignore[return-value]


def _require(actor: Any, capability: str, what: str) -> None:
    if not has_capability(actor, capability):
        raise PermissionDenied(f"Your role does not allow this ({what}).")


def _lock(session: TreatmentSession, expected_row_version: int | None) -> TreatmentSession:
    """Lock the session row and then its patient's row (always in that order). The patient
    lock serialises actions on different sessions of one patient, so the checks across them
    (another session in progress, a dose within the minimum interval) cannot race on
    PostgreSQL. Raises StaleSession when the form's row_version is not the current one.
    ``of=("self",)``: the join must not lock the order and the protocol version too (on
    PostgreSQL it would: every session of a protocol version would wait on one row, and the
    order row would be taken before the patient's, against do_schedule's patient-then-order)."""
    locked = (TreatmentSession.objects.select_for_update(of=("self",), no_key=True)
              .select_related("patient", "order", "order__protocol_version")
              .get(pk=session.pk))
    lock_patient(locked.patient_id)
    if expected_row_version is not None and locked.row_version != expected_row_version:
        raise StaleSession()
    return locked


def _bump(locked: TreatmentSession) -> None:
    TreatmentSession.objects.filter(pk=locked.pk).update(row_version=F("row_version") + 1)
    locked.row_version += 1


def _sync(target: TreatmentSession, source: TreatmentSession) -> None:
    """Copy the committed state onto the caller's instance, so it is not stale after a call."""
    if target is not source:
        for f in source._meta.concrete_fields:
            setattr(target, f.attname, getattr(source, f.attname))


def _status_name(status: Status | str) -> str:
    return str(status).replace("_", " ")


def _expect_status(locked: TreatmentSession, *allowed: Status, action: str) -> None:
    if Status(locked.status) not in allowed:
        names = " or ".join(_status_name(s) for s in allowed)
        raise InvalidTransition(f"Cannot {action}: the session is {_status_name(locked.status)}; "
                                f"this step needs it to be {names}.")


def _not_future(at: dt.datetime, clock: dt.datetime, what: str) -> None:
    if at > clock + FUTURE_TOLERANCE:
        raise StepRefused(f"{what} cannot be in the future.")


# --- the one enforcing function -----------------------------------------------------------------

@_refusals_audited
def _transition(session: TreatmentSession, to: Status | str, *, actor: Any, reason: str = "",
               expected_row_version: int | None = None, request: HttpRequest | None = None,
               at: dt.datetime | None = None,
               changes: Mapping[str, Any] | None = None) -> TreatmentSession:
    """Move ``session`` to ``to`` if TRANSITIONS allows it (see the docstring of the module).

    Internal: it checks only the state table, not the step's gate (pre-checks, dosing,
    discharge). Views and other apps call the ``do_*`` functions, which run their gate inside
    the same lock and then call this; nothing outside this module may call it.

    ``changes`` are other fields set in the same write (timestamps of the step). Raises
    InvalidTransition, or StaleSession when ``expected_row_version`` is not the current one.
    """
    target = Status(to)
    at = at or now()
    changes = dict(changes or {})
    if "status" in changes or "row_version" in changes:
        raise ValueError("status and row_version are set by transition() itself")
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        current = Status(locked.status)
        if not can_transition(current, target):
            allowed = ", ".join(sorted(_status_name(s) for s in TRANSITIONS[current])) or "none"
            raise InvalidTransition(
                f"A session that is {_status_name(current)} cannot become "
                f"{_status_name(target)} (allowed next: {allowed}).")
        locked.status = target.value
        locked.row_version += 1
        for name, value in changes.items():
            setattr(locked, name, value)
        locked.save(update_fields=["status", "row_version", *changes])
        SessionTransition.objects.create(session=locked, from_status=current.value,
                                         to_status=target.value, actor=actor, reason=reason, at=at)
        audit.record("update", actor=actor, request=request, patient=locked.patient, obj=locked,
                     before={"status": current.value},
                     after={"status": target.value,
                            **{k: v for k, v in changes.items() if k != "precheck_results"}},
                     detail=f"session {current.value} -> {target.value}"
                            + (f": {reason}" if reason else ""))
    _sync(session, locked)
    return locked


# --- scheduling and check-in --------------------------------------------------------------------

@transaction.atomic
def do_schedule(*, actor: Any, order: TreatmentOrder, scheduled_at: dt.datetime,
                chair: Chair | None = None, prescriber_on_site: Any = None,
                request: HttpRequest | None = None) -> TreatmentSession:
    """A new scheduled session of the course ``order`` belongs to (its signed version).

    Never more sessions than the order covers, and each gets the next number: the patient's row
    is locked first (the lock do_sign_order and _lock take), so schedules, order changes and
    check-ins of one patient are serialised and the count below still holds when the session
    commits (PostgreSQL runs READ COMMITTED; SQLite queues writers anyway). The signed version
    is then locked too, so an order cancelled meanwhile is seen as cancelled."""
    _require(actor, "schedule_sessions", "schedule sessions")
    lock_patient(order.patient_id)
    current = protocol_services.current_version(order, lock=True)
    if current is None:
        raise StepRefused("This course's order is cancelled: sign a new order first.")
    root = current.course_root_id
    course = (TreatmentSession.objects.filter(order__in=protocol_services.course_versions(current))
              .exclude(status=Status.CANCELLED))
    taken = course.count()
    # After the highest number in use, not after the count: with a session cancelled in between,
    # the count would repeat a scheduled session's number. Provisional: check-in fixes it from
    # the doses given (and never touches another session's row: no lock beyond this patient's).
    number = (course.aggregate(highest=Max("session_number"))["highest"] or 0) + 1
    if taken >= current.sessions_ordered:
        raise StepRefused(f"The order covers {current.sessions_ordered} sessions and {taken} are "
                          "scheduled or done: change the order to add sessions.")
    if prescriber_on_site is not None and not has_capability(prescriber_on_site, "order_treatment"):
        raise StepRefused("The prescriber on site must be a prescriber.")
    session = TreatmentSession.objects.create(
        patient=current.patient, order=current, session_number=number, chair=chair,
        scheduled_at=scheduled_at, prescriber_on_site=prescriber_on_site)
    audit.record("create", actor=actor, request=request, patient=current.patient, obj=session,
                 after={"order": current.pk, "course": root, "session_number": number,
                        "scheduled_at": scheduled_at, "chair": chair.name if chair else None})
    return session


@_refusals_audited
def do_check_in(*, actor: Any, session: TreatmentSession, chair: Chair | None = None,
                expected_row_version: int | None = None, request: HttpRequest | None = None,
                at: dt.datetime | None = None) -> TreatmentSession:
    """Check the patient in: a free chair, and the session number fixed from the course record
    (the sessions in which drug was given, plus one)."""
    _require(actor, "run_sessions", "run sessions")
    at = at or now()
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.SCHEDULED, action="check in")
        chair = chair or locked.chair
        if chair is None:
            raise StepRefused("Choose a chair for the patient.")
        # Locked, so that two check-ins into one chair are serialised (monitor data is routed
        # by the chair): the second sees the first session and is refused.
        chair = Chair.objects.select_for_update(no_key=True).get(pk=chair.pk)
        busy = (TreatmentSession.objects.filter(chair=chair)
                .exclude(status__in=[Status.SCHEDULED, *[s for s in Status if s not in ACTIVE]])
                .exclude(pk=locked.pk).first())
        if busy is not None:
            raise ChairBusy(f"{chair.name} is in use by another session ({_status_name(busy.status)}).")
        elsewhere = (TreatmentSession.objects.filter(patient_id=locked.patient_id)
                     .exclude(pk=locked.pk)
                     .filter(status__in=[s.value for s in ACTIVE if s != Status.SCHEDULED])
                     .select_related("chair").first())
        if elsewhere is not None:
            where = f" in {elsewhere.chair.name}" if elsewhere.chair else ""
            raise StepRefused(f"This patient already has a session in progress{where} "
                              f"(session {elsewhere.session_number}, "
                              f"{_status_name(elsewhere.status)}): end it before checking in again.")
        number = len(checks.previous_doses(locked)) + 1
        locked = _transition(locked, Status.CHECKED_IN, actor=actor, request=request, at=at,
                            changes={"checked_in_at": at, "chair": chair, "session_number": number})
        Checklist.objects.get_or_create(session=locked)
    _sync(session, locked)
    return locked


@_refusals_audited
def do_update_checklist(*, actor: Any, session: TreatmentSession, values: Mapping[str, Any],
                        prescriber_on_site: Any = None, expected_row_version: int | None = None,
                        request: HttpRequest | None = None,
                        at: dt.datetime | None = None) -> Checklist:
    """Record the pre-dose checklist answers (and the prescriber on site) while checked in."""
    _require(actor, "run_sessions", "run sessions")
    at = at or now()
    allowed = {"fasting_confirmed", "ride_home_arranged", "pregnancy_test", *Checklist.REMS_FIELDS}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"unknown checklist fields: {sorted(unknown)}")
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.CHECKED_IN, action="change the pre-dose checklist")
        checklist, _ = Checklist.objects.select_for_update(no_key=True).get_or_create(session=locked)
        before = {k: getattr(checklist, k) for k in values}
        for name, value in values.items():
            setattr(checklist, name, value)
        checklist.updated_by, checklist.updated_at = actor, at
        checklist.save()
        after: dict[str, Any] = dict(values)
        if prescriber_on_site is not None and prescriber_on_site.pk != locked.prescriber_on_site_id:
            if not has_capability(prescriber_on_site, "order_treatment"):
                raise StepRefused("The prescriber on site must be a prescriber.")
            before["prescriber_on_site"] = locked.prescriber_on_site_id
            after["prescriber_on_site"] = prescriber_on_site.pk
            TreatmentSession.objects.filter(pk=locked.pk).update(prescriber_on_site=prescriber_on_site)
            locked.prescriber_on_site = prescriber_on_site
        _bump(locked)
        audit.record("update", actor=actor, request=request, patient=locked.patient, obj=checklist,
                     before=before, after=after)
    _sync(session, locked)
    return checklist


# --- checks and vitals --------------------------------------------------------------------------

def _clean_answers(raw: Sequence[Any]) -> list[int]:
    try:
        return [int(v) for v in raw]
    except (TypeError, ValueError):
        raise StepRefused("Dissociation answers must be whole numbers.") from None


CHECKPOINT_EARLY = dt.timedelta(minutes=5)  # "about 40 min": a timed checkpoint may be this early


def _checkpoint_not_early(session: TreatmentSession, code: str, observed_at: dt.datetime) -> None:
    """A timed checkpoint (e.g. post-dose, ~40 min after the first dose) can only be a reading
    taken then: a pre-dose reading recorded under its code would open the recovery gate and
    be reported on the REMS form as the post-dose blood pressure."""
    for checkpoint in checks.definition_of(session).vitals.checkpoints:
        if checkpoint.code != code or checkpoint.minutes_after_dose is None:
            continue
        due = (session.dosing_started_at + dt.timedelta(minutes=checkpoint.minutes_after_dose)
               if session.dosing_started_at else None)
        if due is None or observed_at < due - CHECKPOINT_EARLY:
            raise StepRefused(f"The {code} check is the reading {checkpoint.minutes_after_dose} min after the "
                              f"first dose: record this one as another check.")


@_refusals_audited
def do_record_check(*, actor: Any, session: TreatmentSession, code: str,
                    observed_at: dt.datetime | None = None, vitals: Mapping[str, Any] | None = None,
                    moaas: int | None = None, dissociation_scale: str = "",
                    dissociation_answers: Sequence[Any] = (), note: str = "",
                    expected_row_version: int | None = None, request: HttpRequest | None = None,
                    at: dt.datetime | None = None) -> MonitoringCheck:
    """One monitoring check: vitals (stored by the monitoring app), MOAA/S and dissociation.
    Allowed from check-in until the session ends; all values are validated before any is
    stored."""
    _require(actor, "run_sessions", "run sessions")
    at = at or now()
    observed_at = observed_at or at
    code = (code or "extra").strip()[:40]
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.CHECKED_IN, Status.PRE_CHECKS_PASSED, Status.DOSING,
                       Status.MONITORING, Status.RECOVERY, action="record a check")
        _not_future(observed_at, at, "The time of a check")
        if locked.checked_in_at and observed_at < locked.checked_in_at - dt.timedelta(minutes=60):
            raise StepRefused("A check cannot be timed more than an hour before check-in.")
        _checkpoint_not_early(locked, code, observed_at)
        if moaas is not None and not 0 <= moaas <= 5:
            raise StepRefused("MOAA/S is 0 to 5.")
        total = None
        answers: list[int] = []
        if dissociation_scale:
            answers = _clean_answers(dissociation_answers)
            try:
                if dissociation_scale == "cadss":
                    total = score("cadss", answers).total
                elif dissociation_scale == "cadss6":
                    total = cadss6_total(answers)
                else:
                    raise StepRefused(f"Unknown dissociation scale {dissociation_scale!r}.")
            except ValueError as exc:
                raise StepRefused(f"Dissociation ({dissociation_scale}): {exc}") from None
        values = {k: v for k, v in (vitals or {}).items() if v not in (None, "")}
        if not values and moaas is None and total is None:
            raise StepRefused("Enter vitals, MOAA/S or a dissociation score.")
        if values:
            try:
                do_record_manual_vitals(actor=actor, session=locked, values=values,
                                        observed_at=observed_at, request=request)
            except VitalsInvalid as exc:
                raise StepRefused(f"Vitals not saved: {exc}") from None
        check = MonitoringCheck.objects.create(
            session=locked, code=code, observed_at=observed_at, moaas=moaas,
            dissociation_scale=dissociation_scale, dissociation_answers=answers,
            dissociation_total=total, note=note[:300], recorded_by=actor)
        _bump(locked)
        audit.record("create", actor=actor, request=request, patient=locked.patient, obj=check,
                     after={"code": code, "observed_at": observed_at, "moaas": moaas,
                            "dissociation": [dissociation_scale, total], "vitals": values})
    _sync(session, locked)
    return check


# --- pre-checks and overrides -------------------------------------------------------------------

@_refusals_audited
def do_pass_prechecks(*, actor: Any, session: TreatmentSession,
                      expected_row_version: int | None = None, request: HttpRequest | None = None,
                      at: dt.datetime | None = None) -> TreatmentSession:
    """checked_in -> pre_checks_passed, only if no pre-check is blocking (a soft failure counts
    as passed only with a confirmed override). Raises GateRefused listing every failure."""
    _require(actor, "run_sessions", "run sessions")
    at = at or now()
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.CHECKED_IN, action="pass the pre-checks")
        results = checks.precheck_results(locked, at)
        if blocking(results):
            raise GateRefused("Pre-checks not passed.", results)
        locked = _transition(locked, Status.PRE_CHECKS_PASSED, actor=actor, request=request, at=at,
                            changes={"precheck_results": [r.as_dict() for r in results]})
    _sync(session, locked)
    return locked


@_refusals_audited
def do_override(*, actor: Any, session: TreatmentSession, check_code: str, reason: str,
                confirmer_username: str, confirmer_password: str,
                expected_row_version: int | None = None, request: HttpRequest | None = None,
                at: dt.datetime | None = None) -> Override:
    """Override one failing SOFT pre-check: ``actor`` is a prescriber (override_precheck) with a
    written reason; a different clinician (confirm_override) confirms with their own password.
    A hard check is never overridable. Raises OverrideRefused / ReauthFailed."""
    at = at or now()
    if not has_capability(actor, "override_precheck"):
        raise OverrideRefused("Only a prescriber can override a pre-check.")
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise OverrideRefused("Write the reason for the override (at least 10 characters).")
    if confirmer_username.strip().lower() == actor.get_username().lower():
        raise OverrideRefused("The second clinician must be a different person.")
    # Outside the transaction: a wrong password is counted and audited even though refused.
    confirmer = authenticate_staff(confirmer_username.strip(), confirmer_password, request)
    if confirmer.pk == actor.pk:
        raise OverrideRefused("The second clinician must be a different person.")
    if not has_capability(confirmer, "confirm_override"):
        raise OverrideRefused(f"{confirmer.get_username()} may not confirm overrides.")
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        # Also after the pre-checks passed: a new reading there can fail a check again, and the
        # earlier override does not cover it.
        _expect_status(locked, Status.CHECKED_IN, Status.PRE_CHECKS_PASSED,
                       action="override a pre-check")
        results = {r.code: r for r in checks.precheck_results(locked, at)}
        result = results.get(check_code)
        if result is None:
            raise OverrideRefused(f"{check_code} is not a pre-check of this session.")
        if result.passed:
            raise OverrideRefused(f"{check_code} passes: there is nothing to override.")
        if result.hard:
            raise OverrideRefused(f"{check_code} is a hard stop and can never be overridden: "
                                  f"{result.message}")
        if result.overridden:
            raise OverrideRefused(f"{check_code} is already overridden.")
        override = Override.objects.create(session=locked, check_code=check_code,
                                           check_message=result.message[:300],
                                           check_basis=result.basis[:120], reason=reason,
                                           prescriber=actor, confirmed_by=confirmer, at=at)
        _bump(locked)
        audit.record("create", actor=actor, request=request, patient=locked.patient, obj=override,
                     after={"check": check_code, "check_message": result.message,
                            "check_basis": result.basis,
                            "reason": reason, "prescriber": actor.get_username(),
                            "confirmed_by": confirmer.get_username()},
                     detail=f"pre-check override {check_code}, confirmed by "
                            f"{confirmer.get_username()}")
    _sync(session, locked)
    return override


# --- dosing -------------------------------------------------------------------------------------

@_refusals_audited
def do_start_dosing(*, actor: Any, session: TreatmentSession, lot_number: str,
                    observing_prescriber: Any, expected_row_version: int | None = None,
                    expected_dose: str | None = None, request: HttpRequest | None = None,
                    at: dt.datetime | None = None) -> Administration:
    """pre_checks_passed -> dosing. The pre-checks are run again now (vitals age, consent may
    have changed), the dose is computed from the order and the dated weight (never typed), and
    the administration record starts: esketamine device 1 or the IV infusion at ``at``.

    ``expected_dose`` is the dose token the Start-dosing form was built with
    (``checks.CurrentDose.token``; the page always sends it): when the dose computed now differs
    (a new order version, a new weight) nothing is given and StaleSession names both doses."""
    _require(actor, "run_sessions", "administer")
    at = at or now()
    lot_number = (lot_number or "").strip()
    if not lot_number:
        raise StepRefused("Enter the lot number of the drug.")
    if observing_prescriber is None or not has_capability(observing_prescriber, "order_treatment"):
        raise StepRefused("Name the observing prescriber (a prescriber).")
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.PRE_CHECKS_PASSED, action="start dosing")
        results = checks.precheck_results(locked, at)
        if blocking(results):
            raise GateRefused("The pre-checks no longer pass, so dosing cannot start.", results)
        try:
            current = checks.current_dose(locked, at)
        except ProtocolError as exc:  # pragma: no cover - DOSE passed just above
            raise StepRefused(f"The dose cannot be computed: {exc}") from None
        assert current is not None  # ORDER-SIGNED passed
        if expected_dose is not None:
            shown = checks.read_dose_token(expected_dose)
            if shown is None:
                raise StaleSession("The dose on the page could not be verified: nothing was "
                                   "given. Reload the page and check the dose.")
            if shown[0] != current.fingerprint:
                raise StaleSession(
                    f"The computed dose changed from {shown[1]} to {current.text} since the page "
                    "was loaded (a new order version or weight). Nothing was given: check the "
                    "new dose and start again.")
        order = current.order
        d = current.result.as_dict()
        measurement = protocol_services.dated_weight(locked.patient, checks.clinic_date(at))
        esk = "devices" in d
        adm = Administration.objects.create(
            session=locked, order=order, drug=Drug.ESKETAMINE if esk else Drug.KETAMINE,
            lot_number=lot_number[:40],
            concentration_mg_per_ml=None if esk else Decimal(str(d["concentration_mg_per_ml"])),
            dose_mg=Decimal(str(d["dose_mg"])),
            drug_volume_ml=None if esk else Decimal(str(d["drug_volume_ml"])),
            final_volume_ml=None if esk else Decimal(str(d["final_volume_ml"])),
            rate_ml_per_h=None if esk else Decimal(str(d["rate_ml_per_h"])),
            duration_min=None if esk else int(d["duration_min"]),
            devices_planned=int(d["devices"]) if esk else None,
            minutes_between_devices=int(d["minutes_between_devices"]) if esk else None,
            weight_kg=measurement.weight_kg if measurement else None,
            weight_measured_on=measurement.measured_on if measurement else None,
            dose_computation=d, started_at=at, administering_nurse=actor,
            observing_prescriber=observing_prescriber)
        if esk:
            DeviceDose.objects.create(administration=adm, number=1, given_at=at, recorded_by=actor)
        audit.record("create", actor=actor, request=request, patient=locked.patient, obj=adm,
                     after={"drug": adm.drug, "lot": lot_number, "dose": d,
                            "observing_prescriber": observing_prescriber.get_username()})
        locked = _transition(locked, Status.DOSING, actor=actor, request=request, at=at,
                            changes={"dosing_started_at": at})
    _sync(session, locked)
    return adm


def _administration(locked: TreatmentSession) -> Administration:
    adm = Administration.objects.select_for_update(no_key=True).filter(session=locked).first()
    if adm is None:  # pragma: no cover - dosing always has one
        raise StepRefused("There is no administration record for this session.")
    return adm


@_refusals_audited
def do_record_device(*, actor: Any, session: TreatmentSession, given_at: dt.datetime | None = None,
                     expected_row_version: int | None = None, request: HttpRequest | None = None,
                     at: dt.datetime | None = None) -> DeviceDose:
    """The next esketamine device, at least ``minutes_between_devices`` after the last one
    (facts 1.2: 5 minutes). Never more devices than the computed dose."""
    _require(actor, "run_sessions", "administer")
    at = at or now()
    given_at = given_at or at
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.DOSING, action="record a device")
        adm = _administration(locked)
        if adm.drug != Drug.ESKETAMINE:
            raise StepRefused("Devices are recorded for esketamine only.")
        given = list(adm.devices.all())
        if len(given) >= (adm.devices_planned or 0):
            raise StepRefused(f"All {adm.devices_planned} devices of the {adm.dose_mg.normalize():f} mg dose "
                              "are recorded already.")
        _not_future(given_at, at, "The time of a device")
        last = given[-1]
        gap = dt.timedelta(minutes=adm.minutes_between_devices or 0)
        # Measured on the stated time and on the clock: a time stated ahead (within the
        # tolerance for clocks) must not shorten the gap.
        earliest = min(given_at, at)
        if earliest < last.given_at + gap:
            wait = last.given_at + gap - earliest
            minutes = int(wait.total_seconds() // 60)
            seconds = int(wait.total_seconds() % 60)
            raise StepRefused(f"Device {last.number + 1} must be at least {adm.minutes_between_devices} "
                              f"min after device {last.number}: wait {minutes} min {seconds} s.")
        device = DeviceDose.objects.create(administration=adm, number=last.number + 1,
                                           given_at=given_at, recorded_by=actor)
        _bump(locked)
        audit.record("create", actor=actor, request=request, patient=locked.patient, obj=device,
                     after={"device": device.number, "given_at": given_at})
    _sync(session, locked)
    return device


@_refusals_audited
def do_rate_change(*, actor: Any, session: TreatmentSession, rate_ml_per_h: Decimal, reason: str,
                   expected_row_version: int | None = None, request: HttpRequest | None = None,
                   at: dt.datetime | None = None) -> RateChange:
    """A change of the IV infusion rate while it runs, with a reason."""
    _require(actor, "run_sessions", "administer")
    at = at or now()
    try:
        rate = Decimal(str(rate_ml_per_h))
    except InvalidOperation:
        raise StepRefused("The rate must be a number of mL/h.") from None
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(999):
        raise StepRefused("The rate must be 0 to 999 mL/h.")
    if not (reason or "").strip():
        raise StepRefused("Give the reason for the rate change.")
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.DOSING, action="change the infusion rate")
        adm = _administration(locked)
        if adm.drug != Drug.KETAMINE:
            raise StepRefused("Rate changes apply to IV infusions only.")
        if adm.rate_ml_per_h is not None and rate > adm.rate_ml_per_h:
            # The computed rate keeps the infusion over the protocol's minimum time; running it
            # faster changes the signed order (a new order), slowing or pausing is the nurse's call.
            raise StepRefused(f"The rate cannot go above the computed {adm.rate_ml_per_h} mL/h: the "
                              "infusion would run faster than the order allows. Slow or pause it, or "
                              "ask the prescriber for a new order.")
        change = RateChange.objects.create(administration=adm, at=at, rate_ml_per_h=rate,
                                           reason=reason.strip()[:300], recorded_by=actor)
        _bump(locked)
        audit.record("create", actor=actor, request=request, patient=locked.patient, obj=change,
                     after={"rate_ml_per_h": rate, "reason": reason.strip()})
    _sync(session, locked)
    return change


@_refusals_audited
def do_finish_dosing(*, actor: Any, session: TreatmentSession, reason: str = "",
                     expected_row_version: int | None = None, request: HttpRequest | None = None,
                     at: dt.datetime | None = None) -> TreatmentSession:
    """dosing -> monitoring: esketamine once every device is given; IV when the infusion is
    stopped (before its planned end only with a reason)."""
    _require(actor, "run_sessions", "administer")
    at = at or now()
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.DOSING, action="finish dosing")
        adm = _administration(locked)
        if adm.drug == Drug.ESKETAMINE:
            given = list(adm.devices.all())
            if len(given) < (adm.devices_planned or 0):
                raise StepRefused(f"{len(given)} of {adm.devices_planned} devices are recorded: "
                                  "record every device (or abort the session with a reason).")
            stopped = given[-1].given_at
        else:
            stopped = at
            planned_end = adm.started_at + dt.timedelta(minutes=adm.duration_min or 0)
            if at < planned_end and not reason.strip():
                left = int((planned_end - at).total_seconds() // 60) + 1
                raise StepRefused(f"The infusion has about {left} min to run: stopping early "
                                  "needs a reason.")
        Administration.objects.filter(pk=adm.pk).update(stopped_at=stopped)
        audit.record("update", actor=actor, request=request, patient=locked.patient, obj=adm,
                     before={"stopped_at": adm.stopped_at}, after={"stopped_at": stopped},
                     detail="dosing finished" + (f": {reason.strip()}" if reason.strip() else ""))
        locked = _transition(locked, Status.MONITORING, actor=actor, reason=reason.strip(),
                            request=request, at=at)
    _sync(session, locked)
    return locked


@_refusals_audited
def do_begin_recovery(*, actor: Any, session: TreatmentSession,
                      expected_row_version: int | None = None, request: HttpRequest | None = None,
                      at: dt.datetime | None = None) -> TreatmentSession:
    """monitoring -> recovery (the discharge assessment begins). Esketamine: the ~40 min
    post-dose check must be recorded first (facts 1.5; the PMF records that BP)."""
    _require(actor, "run_sessions", "run sessions")
    at = at or now()
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.MONITORING, action="begin recovery")
        definition = checks.definition_of(locked)
        for checkpoint in definition.vitals.checkpoints:
            if checkpoint.minutes_after_dose is not None and not MonitoringCheck.objects.filter(
                    session=locked, code=checkpoint.code).exists():
                raise StepRefused(f"Record the {checkpoint.code} check ({checkpoint.minutes_after_dose} "
                                  "min after the first dose) before recovery.")
        locked = _transition(locked, Status.RECOVERY, actor=actor, request=request, at=at)
    _sync(session, locked)
    return locked


# --- discharge and other endings ----------------------------------------------------------------

@_refusals_audited
def do_discharge(*, actor: Any, session: TreatmentSession, aldrete_answers: Sequence[int],
                 responsible_adult_present: bool, driving_instructions_given: bool,
                 ready_to_leave_min: int | None = None, expected_row_version: int | None = None,
                 request: HttpRequest | None = None,
                 at: dt.datetime | None = None) -> TreatmentSession:
    """recovery -> discharged, only when every discharge criterion holds (a hard gate: there is
    no override; a monitor alert nobody acknowledged is one). Raises GateRefused listing each
    failed criterion. In the same transaction, the session's acknowledged alerts are resolved
    by the system ("session discharged"): the session leaves the chair board with them."""
    from ketasafe.monitoring.alerts import judge_pending, lock_open_alerts, resolve_acknowledged

    _require(actor, "run_sessions", "discharge")
    at = at or now()
    # Every reading of the session judged first (one whose evaluation failed or has not run yet):
    # an alert it raises is unacknowledged, and the gate below refuses the discharge.
    judge_pending(timezone.now(), session_id=session.pk, after=dt.timedelta(0))
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        _expect_status(locked, Status.RECOVERY, action="discharge")
        # Before the first audit entry: a nurse resolving one of them now (alert row, then the
        # audit chain) must not meet this discharge (audit chain, then alert rows) head-on.
        lock_open_alerts(locked)
        try:
            results, total = checks.discharge_results(
                locked, at, aldrete_answers=list(aldrete_answers),
                responsible_adult_present=responsible_adult_present,
                driving_instructions_given=driving_instructions_given)
        except ValueError as exc:
            raise StepRefused(f"Aldrete answers: {exc}") from None
        if blocking(results):
            raise GateRefused("Discharge refused.", results)
        assessment = DischargeAssessment.objects.create(
            session=locked, aldrete_answers=list(aldrete_answers), aldrete_total=total or 0,
            responsible_adult_present=responsible_adult_present,
            driving_instructions_given=driving_instructions_given,
            ready_to_leave_min=ready_to_leave_min, results=[r.as_dict() for r in results],
            assessed_by=actor, assessed_at=at)
        audit.record("create", actor=actor, request=request, patient=locked.patient, obj=assessment,
                     after={"aldrete_total": total, "ready_to_leave_min": ready_to_leave_min})
        locked = _transition(locked, Status.DISCHARGED, actor=actor, request=request, at=at,
                            changes={"discharged_at": at, "ended_at": at, "end_kind": "discharged"})
        resolve_acknowledged(locked, at, "session discharged")
    _sync(session, locked)
    return locked


@_refusals_audited
def do_end(*, actor: Any, session: TreatmentSession, kind: str, reason: str,
           expected_row_version: int | None = None, request: HttpRequest | None = None,
           at: dt.datetime | None = None) -> TreatmentSession:
    """End a session other than by discharge, always with a reason:
    - "cancel": before any drug was given -> cancelled;
    - "abort": stopped for a clinical reason after dosing began -> aborted;
    - "ama": the patient leaves against medical advice after dosing began -> aborted with
      end_kind "ama" (it is never a discharge: the discharge criteria were not met).
    A running IV infusion is recorded as stopped at ``at``. The session's acknowledged alerts are
    resolved by the system, as at discharge; an alert nobody acknowledged stays open (listed on
    the board with the sessions no longer in a chair, and escalated)."""
    from ketasafe.monitoring.alerts import lock_open_alerts, resolve_acknowledged

    _require(actor, "run_sessions", "run sessions")
    at = at or now()
    if kind not in END_KINDS:
        raise StepRefused(f"Unknown way to end a session: {kind!r}.")
    reason = (reason or "").strip()
    if not reason:
        raise StepRefused("Give the reason.")
    target = END_KINDS[kind]
    with transaction.atomic():
        locked = _lock(session, expected_row_version)
        if kind == "cancel" and locked.dosing_started_at is not None:
            raise InvalidTransition("Drug was given: abort the session (or record that the patient "
                                    "left against medical advice) instead of cancelling it.")
        lock_open_alerts(locked)  # before the first audit entry (see do_discharge)
        adm = Administration.objects.filter(session=locked, stopped_at=None).first()
        if adm is not None and target == Status.ABORTED and adm.drug == Drug.KETAMINE:
            Administration.objects.filter(pk=adm.pk).update(stopped_at=at)
            audit.record("update", actor=actor, request=request, patient=locked.patient, obj=adm,
                         before={"stopped_at": None}, after={"stopped_at": at},
                         detail=f"infusion stopped: session {kind}: {reason}"[:500])
        locked = _transition(locked, target, actor=actor, reason=reason, request=request, at=at,
                            changes={"ended_at": at, "end_kind": kind, "end_reason": reason})
        resolve_acknowledged(locked, at, f"session ended ({END_LABELS.get(kind, kind)})")
    _sync(session, locked)
    return locked



# --- adverse events -----------------------------------------------------------------------------

@_refusals_audited
def do_record_adverse_event(*, actor: Any, session: TreatmentSession, type: str, grade: int,
                            occurred_at: dt.datetime, action_taken: str, outcome: str,
                            description: str = "", prescriber_note: str = "",
                            request: HttpRequest | None = None,
                            at: dt.datetime | None = None) -> AdverseEvent:
    """An adverse event with its CTCAE grade. A grade 3+ event recorded by a prescriber needs
    their note now; recorded by a nurse it is stored and blocks discharge until a prescriber
    adds the note (do_add_prescriber_note)."""
    _require(actor, "run_sessions", "record adverse events")
    at = at or now()
    if type not in AdverseEventType.values:
        raise StepRefused(f"Unknown adverse event type {type!r}: choose one of "
                          f"{', '.join(AdverseEventType.values)}.")
    try:
        grade = int(grade)
    except (TypeError, ValueError):
        raise StepRefused("The CTCAE grade is 1 to 5.") from None
    if not 1 <= grade <= 5:
        raise StepRefused("The CTCAE grade is 1 to 5.")
    if not (action_taken or "").strip() or not (outcome or "").strip():
        raise StepRefused("Record the action taken and the outcome.")
    is_prescriber = has_capability(actor, "order_treatment")
    note = (prescriber_note or "").strip()
    if note and not is_prescriber:
        raise StepRefused("Only a prescriber can write the prescriber note.")
    if int(grade) >= 3 and is_prescriber and not note:
        raise StepRefused("A grade 3 or higher adverse event needs the prescriber's note.")
    with transaction.atomic():
        locked = _lock(session, None)
        if Status(locked.status) in (Status.SCHEDULED, Status.CANCELLED):
            raise InvalidTransition("Adverse events are recorded for sessions that started.")
        _not_future(occurred_at, at, "The time of an adverse event")
        if locked.checked_in_at is None or occurred_at < locked.checked_in_at - AE_BEFORE_CHECK_IN:
            raise StepRefused("An adverse event of this session cannot be timed more than an hour "
                              "before check-in.")
        event = AdverseEvent.objects.create(
            session=locked, type=type, description=(description or "")[:300], grade=int(grade),
            occurred_at=occurred_at, action_taken=action_taken.strip(), outcome=outcome.strip()[:200],
            recorded_by=actor, recorded_at=at, prescriber_note=note,
            prescriber=actor if note else None)
        _bump(locked)
        audit.record("create", actor=actor, request=request, patient=locked.patient, obj=event,
                     after={"type": type, "grade": int(grade), "occurred_at": occurred_at,
                            "action_taken": action_taken, "outcome": outcome,
                            "prescriber_note": bool(note)})
    _sync(session, locked)
    return event


@_refusals_audited
def do_add_prescriber_note(*, actor: Any, session: TreatmentSession, event: AdverseEvent, note: str,
                           request: HttpRequest | None = None) -> AdverseEvent:
    if not has_capability(actor, "order_treatment"):
        raise StepRefused("Only a prescriber can write the prescriber note.")
    note = (note or "").strip()
    if not note:
        raise StepRefused("Write the note.")
    with transaction.atomic():
        locked = _lock(session, None)
        current = AdverseEvent.objects.select_for_update(no_key=True).get(pk=event.pk, session=locked)
        if current.prescriber_note:
            raise StepRefused("This adverse event has a prescriber note already.")
        AdverseEvent.objects.filter(pk=current.pk).update(prescriber_note=note, prescriber=actor)
        _bump(locked)
        audit.record("update", actor=actor, request=request, patient=locked.patient, obj=current,
                     after={"prescriber_note": note})
    _sync(session, locked)
    current.refresh_from_db()
    return current


# --- records ------------------------------------------------------------------------------------

@_refusals_audited
def do_mark_pmf_submitted(*, actor: Any, session: TreatmentSession, reference: str = "",
                          request: HttpRequest | None = None,
                          at: dt.datetime | None = None) -> TreatmentSession:
    """Record that the REMS Patient Monitoring Form of an esketamine session was submitted."""
    _require(actor, "run_sessions", "run sessions")
    at = at or now()
    with transaction.atomic():
        locked = _lock(session, None)
        adm = Administration.objects.filter(session=locked).first()
        if adm is None or adm.drug != Drug.ESKETAMINE:
            raise StepRefused("A Patient Monitoring Form is for esketamine sessions in which "
                              "drug was given.")
        if Status(locked.status) in ACTIVE:
            raise StepRefused("The form is submitted after the session has ended.")
        if locked.pmf_submitted_at is not None:
            raise StepRefused("The form is recorded as submitted already.")
        TreatmentSession.objects.filter(pk=locked.pk).update(
            pmf_submitted_at=at, pmf_submitted_by=actor, pmf_reference=(reference or "")[:80])
        _bump(locked)
        audit.record("update", actor=actor, request=request, patient=locked.patient, obj=locked,
                     after={"pmf_submitted_at": at, "pmf_reference": reference})
        locked.refresh_from_db()
    _sync(session, locked)
    return locked

