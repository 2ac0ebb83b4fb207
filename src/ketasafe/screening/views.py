"""Thin views: validate with a form, fetch through the access helper, call a service, render."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ketasafe.accounts.access import capability_required, has_capability
from ketasafe.patients.models import Patient
from ketasafe.patients.services import get_patient_for

from . import services
from .eligibility import eligibility
from .exceptions import IntakeInvalid, RuleSetInvalid
from .forms import IntakeForm, NotTreatedForm, RuleSetVersionForm, SignForm, StartIntakeForm
from .intake import decode_json
from .models import RuleSetVersion, Screening
from .refusals import NotAllowedToSign, ScreeningChanged, ScreeningError
from .rules import THRESHOLDS


def _screening_for(request: HttpRequest, screening_id: int, capability: str = "view_patients") -> Screening:
    screening = get_object_or_404(Screening.objects.select_related("patient"), pk=screening_id)
    get_patient_for(request, screening.patient_id, capability=capability)
    return screening


@require_http_methods(["GET", "POST"])
def start_intake(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = get_patient_for(request, patient_id, capability="start_intake")
    form = StartIntakeForm(request.POST or None, initial={"protocol": request.GET.get("protocol", "")})
    if request.method == "POST" and form.is_valid():
        screening = services.do_start_intake(actor=request.user, request=request, patient=patient,
                                             **form.cleaned_data)
        messages.success(request, "Intake started.")
        return redirect("screening:intake", screening.pk)
    return render(request, "form_page.html", {
        "form": form, "title": f"Start a screening intake: {patient.full_name}", "submit_label": "Start intake",
        "intro": "History, medications, allergies, pregnancy status and weight are taken from the "
                 "patient's record; keep them current on the patient page.",
        "cancel_url": reverse("patients:detail", args=[patient.pk])}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def intake(request: HttpRequest, screening_id: int) -> HttpResponse:
    screening = _screening_for(request, screening_id, capability="start_intake")
    if not screening.is_open:
        messages.error(request, "This screening is closed; start a new one to change anything.")
        return redirect("screening:detail", screening.pk)
    form = IntakeForm(request.POST or None, initial=IntakeForm.initial_for(screening))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                # A completed screening is never changed: both services may return a new
                # screening copied from it, and the page follows that one.
                if "save_draft" in request.POST:
                    saved = services.do_save_intake(actor=request.user, request=request, screening=screening,
                                                    **form.intake_fields())
                    messages.success(request, "Draft saved." if saved.pk == screening.pk else
                                     "Saved as a new draft. The completed screening still counts until "
                                     "this one is run.")
                    return redirect("screening:intake", saved.pk)
                ran = services.do_complete_screening(actor=request.user, request=request, screening=screening,
                                                     **form.intake_fields())
                return redirect("screening:detail", ran.pk)
            except IntakeInvalid as exc:
                # Nothing was saved. Say which input and where to fix it.
                form.add_error(None, f"{exc}. Fix it (history, medications and weight are on the patient "
                                     "page) and run the screening again.")
            except ScreeningError as exc:
                form.add_error(None, str(exc))
        status = 400
    return render(request, "screening/intake.html", {
        "form": form, "screening": screening, "patient": screening.patient,
        "problems": screening.patient.problems.order_by("status", "icd10_code"),
        "medications": screening.patient.medications.filter(active=True),
        "allergies": screening.patient.allergies.filter(active=True),
        "measurement": screening.patient.latest_measurement()}, status=status)


@require_GET
def detail(request: HttpRequest, screening_id: int) -> HttpResponse:
    screening = _screening_for(request, screening_id)
    return _render_detail(request, screening)


def _render_detail(request: HttpRequest, screening: Screening, *, sign_form: SignForm | None = None,
                   not_treated_form: NotTreatedForm | None = None, error: str = "", status: int = 200) -> HttpResponse:
    token = {"decision_token": services.decision_token(screening)}
    return render(request, "screening/detail.html", {
        "screening": screening, "patient": screening.patient,
        "can_sign": has_capability(request.user, "sign_screening"),
        "sign_form": sign_form or SignForm(warnings=screening.warnings, initial=token),
        "not_treated_form": not_treated_form or NotTreatedForm(initial=token),
        "eligibility": eligibility(screening.patient, screening.protocol, timezone.now()),
        "error": error}, status=status)


@require_POST
def sign(request: HttpRequest, screening_id: int) -> HttpResponse:
    # No capability decorator on purpose: the service refuses non-prescribers and audits the attempt.
    screening = _screening_for(request, screening_id)
    form = SignForm(request.POST, warnings=screening.warnings)
    # A stale page goes to the service even when its justifications no longer fit the current
    # warnings, so the refusal says why and is audited.
    if not form.is_valid() and not _page_is_stale(request, screening):
        return _render_detail(request, screening, sign_form=form, status=400,
                              error="Write a justification (at least 10 characters) for each warning.")
    try:
        services.do_sign_screening(actor=request.user, request=request, screening=screening,
                                   justifications=form.justifications(),
                                   expected_token=request.POST.get("decision_token", ""))
    except NotAllowedToSign as exc:
        raise PermissionDenied(str(exc)) from None
    except ScreeningChanged as exc:
        return _changed(request, screening, exc)
    except ScreeningError as exc:
        screening.refresh_from_db()
        return _render_detail(request, screening, sign_form=form, error=str(exc), status=exc.status_code)
    messages.success(request, "Screening signed.")
    return redirect("patients:detail", screening.patient_id)


@require_POST
def not_treated(request: HttpRequest, screening_id: int) -> HttpResponse:
    screening = _screening_for(request, screening_id)
    form = NotTreatedForm(request.POST)
    if not form.is_valid() and not _page_is_stale(request, screening):
        return _render_detail(request, screening, not_treated_form=form, status=400,
                              error="Give a reason (at least 10 characters).")
    try:
        services.do_record_not_treated(actor=request.user, request=request, screening=screening,
                                       reason=form.cleaned_data.get("reason", ""),
                                       expected_token=request.POST.get("decision_token", ""))
    except NotAllowedToSign as exc:
        raise PermissionDenied(str(exc)) from None
    except ScreeningChanged as exc:
        return _changed(request, screening, exc)
    except ScreeningError as exc:
        screening.refresh_from_db()
        return _render_detail(request, screening, not_treated_form=form, error=str(exc), status=exc.status_code)
    messages.success(request, "Recorded: not treated.")
    return redirect("patients:detail", screening.patient_id)


def _page_is_stale(request: HttpRequest, screening: Screening) -> bool:
    return request.POST.get("decision_token", "") != services.decision_token(screening)


def _changed(request: HttpRequest, screening: Screening, exc: ScreeningChanged) -> HttpResponse:
    # Fresh forms for the decision as it is now: the old page's answers were for another decision.
    screening.refresh_from_db()
    return _render_detail(request, screening, error=str(exc), status=exc.status_code)


# --- JSON API --------------------------------------------------------------------------------

def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@require_POST
def api_intake(request: HttpRequest) -> JsonResponse:
    """POST a contract-format intake plus "patient_id" (and optional "indication",
    "substance_use_history", "drug_screen", "drug_screen_detail"): 201 with the decision, or 400
    {"error": "<field>: <message>"} with nothing saved. The patient's record is what is screened
    (services.do_screen_from_api); assessed_on must be today in the clinic's zone."""
    if not has_capability(request.user, "start_intake"):
        return _error("Your role does not allow starting an intake.", 403)
    try:
        body = decode_json(request.body)
    except IntakeInvalid as exc:
        return _error(str(exc))
    if not isinstance(body, dict):
        return _error("intake: expected a JSON object")
    patient_id = body.pop("patient_id", None)
    # Intake-only text next to the contract intake; the service validates them (type, length, NUL).
    extra = {key: body.pop(key, None) for key in ("indication", "substance_use_history", "drug_screen",
                                                  "drug_screen_detail")}
    if patient_id is None:
        return _error("patient_id: required")
    if isinstance(patient_id, bool) or not isinstance(patient_id, int):
        return _error("patient_id: must be an integer")
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        return _error(f"patient_id: no patient {patient_id}")
    try:
        screening = services.do_screen_from_api(actor=request.user, request=request, patient=patient,
                                                data=body, **extra)
    except IntakeInvalid as exc:
        return _error(str(exc))
    except ScreeningError as exc:
        return _error(str(exc), exc.status_code)
    return JsonResponse({"screening_id": screening.pk, "status": screening.status, **(screening.decision or {})},
                        status=201)


# --- Rule set versions -----------------------------------------------------------------------

@capability_required("configure_clinic")
@require_GET
def rulesets(request: HttpRequest) -> HttpResponse:
    versions = list(RuleSetVersion.objects.select_related("based_on", "created_by"))
    active = services.active_ruleset()
    rows: list[dict[str, Any]] = []
    for v in versions:
        base = v.based_on.ruleset() if v.based_on else None
        current = v.ruleset()
        rows.append({"v": v, "active": v.pk == active.pk,
                     "thresholds": {k: x for k, x in current.thresholds.items() if base and base.thresholds[k] != x},
                     "severities": {k: str(x) for k, x in current.severities.items()
                                    if base and base.severities[k] != x}})
    return render(request, "screening/rulesets.html", {"rows": rows, "thresholds": THRESHOLDS})


@capability_required("configure_clinic")
@require_http_methods(["GET", "POST"])
def ruleset_new(request: HttpRequest, base_id: int) -> HttpResponse:
    base = get_object_or_404(RuleSetVersion, pk=base_id)
    form = RuleSetVersionForm(request.POST or None, base=base)
    if request.method == "POST" and form.is_valid():
        try:
            row = services.do_create_ruleset_version(
                actor=request.user, request=request, base=base, version=form.cleaned_data["version"],
                thresholds=form.thresholds(), severities=form.severities(), note=form.cleaned_data["note"])
        except RuleSetInvalid as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Rule set {row.version} created. Activate it to use it for new screenings.")
            return redirect("screening:rulesets")
    return render(request, "form_page.html", {
        "form": form, "title": f"New rule set version based on {base.version}", "submit_label": "Create version",
        "intro": "Thresholds can move within safe ranges; severities can only be raised. A version never "
                 "changes after it is created; each decision records the version it used.",
        "cancel_url": reverse("screening:rulesets")}, status=400 if form.errors else 200)


@capability_required("configure_clinic")
@require_POST
def ruleset_activate(request: HttpRequest, ruleset_id: int) -> HttpResponse:
    row = get_object_or_404(RuleSetVersion, pk=ruleset_id)
    services.do_activate_ruleset(actor=request.user, request=request, ruleset=row)
    messages.success(request, f"New screenings now use {row.version}.")
    return redirect("screening:rulesets")
