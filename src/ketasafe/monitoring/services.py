"""Storing and reading vital signs. Monitor ingest (process_message) builds on the same model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest

from ketasafe import audit

from .models import Observation, Source, VitalKind

# LOINC codes of the FHIR R4 vital-signs profiles (interop-and-anchors §3.2), and UCUM units.
KIND_LOINC_UNIT: dict[str, tuple[str, str]] = {
    VitalKind.SYSTOLIC: ("8480-6", "mm[Hg]"),
    VitalKind.DIASTOLIC: ("8462-4", "mm[Hg]"),
    VitalKind.MAP: ("8478-0", "mm[Hg]"),
    VitalKind.HEART_RATE: ("8867-4", "/min"),
    VitalKind.PULSE_RATE: ("8889-8", "/min"),
    VitalKind.SPO2: ("59408-5", "%"),
    VitalKind.RESP_RATE: ("9279-1", "/min"),
    VitalKind.TEMPERATURE: ("8310-5", "Cel"),
    VitalKind.WEIGHT: ("29463-7", "kg"),
}

# Plausible ranges for hand entry (the same as the screening contract's intake validation).
MANUAL_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    VitalKind.SYSTOLIC: (Decimal(50), Decimal(300)),
    VitalKind.DIASTOLIC: (Decimal(20), Decimal(200)),
    VitalKind.HEART_RATE: (Decimal(20), Decimal(250)),
    VitalKind.SPO2: (Decimal(50), Decimal(100)),
    VitalKind.RESP_RATE: (Decimal(2), Decimal(60)),
    VitalKind.TEMPERATURE: (Decimal(30), Decimal(45)),
}


class VitalsInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@transaction.atomic
def do_record_manual_vitals(*, actor: Any, session: Any = None, patient: Any = None,
                            values: Mapping[str, Decimal | int | None], observed_at: dt.datetime,
                            request: HttpRequest | None = None) -> list[Observation]:
    """Store hand-entered vitals for a session (or a patient outside a session).

    All values are validated before anything is stored: one bad value stores none.
    """
    patient = patient or (session.patient if session is not None else None)
    clean: dict[str, Decimal] = {}
    for kind, value in values.items():
        if value is None or value == "":
            continue
        if kind not in MANUAL_RANGES:
            raise VitalsInvalid(kind, "not a vital sign that can be entered by hand")
        low, high = MANUAL_RANGES[kind]
        number = Decimal(str(value))
        if not low <= number <= high:
            raise VitalsInvalid(kind, f"{number} is outside {low}-{high}")
        clean[kind] = number
    if not clean:
        raise VitalsInvalid("vitals", "enter at least one value")
    observations = []
    for kind, number in clean.items():
        loinc, unit = KIND_LOINC_UNIT[kind]
        observations.append(Observation.objects.create(
            session=session, patient=patient, kind=kind, loinc=loinc, value=number, unit=unit,
            observed_at=observed_at, source=Source.MANUAL, recorded_by=actor))
    audit.record("create", actor=actor, request=request, patient=patient,
                 object_type="monitoring.Observation",
                 object_id=",".join(str(o.pk) for o in observations),
                 after={k: v for k, v in clean.items()} | {"observed_at": observed_at})
    _after_commit(session, set(clean), [o.pk for o in observations])
    return observations


def _after_commit(session: Any, kinds: set[str] | None = None, observation_ids: list[int] | None = None) -> None:
    """Judge the new values for alerts once (and only if) the caller's transaction commits."""
    if session is None:
        return
    session_id = session.pk

    def evaluate() -> None:
        from .alerts import evaluate_session

        evaluate_session(session_id, kinds=kinds, observation_ids=observation_ids or ())

    transaction.on_commit(evaluate, robust=True)


def latest_vitals(session: Any, *, since: dt.datetime | None = None) -> dict[str, Observation]:
    """The newest value of each kind for a session (optionally only those observed since)."""
    qs = Observation.objects.filter(session=session).exclude(kind="").exclude(value=None)
    if since is not None:
        qs = qs.filter(observed_at__gte=since)
    latest: dict[str, Observation] = {}
    for obs in qs.order_by("-observed_at", "-id"):
        latest.setdefault(obs.kind, obs)
    return latest


def vitals_series(session: Any, kinds: tuple[str, ...] = ()) -> list[Observation]:
    qs = Observation.objects.filter(session=session).exclude(kind="").exclude(value=None)
    if kinds:
        qs = qs.filter(kind__in=kinds)
    return list(qs.order_by("observed_at", "id"))


@transaction.atomic
def do_assign_observations(*, actor: Any, message: Any, session: Any,
                           request: HttpRequest | None = None) -> int:
    """Give a session the unassigned observations of one inbound message (a nurse's decision
    when the monitor's data matched no session). Observations that already belong to a session,
    or to another patient than the session's, are never moved. Returns the number assigned; audited."""
    from ketasafe.accounts.access import require_capability
    from ketasafe.sessions.models import TreatmentSession

    from .ingest import IN_CHAIR

    require_capability(actor, "run_sessions")
    # Locked and checked here, not only by the view's choices: the session may have ended since
    # the page was shown, and data must never go to a session no longer in the chair.
    session = TreatmentSession.objects.select_for_update().select_related("patient").get(pk=session.pk)
    if session.status not in IN_CHAIR:
        raise PermissionDenied("Monitor data can only be given to a session in progress in a chair.")
    # Data already tied to a patient (by PID-3) only ever goes to that patient's session.
    qs = Observation.objects.select_for_update().filter(
        Q(patient=None) | Q(patient=session.patient), message=message, session=None)
    ids = list(qs.values_list("id", flat=True))
    if not ids:
        return 0
    Observation.objects.filter(id__in=ids).update(session=session, patient=session.patient)
    audit.record("update", actor=actor, request=request, patient=session.patient,
                 object_type="monitoring.InboundMessage", object_id=message.pk,
                 after={"session": session.pk, "observations": ids},
                 detail="unassigned monitor data assigned to a session")
    _after_commit(session, observation_ids=ids)  # every assigned reading is judged, not only the newest
    return len(ids)


@transaction.atomic
def do_save_alert_rules(*, actor: Any, instance: Any, request: HttpRequest | None = None) -> Any:
    """Save a validated AlertRuleSet (from AlertRuleSetForm), audited with before/after."""
    from .models import AlertRuleSet

    fields = ("protocol_version", *AlertRuleSet.THRESHOLD_FIELDS)
    before = None
    if instance.pk:
        old = AlertRuleSet.objects.select_for_update().get(pk=instance.pk)
        before = {f: getattr(old, f) for f in fields}
    instance.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    instance.save()
    audit.record("update" if before else "create", actor=actor, request=request, obj=instance,
                 before=before, after={f: getattr(instance, f) for f in fields}, detail="alert rules")
    return instance
