"""Chair board, alert actions, session chart, unassigned data and the admin pages. Thin views
(STYLE §6): capability check, fetch, call a service, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from ketasafe import audit
from ketasafe.accounts.access import capability_required, has_capability
from ketasafe.lib.timeutil import clinic_tz
from ketasafe.protocols.models import ProtocolVersion
from ketasafe.sessions.models import TreatmentSession

from . import codemap
from .alert_rules import DEFAULT_THRESHOLDS, threshold_notes
from .alerts import FUTURE_SKEW, AlertActionRefused, baseline_for, do_acknowledge, do_resolve, thresholds_for
from .board import read_board, summary
from .chart import chart_panels
from .forms import AlertRuleSetForm, AssignForm, CodeMapEntryForm
from .ingest import IN_CHAIR
from .models import Alert, AlertRuleSet, CodeMapEntry, InboundMessage, Observation
from .services import do_assign_observations, do_save_alert_rules

POLL_SECONDS = 2
# Observation flags that say why monitor data is on no session (shown on the unassigned page).
ASSIGNMENT_FLAGS = frozenset({"patient_mismatch", "several_sessions_in_progress", "no_session_in_progress"})
CODE_MAP_INTRO = ("A device code (OBX-3) and what it means: LOINC code, UCUM unit and the vital sign it is. "
                  "Never map a code you are not sure of: unmapped data is kept and shown, never guessed.")


def _board_context(request: HttpRequest) -> dict[str, Any]:
    now = timezone.now()
    board = read_board(now)
    return {"rows": board.rows, "elsewhere": board.elsewhere, "elsewhere_escalated": board.elsewhere_escalated,
            "now": now, "poll_seconds": POLL_SECONDS, **summary(board),
            "can_assign": has_capability(request.user, "run_sessions"),
            "unassigned_count": None}


@capability_required("view_board")
def board(request: HttpRequest) -> HttpResponse:
    context = _board_context(request)
    context["unassigned_count"] = (Observation.objects.filter(session=None, message__isnull=False)
                                   .values("message").distinct().count())
    audit.record("view", request=request, detail=request.path)
    return render(request, "monitoring/board.html", context)


@capability_required("view_board")
def board_fragment(request: HttpRequest) -> HttpResponse:
    """The part of the board that the page polls every 2 s (header X-KetaSafe-Poll: 1, so the
    poll is not user activity for the idle logout)."""
    return render(request, "monitoring/_board.html", _board_context(request))


def _after_alert_action(request: HttpRequest) -> HttpResponse:
    if getattr(request, "htmx", False):
        return render(request, "monitoring/_board.html", _board_context(request))
    return redirect("monitoring:board")


@require_POST
@capability_required("view_board")
def alert_acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = get_object_or_404(Alert, pk=alert_id)
    try:
        do_acknowledge(actor=request.user, alert=alert, request=request)
    except AlertActionRefused as exc:
        messages.warning(request, str(exc))
    return _after_alert_action(request)


@require_POST
@capability_required("view_board")
def alert_resolve(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = get_object_or_404(Alert, pk=alert_id)
    try:
        do_resolve(actor=request.user, alert=alert, note=request.POST.get("note", "")[:300], request=request)
    except AlertActionRefused as exc:
        messages.warning(request, str(exc))
    return _after_alert_action(request)


def session_chart(request: HttpRequest, session_id: int) -> HttpResponse:
    """Vitals over time for one session as inline SVG, with the protocol's thresholds drawn.
    A fragment (for the session page to include with hx-get) or, opened directly, a page."""
    if not (has_capability(request.user, "view_board") or has_capability(request.user, "run_sessions")):
        raise PermissionDenied("Your role does not allow seeing session vitals.")
    session = get_object_or_404(TreatmentSession.objects.select_related("patient", "order", "chair"), pk=session_id)
    now = timezone.now()
    # Readings stamped ahead by a monitor clock are left out: one stamped years ahead would
    # stretch the time axis (and the page) to that year. They stay flagged on the data pages.
    points = [(kind, at, value) for kind, at, value in
              Observation.objects.filter(session=session, observed_at__lte=now + FUTURE_SKEW)
              .exclude(kind="").exclude(value=None)
              .values_list("kind", "observed_at", "value").order_by("observed_at", "id") if value is not None]
    thresholds = thresholds_for(session)
    end = now if session.status in IN_CHAIR else None
    panels = chart_panels(points, thresholds, baseline_for(session), tz=clinic_tz(),
                          start=session.dosing_started_at or session.checked_in_at, end=end)
    if not getattr(request, "htmx", False):
        audit.record("view", request=request, patient=session.patient, obj=session, detail=request.path)
    template = "monitoring/_chart.html" if getattr(request, "htmx", False) else "monitoring/chart_page.html"
    return render(request, template, {"session": session, "panels": panels, "thresholds": thresholds})


@capability_required("run_sessions")
def unassigned(request: HttpRequest) -> HttpResponse:
    """Every message with observations on no session: nobody matched, or a patient was found
    (by PID-3) but not exactly one session of theirs in progress, or PID-3 named another patient
    than the one in the chair (``patient_mismatch``). The flags say which."""
    inbound = list(InboundMessage.objects.filter(observations__session=None)
                   .annotate(n=Count("observations"), first=Min("observations__observed_at"),
                             last=Max("observations__observed_at"))
                   .order_by("-received_at")[:200])
    flags: dict[int, set[str]] = {}
    patients: dict[int, str] = {}
    for message_id, obs_flags, mrn in (Observation.objects.filter(message__in=inbound, session=None)
                                       .values_list("message_id", "flags", "patient__mrn")):
        flags.setdefault(message_id, set()).update(f for f in obs_flags or () if f in ASSIGNMENT_FLAGS)
        if mrn:
            patients[message_id] = mrn
    for m in inbound:
        m.assignment_flags = sorted(flags.get(m.pk, ()))  # type: ignore[attr-defined]
        m.patient_mrn = patients.get(m.pk, "")  # type: ignore[attr-defined]
    audit.record("view", request=request, detail=request.path)
    return render(request, "monitoring/unassigned.html", {"inbound": inbound})


def _in_chair_sessions() -> Any:
    return (TreatmentSession.objects.filter(status__in=IN_CHAIR).select_related("patient", "chair")
            .order_by("chair__name", "id"))


@capability_required("run_sessions")
def assign(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(InboundMessage, pk=message_id)
    observations = list(message.observations.filter(session=None).select_related("patient").order_by("id"))
    named = next((o.patient for o in observations if o.patient is not None), None)
    sessions = _in_chair_sessions()
    if named is not None:  # data already tied to a patient only goes to that patient's session
        sessions = sessions.filter(patient=named)
    form = AssignForm(request.POST or None, sessions=sessions)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            count = do_assign_observations(actor=request.user, message=message,
                                           session=form.cleaned_data["session"], request=request)
        except PermissionDenied as exc:  # the session ended meanwhile, or the data is not from it
            why = str(exc) or "This data cannot be given to that session."
            form.add_error(None, why)
            status = 403
            # The service rolled back; the refusal is recorded as every refused action is.
            chosen = form.cleaned_data["session"]
            audit.record("refused", request=request, patient=chosen.patient_id, obj=message,
                         after={"session": chosen.pk}, detail=f"assign monitor data: {why}"[:500])
        else:
            messages.success(request, f"{count} observation(s) assigned.")
            return redirect("monitoring:unassigned")
    if request.method == "GET":
        audit.record("view", request=request, patient=named, obj=message, detail=request.path)
    return render(request, "monitoring/assign.html", {"message": message, "observations": observations,
                                                      "form": form, "named": named}, status=status)


@capability_required("configure_clinic")
def code_map(request: HttpRequest) -> HttpResponse:
    codemap.ensure_seeded()
    entries = CodeMapEntry.objects.select_related("updated_by").order_by("source", "system", "code")
    return render(request, "monitoring/code_map.html", {"entries": entries})


@capability_required("configure_clinic")
def code_map_edit(request: HttpRequest, entry_id: int | None = None) -> HttpResponse:
    instance = get_object_or_404(CodeMapEntry, pk=entry_id) if entry_id else None
    initial = {k: request.GET[k] for k in ("source", "system", "code", "display") if k in request.GET}
    form = CodeMapEntryForm(request.POST or None, instance=instance, initial=initial)
    if request.method == "POST" and form.is_valid():
        values = {name: form.cleaned_data[name] for name in form.Meta.fields}
        codemap.do_save_code_map_entry(actor=request.user, values=values, instance=instance, request=request)
        messages.success(request, "Code map saved. Monitors' next messages use it.")
        return redirect("monitoring:code_map")
    title = f"Code map: {instance.system} {instance.code}" if instance else "New code map entry"
    return render(request, "form_page.html", {"form": form, "title": title,
                                              "intro": CODE_MAP_INTRO,
                                              "cancel_url": reverse("monitoring:code_map")})


@capability_required("configure_clinic")
def unmapped(request: HttpRequest) -> HttpResponse:
    rows = (Observation.objects.filter(unmapped=True)
            .values("message__sender", "raw_code_system", "raw_code", "raw_code_text")
            .annotate(n=Count("id"), last=Max("observed_at"), with_value=Max("raw_value"))
            .order_by("-last")[:300])
    shown = []
    for row in rows:
        sender = row["message__sender"] or ""
        shown.append({**row, "source": codemap.source_of(sender.split("|", 1)[0])})
    return render(request, "monitoring/unmapped.html", {"rows": shown})


@capability_required("configure_clinic")
def alert_rules(request: HttpRequest) -> HttpResponse:
    rule_sets = list(AlertRuleSet.objects.select_related("protocol_version", "updated_by")
                     .order_by("protocol_version__protocol_id", "id"))
    notes = threshold_notes()
    defaults = [(name, getattr(DEFAULT_THRESHOLDS, name), notes.get(name, ""))
                for name in AlertRuleSet.THRESHOLD_FIELDS]
    return render(request, "monitoring/alert_rules.html", {"rule_sets": rule_sets, "defaults": defaults,
                                                           "fields": AlertRuleSet.THRESHOLD_FIELDS})


@capability_required("configure_clinic")
def alert_rules_edit(request: HttpRequest, rules_id: int | None = None) -> HttpResponse:
    instance = get_object_or_404(AlertRuleSet, pk=rules_id) if rules_id else None
    initial = None
    if instance is None:
        initial = {name: getattr(DEFAULT_THRESHOLDS, name) for name in AlertRuleSet.THRESHOLD_FIELDS}
        if "protocol_version" in request.GET:
            try:
                version_id = int(request.GET["protocol_version"])
            except ValueError:
                raise Http404("No such protocol version.") from None
            initial["protocol_version"] = get_object_or_404(ProtocolVersion, pk=version_id)
    form = AlertRuleSetForm(request.POST or None, instance=instance, initial=initial)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            do_save_alert_rules(actor=request.user, instance=form.save(commit=False), request=request)
        except ValidationError as exc:  # e.g. another admin saved the clinic-wide set meanwhile
            _add_errors(form, exc)
            status = 409
        else:
            messages.success(request, "Alert rules saved. They apply to the next readings.")
            return redirect("monitoring:alert_rules")
    return render(request, "form_page.html", {"form": form, "title": "Alert rules",
                                              "intro": "Thresholds in mmHg, %, /min and seconds. Defaults come "
                                                       "from issue 5 and the clinical fact sheet; [U] marks a value "
                                                       "no guideline fixes.",
                                              "cancel_url": reverse("monitoring:alert_rules")},
                  status=status)


def _add_errors(form: Any, exc: ValidationError) -> None:
    """A service's ValidationError shown on the form: on its field when the form has it."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for name, messages_ in errors.items():
        form.add_error(name if name in form.fields else None, messages_)
