"""Session pages. Thin (STYLE §6): a form validates, ``access.get_session_for`` checks the role,
a service acts; a refusal re-renders the page with exactly why (409), bad input with the
form's errors (400)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ketasafe import audit
from ketasafe.accounts.access import capability_required, has_capability
from ketasafe.lib.timeutil import clinic_today, clinic_tz
from ketasafe.monitoring.services import vitals_series
from ketasafe.protocols.exceptions import ProtocolError

from . import checks, records, services
from .access import get_session_for
from .exceptions import GateRefused, ReauthFailed, SessionRefused, StaleSession
from .forms import (
    AdverseEventForm,
    CheckForm,
    CheckInForm,
    ChecklistForm,
    DeviceForm,
    DischargeForm,
    EndForm,
    FinishForm,
    NoteForm,
    OverrideForm,
    PmfForm,
    RateForm,
    ScheduleForm,
    StartDosingForm,
    StepForm,
)
from .models import Checklist, Override, TreatmentSession
from .state import ACTIVE, DRUG_ON_BOARD, Status

# --- lists --------------------------------------------------------------------------------------

# The day list shows days at most this far from today (other days overflow the date range).
DAY_LIST_RANGE_DAYS = 100 * 366


@capability_required("run_sessions")
def today(request: HttpRequest) -> HttpResponse:
    """The day's sessions (clinic time zone) and any session still in progress."""
    day = clinic_today()
    asked = request.GET.get("day", "")
    if asked:
        try:
            wanted = dt.date.fromisoformat(asked)
        except ValueError:
            messages.warning(request, f"{asked[:20]!r} is not a date (YYYY-MM-DD): showing today.")
        else:
            if abs((wanted - day).days) <= DAY_LIST_RANGE_DAYS:
                day = wanted
            else:
                messages.warning(request, f"{wanted:%Y-%m-%d} is out of range: showing today.")
    start = dt.datetime.combine(day, dt.time.min, tzinfo=clinic_tz())
    end = start + dt.timedelta(days=1)
    in_progress = [s for s in Status if s in ACTIVE and s != Status.SCHEDULED]
    sessions = (TreatmentSession.objects
                .filter(scheduled_at__gte=start, scheduled_at__lt=end)
                .select_related("patient", "order__protocol_version", "chair")
                .order_by("scheduled_at"))
    ongoing = (TreatmentSession.objects.filter(status__in=in_progress, scheduled_at__lt=start)
               .select_related("patient", "order__protocol_version", "chair"))
    from .models import Chair

    return render(request, "sessions/today.html", {
        "day": day, "sessions": list(ongoing) + list(sessions),
        "chairs": Chair.objects.filter(active=True),
        "prev_day": day - dt.timedelta(days=1), "next_day": day + dt.timedelta(days=1),
        "can_schedule": has_capability(request.user, "schedule_sessions"),
    })


@capability_required("schedule_sessions")
@require_http_methods(["GET", "POST"])
def schedule(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {}
    if request.GET.get("order", "").isdigit():
        initial["order"] = int(request.GET["order"])
    form = ScheduleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            session = services.do_schedule(actor=request.user, request=request, **form.cleaned_data)
        except SessionRefused as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Scheduled session {session.session_number} for "
                             f"{session.patient.full_name}.")
            return redirect("sessions:today")
    return render(request, "form_page.html", {
        "form": form, "title": "Schedule a session", "submit_label": "Schedule",
        "cancel_url": reverse("sessions:today")}, status=400 if form.errors else 200)


@capability_required("run_sessions")
def forms_due(request: HttpRequest) -> HttpResponse:
    today_ = clinic_today()
    rows = [(s, records.pmf_deadline(s)) for s in records.forms_due()]
    return render(request, "sessions/forms_due.html", {
        "rows": [(s, d, d is not None and d < today_, d is not None and d == today_) for s, d in rows],
        "events": list(records.events_needing_note()), "today": today_})


@capability_required("run_sessions")
def overrides(request: HttpRequest) -> HttpResponse:
    """Every pre-check override: who, why, who confirmed (the report the issue asks for)."""
    rows = (Override.objects.select_related("session__patient", "prescriber", "confirmed_by")
            .order_by("-at")[:500])
    audit.record("view", request=request, object_type="treatment_sessions.Override",
                 detail="override report")
    return render(request, "sessions/overrides.html", {"rows": rows})


# --- the session page ---------------------------------------------------------------------------

def _chart_url(session: TreatmentSession) -> str | None:
    try:
        return reverse("monitoring:session_chart", args=[session.pk])
    except NoReverseMatch:
        return None


def _forms(session: TreatmentSession, bound: dict[str, Any], *, dose_token: str = "") -> dict[str, Any]:
    rv: dict[str, Any] = {"row_version": session.row_version}
    checklist = Checklist.objects.filter(session=session).first()
    checklist_initial: dict[str, Any] = dict(rv)
    if checklist is not None:
        for name in ("fasting_confirmed", "ride_home_arranged", *Checklist.REMS_FIELDS):
            value = getattr(checklist, name)
            checklist_initial[name] = "" if value is None else ("yes" if value else "no")
        checklist_initial["pregnancy_test"] = checklist.pregnancy_test
    checklist_initial["prescriber_on_site"] = session.prescriber_on_site_id
    schedule = checks.schedule_for(session, timezone.now()) if session.status != Status.SCHEDULED else []
    forms: dict[str, Any] = {
        "check_in": CheckInForm(initial={**rv, "chair": session.chair_id}),
        "checklist": ChecklistForm(initial=checklist_initial),
        "check": CheckForm(initial={**rv, "code": checks.next_check_code(schedule)}),
        "prechecks": StepForm(initial=rv),
        "start_dosing": StartDosingForm(initial={**rv, "observing_prescriber": session.prescriber_on_site_id,
                                                 "expected_dose": dose_token}),
        "device": DeviceForm(initial=rv),
        "rate": RateForm(initial=rv),
        "finish_dosing": FinishForm(initial=rv),
        "recovery": StepForm(initial=rv),
        "discharge": DischargeForm(initial=rv),
        "end": EndForm(initial=rv),
        "adverse_event": AdverseEventForm(),
        "pmf_submitted": PmfForm(),
    }
    forms.update(bound)
    return forms


def _render(request: HttpRequest, session: TreatmentSession, *, status: int = 200,
            error: str = "", failed: list[Any] | None = None,
            bound: dict[str, Any] | None = None) -> HttpResponse:
    session.refresh_from_db()
    now = timezone.now()
    definition = checks.definition_of(session)
    order = checks.order_for(session)
    st = Status(session.status)
    dose_text, dose_error, dose_token = "", "", ""
    if order is not None and st in (Status.SCHEDULED, Status.CHECKED_IN, Status.PRE_CHECKS_PASSED):
        try:
            current = checks.current_dose(session, now)
        except ProtocolError as exc:
            dose_error = str(exc)
        else:
            if current is not None:
                dose_text, dose_token = current.text, current.token()
    prechecks = (checks.precheck_results(session, now)
                 if st in (Status.CHECKED_IN, Status.PRE_CHECKS_PASSED) else [])
    adm = getattr(session, "administration", None)
    devices = list(adm.devices.all()) if adm is not None else []
    next_device_at = None
    if adm is not None and adm.devices_planned and len(devices) < adm.devices_planned:
        next_device_at = devices[-1].given_at + dt.timedelta(minutes=adm.minutes_between_devices or 0)
    schedule = checks.schedule_for(session, now) if st != Status.SCHEDULED else []
    minutes_since_dose = (int((now - session.dosing_started_at).total_seconds() // 60)
                          if session.dosing_started_at else None)
    vitals = records.vitals_rows(session)  # one row per minute, newest first
    return render(request, "sessions/detail.html", {
        "session": session, "definition": definition, "order": order, "status": st,
        "dose_text": dose_text, "dose_error": dose_error, "prechecks": prechecks,
        "blocking_prechecks": [r for r in prechecks if r.blocking],
        "adm": adm, "devices": devices, "next_device_at": next_device_at,
        "rate_changes": list(adm.rate_changes.all()) if adm is not None else [],
        "schedule": schedule, "overdue": [c for c, state in schedule if state == "overdue"],
        "checks": list(session.checks.select_related("recorded_by")),
        "vitals": vitals, "vitals_recent": vitals[:records.VITALS_SHOWN],
        "vitals_older": vitals[records.VITALS_SHOWN:], "events": list(session.adverse_events.all()),
        "overrides": list(session.overrides.select_related("prescriber", "confirmed_by")),
        "transitions": list(session.transitions.select_related("actor")),
        "discharge": getattr(session, "discharge", None),
        "minutes_since_dose": minutes_since_dose, "chart_url": _chart_url(session),
        "drug_on_board": st in DRUG_ON_BOARD, "active": st in ACTIVE,
        "can_override": has_capability(request.user, "override_precheck"),
        "is_prescriber": has_capability(request.user, "order_treatment"),
        "error": error, "failed": failed or [],
        "forms": _forms(session, bound or {}, dose_token=dose_token),
        "override_form": bound.get("override") if bound else None,
        "pmf_due": records.pmf_deadline(session) if adm is not None and adm.drug == "esketamine" else None,
    }, status=status)


def detail(request: HttpRequest, session_id: int) -> HttpResponse:
    session = get_session_for(request, session_id, audit_view=True)
    return _render(request, session)


# Each step: (form class, capability, handler(request, session, cleaned data) -> message).
Handler = Callable[[HttpRequest, TreatmentSession, dict[str, Any]], str]


def _rv(data: dict[str, Any]) -> int | None:
    value = data.get("row_version")
    return int(value) if value is not None else None


def _check_in(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_check_in(actor=request.user, session=s, chair=d["chair"],
                         expected_row_version=_rv(d), request=request)
    return f"Checked in to {d['chair'].name}."


def _checklist(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    values = {k: d[k] for k in ("fasting_confirmed", "ride_home_arranged", "pregnancy_test",
                                *Checklist.REMS_FIELDS)}
    values["pregnancy_test"] = values["pregnancy_test"] or ""
    services.do_update_checklist(actor=request.user, session=s, values=values,
                                 prescriber_on_site=d.get("prescriber_on_site"),
                                 expected_row_version=_rv(d), request=request)
    return "Checklist saved."


def _check(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    vitals = {k: d[k] for k in CheckForm.VITAL_FIELDS if d.get(k) is not None}
    services.do_record_check(actor=request.user, session=s, code=d["code"],
                             observed_at=d.get("observed_at"), vitals=vitals, moaas=d.get("moaas"),
                             dissociation_scale=d.get("dissociation_scale") or "",
                             dissociation_answers=d.get("dissociation_answers") or [],
                             request=request)
    return f"Check {d['code']} recorded."


def _prechecks(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_pass_prechecks(actor=request.user, session=s, expected_row_version=_rv(d),
                               request=request)
    return "Pre-checks passed."


def _override(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_override(actor=request.user, session=s, check_code=d["check_code"],
                         reason=d["reason"], confirmer_username=d["confirmer_username"],
                         confirmer_password=d["confirmer_password"],
                         expected_row_version=_rv(d), request=request)
    return f"{d['check_code']} overridden, confirmed by {d['confirmer_username']}."


def _start(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_start_dosing(actor=request.user, session=s, lot_number=d["lot_number"],
                             observing_prescriber=d["observing_prescriber"],
                             expected_row_version=_rv(d), expected_dose=d["expected_dose"],
                             request=request)
    return "Dosing started."


def _device(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    device = services.do_record_device(actor=request.user, session=s, given_at=d.get("given_at"),
                                       expected_row_version=_rv(d), request=request)
    return f"Device {device.number} recorded."


def _rate(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_rate_change(actor=request.user, session=s, rate_ml_per_h=d["rate_ml_per_h"],
                            reason=d["reason"], expected_row_version=_rv(d), request=request)
    return "Rate change recorded."


def _finish(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_finish_dosing(actor=request.user, session=s, reason=d.get("reason") or "",
                              expected_row_version=_rv(d), request=request)
    return "Dosing finished: monitoring."


def _recovery(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_begin_recovery(actor=request.user, session=s, expected_row_version=_rv(d),
                               request=request)
    return "Recovery: discharge assessment."


def _discharge(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_discharge(actor=request.user, session=s,
                          aldrete_answers=[d[k] for k in DischargeForm.ALDRETE_ORDER],
                          responsible_adult_present=d["responsible_adult_present"],
                          driving_instructions_given=d["driving_instructions_given"],
                          ready_to_leave_min=d.get("ready_to_leave_min"),
                          expected_row_version=_rv(d), request=request)
    return "Discharged."


def _end(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_end(actor=request.user, session=s, kind=d["kind"], reason=d["reason"],
                    expected_row_version=_rv(d), request=request)
    return {"cancel": "Session cancelled.", "abort": "Session aborted.",
            "ama": "Recorded: the patient left against medical advice."}[d["kind"]]


def _adverse_event(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_record_adverse_event(
        actor=request.user, session=s, type=d["type"], grade=d["grade"],
        occurred_at=d.get("occurred_at") or timezone.now(), action_taken=d["action_taken"],
        outcome=d["outcome"], description=d.get("description") or "",
        prescriber_note=d.get("prescriber_note") or "", request=request)
    return "Adverse event recorded."


def _note(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    event = s.adverse_events.filter(pk=d["event"]).first()
    if event is None:
        raise Http404("No such adverse event in this session.")
    services.do_add_prescriber_note(actor=request.user, session=s, event=event, note=d["note"],
                                    request=request)
    return "Prescriber note added."


def _pmf(request: HttpRequest, s: TreatmentSession, d: dict[str, Any]) -> str:
    services.do_mark_pmf_submitted(actor=request.user, session=s, reference=d.get("reference") or "",
                                   request=request)
    return "Patient Monitoring Form recorded as submitted."


STEPS: dict[str, tuple[type[Any], str, Handler]] = {
    "check_in": (CheckInForm, "run_sessions", _check_in),
    "checklist": (ChecklistForm, "run_sessions", _checklist),
    "check": (CheckForm, "run_sessions", _check),
    "prechecks": (StepForm, "run_sessions", _prechecks),
    "override": (OverrideForm, "override_precheck", _override),
    "start_dosing": (StartDosingForm, "run_sessions", _start),
    "device": (DeviceForm, "run_sessions", _device),
    "rate": (RateForm, "run_sessions", _rate),
    "finish_dosing": (FinishForm, "run_sessions", _finish),
    "recovery": (StepForm, "run_sessions", _recovery),
    "discharge": (DischargeForm, "run_sessions", _discharge),
    "end": (EndForm, "run_sessions", _end),
    "adverse_event": (AdverseEventForm, "run_sessions", _adverse_event),
    "ae_note": (NoteForm, "order_treatment", _note),
    "pmf_submitted": (PmfForm, "run_sessions", _pmf),
}


@require_POST
def step(request: HttpRequest, session_id: int, name: str) -> HttpResponse:
    if name not in STEPS:
        raise Http404("No such step.")
    form_class, capability, handler = STEPS[name]
    session = get_session_for(request, session_id, capability=capability)
    form = form_class(request.POST)
    if not form.is_valid():
        return _render(request, session, status=400, error="Check the form: nothing was saved.",
                       bound={name: form})
    try:
        message = handler(request, session, form.cleaned_data)
    except GateRefused as exc:
        return _render(request, session, status=409, error=exc.message, failed=exc.results,
                       bound={name: form})
    except ReauthFailed as exc:
        return _render(request, session, status=403, error=str(exc), bound={name: form})
    except StaleSession as exc:
        # Fresh forms: the page now shows the session (and dose) as it is, so a second submit
        # acts on what the nurse sees, never on the stale version.
        return _render(request, session, status=409, error=exc.message)
    except SessionRefused as exc:
        return _render(request, session, status=409, error=exc.message, bound={name: form})
    messages.success(request, message)
    return redirect("sessions:detail", session.pk)


# --- records ------------------------------------------------------------------------------------

def record(request: HttpRequest, session_id: int) -> HttpResponse:
    """The printable session record (and, for esketamine, the PMF fields)."""
    session = get_session_for(request, session_id, audit_view=False)
    audit.record("print", request=request, patient=session.patient, obj=session,
                 detail="session record")
    adm = getattr(session, "administration", None)
    return render(request, "sessions/record.html", {
        "session": session, "definition": checks.definition_of(session), "adm": adm,
        "devices": list(adm.devices.all()) if adm else [],
        "rate_changes": list(adm.rate_changes.all()) if adm else [],
        "checks": list(session.checks.all()), "vitals": vitals_series(session),
        "events": list(session.adverse_events.all()), "overrides": list(session.overrides.all()),
        "transitions": list(session.transitions.select_related("actor")),
        "discharge": getattr(session, "discharge", None),
        "checklist": Checklist.objects.filter(session=session).first(),
        "pmf": records.pmf_fields(session) if adm is not None and adm.drug == "esketamine" else None,
        "pmf_due": records.pmf_deadline(session),
    })

