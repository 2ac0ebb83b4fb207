from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from ketasafe import audit
from ketasafe.accounts.access import capability_required, require_capability

from . import services
from .forms import RECORD_FORMS, PatientForm, ProblemStatusForm
from .models import Allergy, Medication, Patient, Problem
from .panels import panels


@capability_required("view_patients")
def patient_list(request: HttpRequest) -> HttpResponse:
    # NUL cannot be stored or compared by PostgreSQL: drop it rather than fail with a 500.
    q = request.GET.get("q", "").replace("\x00", "").strip()[:100]
    patients = Patient.objects.all()
    if q:
        terms = q.split()
        for term in terms:
            patients = patients.filter(
                Q(mrn__icontains=term) | Q(given_name__icontains=term) | Q(family_name__icontains=term)
            )
    page = Paginator(patients.order_by("family_name", "given_name"), 25).get_page(request.GET.get("page"))
    # The list itself shows MRNs, names and birth dates: every page shown is an audited view.
    audit.record("view", request=request, object_type="patients.Patient",
                 detail=f"patient list page={page.number} q={q}")
    template = "patients/_rows.html" if getattr(request, "htmx", False) else "patients/list.html"
    return render(request, template, {"page": page, "q": q})


@capability_required("edit_patients")
@require_http_methods(["GET", "POST"])
def patient_register(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        patient = services.do_register_patient(actor=request.user, request=request, **form.cleaned_data)
        messages.success(request, f"Registered {patient.full_name} ({patient.mrn}).")
        return redirect("patients:detail", patient.pk)
    return render(request, "form_page.html",
                  {"form": form, "title": "Register a patient", "submit_label": "Register",
                   "cancel_url": reverse("patients:list")}, status=400 if form.errors else 200)


def patient_detail(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = services.get_patient_for(request, patient_id)
    extra = [p for p in (panel(request, patient) for panel in panels()) if p is not None]
    return render(request, "patients/detail.html", {
        "patient": patient,
        "measurement": patient.latest_measurement(),
        "allergies": patient.allergies.filter(active=True),
        "medications": patient.medications.filter(active=True),
        "problems": patient.problems.order_by("status", "icd10_code"),
        "panels": extra,
    })


@require_http_methods(["GET", "POST"])
def patient_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = services.get_patient_for(request, patient_id, capability="edit_patients")
    form = PatientForm(request.POST or None, instance=Patient.objects.get(pk=patient.pk))
    if request.method == "POST" and form.is_valid():
        services.do_update_patient(actor=request.user, request=request, patient=patient,
                                   **form.cleaned_data)
        messages.success(request, "Saved.")
        return redirect("patients:detail", patient.pk)
    return render(request, "form_page.html",
                  {"form": form, "title": f"Edit {patient.full_name}",
                   "cancel_url": reverse("patients:detail", args=[patient.pk])},
                  status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
def record_add(request: HttpRequest, patient_id: int, kind: str) -> HttpResponse:
    if kind not in RECORD_FORMS:
        raise Http404("No such record kind.")
    patient = services.get_patient_for(request, patient_id, capability="edit_patients")
    form_class, title = RECORD_FORMS[kind]
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields = form.cleaned_data
        if kind == "measurement":
            services.record_measurement(actor=request.user, request=request, patient=patient, **fields)
        else:
            services.do_add_record(actor=request.user, request=request, patient=patient,
                                   model=form_class._meta.model, **fields)
        messages.success(request, "Saved.")
        nxt = request.GET.get("next", "")
        safe = url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure())
        return redirect(nxt if nxt and safe else reverse("patients:detail", args=[patient.pk]))
    return render(request, "form_page.html",
                  {"form": form, "title": f"{title}: {patient.full_name}",
                   "cancel_url": reverse("patients:detail", args=[patient.pk])},
                  status=400 if form.errors else 200)


@require_POST
def problem_status(request: HttpRequest, problem_id: int) -> HttpResponse:
    require_capability(request.user, "edit_patients")
    problem = get_object_or_404(Problem, pk=problem_id)
    form = ProblemStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid status.")
        return redirect("patients:detail", problem.patient_id)
    services.do_update_record(actor=request.user, request=request, obj=problem,
                              status=form.cleaned_data["status"])
    messages.success(request, f"{problem.icd10_code} is now {form.cleaned_data['status']}.")
    return redirect("patients:detail", problem.patient_id)


@require_POST
def record_stop(request: HttpRequest, kind: str, record_id: int) -> HttpResponse:
    """Stop a medication or mark an allergy inactive (never deleted: history is kept)."""
    require_capability(request.user, "edit_patients")
    model = {"medication": Medication, "allergy": Allergy}.get(kind)
    if model is None:
        raise Http404("No such record kind.")
    obj: Any = get_object_or_404(model, pk=record_id)
    services.do_update_record(actor=request.user, request=request, obj=obj, active=False)
    messages.success(request, f"{obj} marked as no longer current.")
    return redirect("patients:detail", obj.patient_id)
