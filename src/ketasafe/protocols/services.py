"""Protocol versions a clinic uses, and signed treatment orders (STYLE §3: every change is a
``do_*`` function, atomic, with its audit entry in the same transaction).

Guarantees:
- A ProtocolVersion's definition is always the shipped one with its ``changes`` applied by the
  pure ``ProtocolDefinition.derive``, so no stored version can step outside the hard limits.
- An order is signed only by a user with ``order_treatment`` who typed their password again,
  for a patient ``treatment_allowed`` says yes for, with dose parameters ``compute_dose``
  accepts. A changed order is a new row that supersedes the old one; nothing signed is edited.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ketasafe import audit
from ketasafe.accounts.access import has_capability
from ketasafe.lib.timeutil import clinic_tz
from ketasafe.patients.models import Measurement, Patient
from ketasafe.patients.services import lock_patient

from .definitions import SHIPPED_PROTOCOLS, SHIPPED_VERSION, ProtocolDefinition, get_protocol
from .dosing import DoseResult, compute_dose
from .errors import OrderRefused, TreatmentNotAllowed
from .exceptions import ProtocolError, ProtocolLimitError
from .models import OrderStatus, ProtocolVersion, TreatmentOrder
from .reauth import verify_password

# Dose parameters an order may carry, by protocol kind (the keyword names of compute_dose).
IV_DOSE_KEYS = ("mg_per_kg", "mg_per_kg_per_h", "concentration_mg_per_ml", "final_volume_ml",
                "duration_min")
ESKETAMINE_DOSE_KEYS = ("dose_mg",)


# --- protocol versions --------------------------------------------------------------------------

def ensure_shipped_versions() -> list[ProtocolVersion]:
    """One ProtocolVersion row per shipped protocol, labelled with the shipped version (the data
    migration creates them; this repairs a database that lost one)."""
    rows = []
    for protocol_id in sorted(SHIPPED_PROTOCOLS):
        row, _ = ProtocolVersion.objects.get_or_create(
            protocol_id=protocol_id, label=SHIPPED_VERSION, defaults={"changes": {}})
        rows.append(row)
    return rows


def definition_for(version: ProtocolVersion) -> ProtocolDefinition:
    """The pure definition a stored version stands for (validated again on every read)."""
    shipped = get_protocol(version.protocol_id)
    if not version.changes:
        return shipped
    return shipped.derive(version.label, **dict(version.changes))


def parse_changes(text: str) -> dict[str, Any]:
    """``setting = value`` lines (``#`` comments allowed) into derive() keyword arguments; a
    comma-separated value is a list (``allowed_doses_mg = 56``, ``concentrations_mg_per_ml =
    10, 50``). Raises ProtocolLimitError naming the line for anything else."""
    changes: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep or not key or not value:
            raise ProtocolLimitError(f"line {number}: write 'setting = value'", setting="changes")
        if key in changes:
            raise ProtocolLimitError(f"line {number}: {key} is given twice", setting=key)
        if "," in value:
            changes[key] = [v.strip() for v in value.split(",") if v.strip()]
        elif value.lower() in ("none", "null"):
            changes[key] = None
        else:
            changes[key] = value
    return changes


@transaction.atomic
def do_create_protocol_version(*, actor: Any, protocol_id: str, label: str, changes: dict[str, Any],
                               request: HttpRequest | None = None) -> ProtocolVersion:
    """A clinic version of a shipped protocol. Raises ProtocolError (naming the setting) if the
    changes leave the shipped hard limits, OrderRefused if the label is taken."""
    label = label.strip()
    shipped = get_protocol(protocol_id)
    if not changes:
        raise ProtocolLimitError("a clinic version must change at least one setting",
                                 setting="changes")
    definition = shipped.derive(label, **changes)  # raises ProtocolLimitError
    if label == SHIPPED_VERSION or ProtocolVersion.objects.filter(
            protocol_id=protocol_id, label=label).exists():
        raise OrderRefused(f"{protocol_id} already has a version labelled {label!r}", field="label")
    stored = {k: _jsonable(v) for k, v in changes.items()}
    version = ProtocolVersion.objects.create(protocol_id=protocol_id, label=label, changes=stored,
                                             created_by=actor)
    audit.record("create", actor=actor, request=request, obj=version,
                 after={"protocol_id": protocol_id, "label": label, "changes": stored,
                        "title": definition.title})
    return version


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


# --- orders -------------------------------------------------------------------------------------

def dated_weight(patient: Patient, on: dt.date) -> Measurement | None:
    """The weight measured on or before ``on``: doses are computed from it, never typed."""
    return patient.latest_measurement(on=on)


def dose_kwargs(definition: ProtocolDefinition, dose_parameters: dict[str, Any], *,
                session_number: int, weight_kg: Decimal | None) -> dict[str, Any]:
    """compute_dose keyword arguments for one session of an order."""
    if definition.kind == "esketamine":
        assert definition.esketamine is not None
        # facts 1.3: session 1 has its own dose (TRD 56 mg, MDSI 84 mg); the order's dose is
        # for the sessions after it.
        dose = (definition.esketamine.session_1_dose_mg if session_number == 1
                else dose_parameters.get("dose_mg") or definition.esketamine.dose_mg_default)
        kwargs: dict[str, Any] = {"session": session_number, "dose_mg": dose}
        if weight_kg is not None:
            kwargs["weight_kg"] = weight_kg
        return kwargs
    kwargs = {k: v for k, v in dose_parameters.items() if k in IV_DOSE_KEYS and v not in (None, "")}
    kwargs["weight_kg"] = weight_kg
    return kwargs


def compute_order_dose(order: TreatmentOrder, *, session_number: int, on: dt.date) -> DoseResult:
    """The dose of session ``session_number`` of this order, from the weight dated on or before
    ``on``. Raises ProtocolError (a DoseInputError names the option) when it cannot be computed,
    e.g. no weight recorded for an IV protocol."""
    definition = definition_for(order.protocol_version)
    measurement = dated_weight(order.patient, on)
    weight = measurement.weight_kg if measurement is not None else None
    return compute_dose(definition, **dose_kwargs(definition, order.dose_parameters,
                                                  session_number=session_number, weight_kg=weight))


def preview_dose(*, patient: Patient, version: ProtocolVersion, dose_parameters: dict[str, Any],
                 on: dt.date, session_number: int = 1) -> tuple[DoseResult, Measurement | None]:
    """The computed dose a prescriber sees before signing; raises ProtocolError."""
    definition = definition_for(version)
    measurement = dated_weight(patient, on)
    weight = measurement.weight_kg if measurement is not None else None
    result = compute_dose(definition, **dose_kwargs(definition, dose_parameters,
                                                    session_number=session_number, weight_kg=weight))
    return result, measurement


def course_versions(order: TreatmentOrder) -> QuerySet[TreatmentOrder]:
    root = order.course_root_id
    return TreatmentOrder.objects.filter(Q(pk=root) | Q(root_id=root)).order_by("version")


def current_version(order: TreatmentOrder, *, lock: bool = False) -> TreatmentOrder | None:
    """The signed version of this order's course, or None when the course was cancelled
    (``lock``: row-locked until the caller's transaction ends)."""
    signed = course_versions(order).filter(status=OrderStatus.SIGNED)
    return (signed.select_for_update(no_key=True) if lock else signed).order_by("-version").first()


def signed_orders(patient: Patient) -> QuerySet[TreatmentOrder]:
    return TreatmentOrder.objects.filter(patient=patient, status=OrderStatus.SIGNED) \
        .select_related("protocol_version")


def _gate(patient: Patient, protocol_id: str, at: dt.datetime) -> Any:
    # Looked up on the module each call, so tests can stand in for the consent work.
    from ketasafe.consent import gate

    return gate.treatment_allowed(patient, protocol_id, at)


def open_courses(patient: Patient, *, besides: TreatmentOrder | None = None) -> list[TreatmentOrder]:
    """The patient's signed course orders that can still give sessions (or have one running),
    other than the course of ``besides``. A course whose ordered sessions are all used and
    ended is complete: it no longer counts (a new version would reopen it, and is refused while
    another course is open)."""
    from ketasafe.sessions.models import TreatmentSession
    from ketasafe.sessions.state import ACTIVE, Status

    root = besides.course_root_id if besides is not None else None
    found = []
    for order in signed_orders(patient):
        if root is not None and order.course_root_id == root:
            continue
        sessions = TreatmentSession.objects.filter(
            Q(order_id=order.course_root_id) | Q(order__root_id=order.course_root_id)
        ).exclude(status=Status.CANCELLED)
        used = sessions.count()
        running = sessions.filter(status__in=[s.value for s in ACTIVE]).exists()
        if used < order.sessions_ordered or running:
            found.append(order)
    return found


def _refusals_audited(func: Any) -> Any:
    """Audit a refused signing (OrderRefused, TreatmentNotAllowed) as ``refused``; a wrong
    password is audited by the re-authentication itself."""
    from functools import wraps

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OrderRefused as exc:
            patient = kwargs.get("patient")
            audit.record("refused", actor=kwargs.get("actor"), request=kwargs.get("request"),
                         patient=patient, object_type="protocols.TreatmentOrder",
                         object_id=getattr(kwargs.get("supersedes"), "pk", "") or "",
                         detail=f"{func.__name__}: {exc}"[:500])
            raise

    return wrapper


@_refusals_audited
def do_sign_order(*, actor: Any, patient: Patient, protocol_version: ProtocolVersion,
                  sessions_ordered: int, dose_parameters: dict[str, Any], password: str,
                  course_start: dt.date | None = None, phase: str = "", notes: str = "",
                  reassessment_recorded: bool = False, supersedes: TreatmentOrder | None = None,
                  request: HttpRequest | None = None, at: dt.datetime | None = None) -> TreatmentOrder:
    """Sign a course order (or a new version of one, when ``supersedes`` is given).

    Refuses (nothing stored) with ReauthFailed for a wrong password; OrderRefused for a role
    without ``order_treatment``, a superseded or cancelled order, bad dose parameters, a phase
    the protocol does not have, or a count out of range; TreatmentNotAllowed when the consent
    gate says no. The password is checked first and outside the transaction, so failures are
    counted towards lockout.
    """
    at = at or timezone.now()
    if not has_capability(actor, "order_treatment"):
        raise OrderRefused("Only a prescriber can sign a treatment order.")
    verify_password(actor, password, request)
    definition = definition_for(protocol_version)
    if not protocol_version.active and supersedes is None:
        raise OrderRefused(f"{protocol_version} is no longer active", field="protocol_version")
    if not 1 <= sessions_ordered <= 100:
        raise OrderRefused("sessions ordered must be 1 to 100", field="sessions_ordered")
    phases = [p.code for p in definition.course.phases]
    phase = phase or phases[0]
    if phase not in phases:
        raise OrderRefused(f"{phase!r} is not a phase of {definition.id} ({', '.join(phases)})",
                           field="phase")
    keys = ESKETAMINE_DOSE_KEYS if definition.kind == "esketamine" else IV_DOSE_KEYS
    unknown = sorted(set(dose_parameters) - set(keys))
    if unknown:
        raise OrderRefused(f"{', '.join(unknown)} does not apply to {definition.id}")
    params = {k: str(v) for k, v in dose_parameters.items() if v not in (None, "")}
    gate = _gate(patient, definition.id, at)
    if not gate.allowed:
        raise TreatmentNotAllowed(
            "Treatment is not allowed for this patient yet: "
            + "; ".join(p.message for p in gate.missing), gate.missing)
    # The dose must compute now, from the weight dated on or before the clinic's today.
    on = at.astimezone(clinic_tz()).date()
    try:
        first, measurement = preview_dose(patient=patient, version=protocol_version,
                                          dose_parameters=params, on=on, session_number=1)
        later, _ = preview_dose(patient=patient, version=protocol_version, dose_parameters=params,
                                on=on, session_number=2)
    except ProtocolError as exc:
        raise OrderRefused(str(exc), field=getattr(exc, "option", None)) from exc
    preview = {"session_1": first.as_dict(), "later_sessions": later.as_dict(),
               "weight_measured_on": measurement.measured_on.isoformat() if measurement else None}

    with transaction.atomic():
        # One course at a time per patient: two open courses could dose the patient twice in a
        # day. Change the open course (a new version) or cancel it first.
        lock_patient(patient.pk)
        other = open_courses(patient, besides=supersedes)
        if other:
            o = other[0]
            raise OrderRefused(
                f"{patient} already has an open course: order {o.pk} v{o.version} "
                f"({o.protocol_version.protocol_id}, {o.sessions_ordered} sessions). Change that "
                "order (a new version) or cancel it before ordering a new course.")
        version = 1
        root = None
        if supersedes is not None:
            old = TreatmentOrder.objects.select_for_update(no_key=True).get(pk=supersedes.pk)
            if old.status != OrderStatus.SIGNED:
                raise OrderRefused(f"Order {old.pk} v{old.version} is {old.status}: change the "
                                   "current version of the course.")
            if old.patient_id != patient.pk:
                raise OrderRefused("An order can only be changed for its own patient.")
            if get_protocol(old.protocol_version.protocol_id).kind != definition.kind:
                raise OrderRefused("A changed order keeps the kind of treatment "
                                   "(esketamine or IV); cancel it and order a new course.")
            version, root = old.version + 1, old.root or old
            course_start = old.course_start  # a course keeps its start (weeks and phases)
            TreatmentOrder.objects.filter(pk=old.pk).update(status=OrderStatus.SUPERSEDED)
            audit.record("update", actor=actor, request=request, patient=patient, obj=old,
                         before={"status": OrderStatus.SIGNED},
                         after={"status": OrderStatus.SUPERSEDED})
        order = TreatmentOrder.objects.create(
            patient=patient, protocol_version=protocol_version,
            course_start=course_start or at.astimezone(clinic_tz()).date(), sessions_ordered=sessions_ordered,
            dose_parameters=params, phase=phase, status=OrderStatus.SIGNED, version=version,
            supersedes=supersedes, root=root, signed_by=actor, signed_at=at, notes=notes,
            reassessment_recorded_at=(at if reassessment_recorded else
                                      (supersedes.reassessment_recorded_at if supersedes else None)),
            signature_method="password", signed_dose_preview=preview)
        audit.record("create", actor=actor, request=request, patient=patient, obj=order,
                     after={"protocol": str(protocol_version), "version": version,
                            "sessions_ordered": sessions_ordered, "phase": phase,
                            "dose_parameters": params, "dose_preview": preview,
                            "supersedes": supersedes.pk if supersedes else None},
                     detail="order signed with password re-authentication")
    return order


def do_cancel_order(*, actor: Any, order: TreatmentOrder, reason: str, password: str,
                    request: HttpRequest | None = None) -> TreatmentOrder:
    """Cancel the signed version of a course (no further sessions can pass pre-checks)."""
    if not has_capability(actor, "order_treatment"):
        raise OrderRefused("Only a prescriber can cancel a treatment order.")
    if not reason.strip():
        raise OrderRefused("Give a reason for cancelling the order.", field="reason")
    verify_password(actor, password, request)  # outside the transaction: failures count
    with transaction.atomic():
        locked = TreatmentOrder.objects.select_for_update(no_key=True).get(pk=order.pk)
        if locked.status != OrderStatus.SIGNED:
            raise OrderRefused(f"Order {locked.pk} is {locked.status} already.")
        note = (locked.notes + "\n" if locked.notes else "") + f"Cancelled: {reason.strip()}"
        TreatmentOrder.objects.filter(pk=locked.pk).update(status=OrderStatus.CANCELLED, notes=note)
        audit.record("update", actor=actor, request=request, patient=locked.patient, obj=locked,
                     before={"status": OrderStatus.SIGNED}, after={"status": OrderStatus.CANCELLED},
                     detail=reason.strip()[:400])
    locked.refresh_from_db()
    return locked
