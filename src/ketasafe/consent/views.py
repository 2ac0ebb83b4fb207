"""Thin views for consent documents, signing, withdrawal and the print view."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ketasafe.accounts.access import capability_required
from ketasafe.patients.services import get_patient_for

from . import services
from .exceptions import ConsentError, ConsentInputInvalid
from .forms import ConsentVersionForm, SignConsentForm, WithdrawForm
from .models import ConsentDocument, ConsentSignature, ConsentVersion, Kind
from .status import current_version


@capability_required("manage_consent_documents")
@require_GET
def documents(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    docs = [{"doc": d, "current": current_version(d, now), "versions": list(d.versions.all())}
            for d in ConsentDocument.objects.prefetch_related("versions")]
    return render(request, "consent/documents.html", {"docs": docs})


@capability_required("manage_consent_documents")
@require_http_methods(["GET", "POST"])
def version_new(request: HttpRequest) -> HttpResponse:
    initial = {k: request.GET.get(k, "") for k in ("protocol", "kind")}
    source = ConsentVersion.objects.filter(pk=request.GET.get("from") or 0).select_related("document").first() \
        if (request.GET.get("from") or "").isdigit() else None
    if source:
        initial.update(protocol=source.document.protocol, kind=source.document.kind, title=source.title,
                       body=source.body)
    form = ConsentVersionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            version = services.do_create_version(actor=request.user, request=request, **form.cleaned_data)
        except ConsentInputInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Draft version {version.version} saved. Publish it to put it in force.")
            return redirect("consent:documents")
    return render(request, "form_page.html", {
        "form": form, "title": "New consent document version", "submit_label": "Save draft",
        "intro": "A new version is a draft until published; once published it never changes.",
        "cancel_url": reverse("consent:documents")}, status=400 if form.errors else 200)


@capability_required("manage_consent_documents")
@require_POST
def version_publish(request: HttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(ConsentVersion, pk=version_id)
    try:
        services.do_publish_version(actor=request.user, request=request, version=version)
    except ConsentError as exc:
        messages.error(request, f"Version {version.version} was not published: {exc}")
    else:
        messages.success(request, f"Published {version}. Earlier signatures are stale from "
                                  f"{version.effective_date:%Y-%m-%d}.")
    return redirect("consent:documents")


@require_http_methods(["GET", "POST"])
def sign(request: HttpRequest, patient_id: int, version_id: int) -> HttpResponse:
    patient = get_patient_for(request, patient_id, capability="witness_consent")
    version = get_object_or_404(ConsentVersion.objects.select_related("document"), pk=version_id)
    rems = version.document.kind == Kind.REMS_ENROLLMENT
    form = SignConsentForm(request.POST or None, request=request, rems=rems,
                           initial={"witness_username": request.user.get_username()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            signature = services.do_sign_consent(
                actor=request.user, request=request, version=version, patient=patient,
                typed_name=data["typed_name"], signature_png=data["signature"], witness=data["witness"],
                prescriber=data["prescriber"])
        except ConsentInputInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        except ConsentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{version.document.get_kind_display()} signed.")
            return redirect("consent:print", signature.pk)
    if version != current_version(version.document, timezone.now()):
        form.add_error(None, "This version is not the one in force; sign the current version.")
    return render(request, "consent/sign.html", {"form": form, "patient": patient, "version": version,
                                                 "rems": rems}, status=400 if form.errors else 200)


def _signature_for(request: HttpRequest, signature_id: int, *, action: str = "view",
                   capability: str = "view_patients") -> ConsentSignature:
    signature = get_object_or_404(ConsentSignature.objects.select_related(
        "version__document", "patient", "witness", "prescriber"), pk=signature_id)
    get_patient_for(request, signature.patient_id, capability=capability, action=action)
    return signature


@require_GET
def signature_image(request: HttpRequest, signature_id: int) -> HttpResponse:
    signature = _signature_for(request, signature_id)
    response = HttpResponse(bytes(signature.signature_png), content_type="image/png")
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def print_view(request: HttpRequest, signature_id: int) -> HttpResponse:
    signature = _signature_for(request, signature_id, action="print")
    return render(request, "consent/print.html", {"s": signature, "patient": signature.patient,
                                                  "version": signature.version})


@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest, signature_id: int) -> HttpResponse:
    signature = _signature_for(request, signature_id, capability="witness_consent")
    form = WithdrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.do_withdraw(actor=request.user, request=request, signature=signature,
                                 reason=form.cleaned_data["reason"])
        except ConsentError as exc:
            messages.error(request, str(exc))
        else:
            messages.warning(request, "Consent withdrawn: it no longer counts for any session.")
        return redirect("patients:detail", signature.patient_id)
    return render(request, "form_page.html", {
        "form": form, "title": f"Record withdrawal of consent: {signature.patient.full_name}",
        "intro": f"{signature.version} signed {timezone.localtime(signature.signed_at):%Y-%m-%d %H:%M}. "
                 "Withdrawal takes effect at once.",
        "submit_label": "Record withdrawal", "cancel_url": reverse("patients:detail", args=[signature.patient_id])},
        status=400 if form.errors else 200)


