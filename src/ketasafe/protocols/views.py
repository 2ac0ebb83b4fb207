"""Protocol versions (clinic admin) and treatment orders (prescribers). Thin views (STYLE §6)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from ketasafe.accounts.access import capability_required, require_capability
from ketasafe.lib.timeutil import clinic_today
from ketasafe.patients.services import get_patient_for

from . import services
from .definitions import SHIPPED_PROTOCOLS, fmt
from .errors import OrderRefused, ReauthFailed, TreatmentNotAllowed
from .exceptions import ProtocolError
from .forms import CancelOrderForm, OrderForm, ProtocolVersionForm
from .models import OrderStatus, ProtocolVersion, TreatmentOrder


def _settings_rows(definition: Any) -> list[tuple[str, str, str]]:
    """(setting, value, rule) for the page that shows what a clinic version may change."""
    from dataclasses import fields

    rows = []
    for part in definition.components:
        for f in fields(part):
            value = getattr(part, f.name)
            if isinstance(value, tuple) and value and not isinstance(value[0], int | float | str) \
                    and not hasattr(value[0], "is_finite"):
                shown = ", ".join(getattr(v, "code", str(v)) for v in value)
            elif isinstance(value, tuple):
                shown = ", ".join(fmt(v) if not isinstance(v, str) else v for v in value)
            else:
                shown = fmt(value) if hasattr(value, "is_finite") else str(value)
            rows.append((definition.display_name(f.name), shown, f.metadata.get("rule", "")))
    return rows


@capability_required("configure_clinic")
def protocol_list(request: HttpRequest) -> HttpResponse:
    services.ensure_shipped_versions()
    versions = []
    for version in ProtocolVersion.objects.order_by("protocol_id", "created_at"):
        try:
            definition = services.definition_for(version)
            problem = ""
        except ProtocolError as exc:  # a row that no longer fits the shipped limits
            definition, problem = None, str(exc)
        versions.append((version, definition, problem))
    shipped = [(d, _settings_rows(d)) for _, d in sorted(SHIPPED_PROTOCOLS.items())]
    return render(request, "protocols/list.html", {"versions": versions, "shipped": shipped})


@capability_required("configure_clinic")
@require_http_methods(["GET", "POST"])
def version_new(request: HttpRequest) -> HttpResponse:
    form = ProtocolVersionForm(request.POST or None,
                               initial={"protocol_id": request.GET.get("protocol", "")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            changes = services.parse_changes(data["changes"])
            version = services.do_create_protocol_version(
                actor=request.user, protocol_id=data["protocol_id"], label=data["label"],
                changes=changes, request=request)
        except (ProtocolError, OrderRefused) as exc:
            form.add_error("label" if getattr(exc, "field", None) == "label" else "changes", str(exc))
        else:
            messages.success(request, f"Created {version}.")
            return redirect("protocols:list")
    return render(request, "form_page.html", {
        "form": form, "title": "New clinic protocol version", "submit_label": "Create version",
        "intro": "A clinic version changes a shipped protocol's settings within its hard limits "
                 "(see the protocol list for each setting's rule).",
        "cancel_url": reverse("protocols:list")}, status=400 if form.errors else 200)


def _order_page(request: HttpRequest, patient: Any, form: OrderForm, *, title: str,
                preview: Any = None, status: int = 200, order: TreatmentOrder | None = None
                ) -> HttpResponse:
    return render(request, "protocols/order_form.html", {
        "form": form, "patient": patient, "title": title, "preview": preview, "order": order,
        "previewed": dose_digest(preview) if preview else "",
        "measurement": patient.latest_measurement(on=clinic_today())}, status=status)


def dose_digest(preview: dict[str, Any]) -> str:
    """What the prescriber was shown (doses, volumes, rates, the weight used): the page posts it
    back with "Sign order", which is refused if the dose computed at signing differs."""
    return hashlib.sha256(json.dumps(preview, sort_keys=True, default=str).encode()).hexdigest()


def _preview(patient: Any, form: OrderForm) -> dict[str, Any]:
    version = form.cleaned_data["protocol_version"]
    params = form.dose_parameters()
    first, measurement = services.preview_dose(patient=patient, version=version,
                                               dose_parameters=params, on=clinic_today())
    later, _ = services.preview_dose(patient=patient, version=version, dose_parameters=params,
                                     on=clinic_today(), session_number=2)
    return {"first": first.as_dict(), "later": later.as_dict(), "measurement": measurement}


@require_http_methods(["GET", "POST"])
def order_new(request: HttpRequest, patient_id: int, order_id: int | None = None) -> HttpResponse:
    """Order a course, or (with order_id) change one: a new version superseding the old."""
    patient = get_patient_for(request, patient_id, capability="order_treatment")
    old = None
    initial: dict[str, Any] = {}
    if order_id is not None:
        old = get_object_or_404(TreatmentOrder, pk=order_id, patient=patient)
        initial = {"protocol_version": old.protocol_version_id,
                   "sessions_ordered": old.sessions_ordered, "course_start": old.course_start,
                   "phase": old.phase, **old.dose_parameters}
    else:
        initial = {"sessions_ordered": 8, "course_start": clinic_today()}
    title = (f"Change order {old.pk} v{old.version}" if old else "Order a treatment course") \
        + f": {patient.full_name}"
    form = OrderForm(request.POST or None, initial=initial)
    if request.method != "POST":
        return _order_page(request, patient, form, title=title, order=old)
    if not form.is_valid():
        return _order_page(request, patient, form, title=title, status=400, order=old)
    try:
        preview = _preview(patient, form)
    except ProtocolError as exc:
        form.add_error(None, f"The dose cannot be computed: {exc}")
        return _order_page(request, patient, form, title=title, status=400, order=old)
    if request.POST.get("action") != "sign":
        return _order_page(request, patient, form, title=title, preview=preview, order=old)
    if request.POST.get("previewed") != dose_digest(preview):
        # Signed only as seen: not previewed, or the parameters or the weight changed since.
        form.add_error(None, "Check the computed dose below and sign again: the order was not previewed, "
                             "or the dose changed since it was shown.")
        return _order_page(request, patient, form, title=title, preview=preview, status=409, order=old)
    data = form.cleaned_data
    try:
        order = services.do_sign_order(
            actor=request.user, patient=patient, protocol_version=data["protocol_version"],
            sessions_ordered=data["sessions_ordered"], dose_parameters=form.dose_parameters(),
            password=data.get("password") or "", course_start=data.get("course_start"),
            phase=data.get("phase") or "", notes=data.get("notes") or "",
            reassessment_recorded=data.get("reassessment_recorded", False), supersedes=old,
            request=request, at=timezone.now())
    except ReauthFailed as exc:
        form.add_error("password", str(exc))
        return _order_page(request, patient, form, title=title, preview=preview, status=403,
                           order=old)
    except TreatmentNotAllowed as exc:
        form.add_error(None, str(exc))
        return _order_page(request, patient, form, title=title, preview=preview, status=409,
                           order=old)
    except OrderRefused as exc:
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, str(exc))
        return _order_page(request, patient, form, title=title, preview=preview, status=400,
                           order=old)
    messages.success(request, f"Order {order.pk} v{order.version} signed.")
    return redirect("protocols:order_detail", order.pk)


def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = get_object_or_404(TreatmentOrder.objects.select_related("patient", "protocol_version"),
                              pk=order_id)
    get_patient_for(request, order.patient_id, detail=f"order {order.pk}")
    from ketasafe.sessions.models import TreatmentSession

    versions = services.course_versions(order)
    sessions = TreatmentSession.objects.filter(order__in=versions).order_by("scheduled_at")
    preview, problem = None, ""
    if order.status == OrderStatus.SIGNED:
        dosed = sessions.exclude(dosing_started_at=None).count()
        try:
            preview = services.compute_order_dose(order, session_number=dosed + 1,
                                                  on=clinic_today()).as_dict()
        except ProtocolError as exc:
            problem = str(exc)
    return render(request, "protocols/order_detail.html", {
        "order": order, "current": services.current_version(order), "versions": versions,
        "preview": preview, "problem": problem, "sessions": sessions,
        "cancel_form": CancelOrderForm()})


@require_http_methods(["POST"])
def order_cancel(request: HttpRequest, order_id: int) -> HttpResponse:
    require_capability(request.user, "order_treatment")
    order = get_object_or_404(TreatmentOrder, pk=order_id)
    form = CancelOrderForm(request.POST)
    if form.is_valid():
        try:
            services.do_cancel_order(actor=request.user, order=order, request=request,
                                     reason=form.cleaned_data["reason"],
                                     password=form.cleaned_data["password"])
        except (OrderRefused, ReauthFailed) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Order {order.pk} cancelled.")
    else:
        messages.error(request, "Give a reason and your password to cancel an order.")
    return redirect("protocols:order_detail", order.pk)
