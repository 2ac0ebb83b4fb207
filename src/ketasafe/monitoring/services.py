"""Storing and reading vital signs. Monitor ingest (process_message) builds on the same model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from ketasafe import audit
from ketasafe.lib.timeutil import clinic_tz

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

# Unassigned monitor data may be given to a session only if it was taken at most this long before
# the session's check-in: the monitor is often put on while the patient settles, just before the
# check-in is recorded; anything older belongs to someone or something else (yesterday's data).
ASSIGN_BEFORE_CHECK_IN = dt.timedelta(minutes=10)

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
                           request: HttpRequest | None = None, now: dt.datetime | None = None) -> int:
    """Give a session the unassigned observations of one inbound message (a nurse's decision
    when the monitor's data matched no session). Observations that already belong to a session,
    or to another patient than the session's, are never moved. Every one to move must have been
    taken during this session: from ``ASSIGN_BEFORE_CHECK_IN`` before its check-in to
    ``FUTURE_SKEW`` after ``now``; otherwise PermissionDenied and nothing moves. Returns the
    number assigned; audited."""
    from ketasafe.accounts.access import require_capability
    from ketasafe.sessions.models import TreatmentSession

    from .alerts import FUTURE_SKEW
    from .ingest import IN_CHAIR

    require_capability(actor, "run_sessions")
    now = now or timezone.now()
    # Locked and checked here, not only by the view's choices: the session may have ended since
    # the page was shown, and data must never go to a session no longer in the chair.
    session = (TreatmentSession.objects.select_for_update(of=("self",), no_key=True).select_related("patient")
               .get(pk=session.pk))
    if session.status not in IN_CHAIR:
        raise PermissionDenied("Monitor data can only be given to a session in progress in a chair.")
    # Data already tied to a patient (by PID-3) only ever goes to that patient's session.
    qs = Observation.objects.select_for_update(no_key=True).filter(
        Q(patient=None) | Q(patient=session.patient), message=message, session=None)
    rows = list(qs.values_list("id", "observed_at"))
    if not rows:
        return 0
    # Readings from before this session (yesterday's, another patient's earlier session) would
    # raise alerts and enter this session's chart as if they were today's.
    if session.checked_in_at is None:
        raise PermissionDenied("This session has no check-in time, so the data cannot be shown to belong to it.")
    earliest = session.checked_in_at - ASSIGN_BEFORE_CHECK_IN
    latest = now + FUTURE_SKEW
    outside = sorted(at for _id, at in rows if not earliest <= at <= latest)
    if outside:
        tz = clinic_tz()
        taken = _when(outside[0], tz) + (f" to {_when(outside[-1], tz)}" if outside[-1] != outside[0] else "")
        raise PermissionDenied(
            f"{len(outside)} of the {len(rows)} readings of this message were taken {taken}, outside this "
            f"session (from {_when(earliest, tz)}, {_minutes(ASSIGN_BEFORE_CHECK_IN)} min before its check-in, "
            f"to {_when(latest, tz)}): nothing was assigned. If the monitor's clock is wrong, correct "
            "it and enter this session's vitals by hand.")
    ids = [pk for pk, _at in rows]
    Observation.objects.filter(id__in=ids).update(session=session, patient=session.patient)
    audit.record("update", actor=actor, request=request, patient=session.patient,
                 object_type="monitoring.InboundMessage", object_id=message.pk,
                 after={"session": session.pk, "observations": ids},
                 detail="unassigned monitor data assigned to a session")
    _after_commit(session, observation_ids=ids)  # every assigned reading is judged, not only the newest
    return len(ids)


def _when(at: dt.datetime, tz: dt.tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def _minutes(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 60)


@transaction.atomic
def do_save_alert_rules(*, actor: Any, instance: Any, request: HttpRequest | None = None) -> Any:
    """Save an AlertRuleSet (from AlertRuleSetForm or any other caller), audited with before/after.

    Validated here whoever the caller is (``full_clean``: the sanity bounds of
    ``AlertRuleSet.clean``, one rule set per protocol version, one clinic-wide set). A save that
    loses a race with another save of the same set (both validated before either was stored)
    meets the database constraint: it is turned into the same ValidationError. On any
    ValidationError nothing is saved or audited."""
    from .models import CLINIC_WIDE_EXISTS, PROTOCOL_RULES_EXIST, AlertRuleSet

    fields = ("protocol_version", *AlertRuleSet.THRESHOLD_FIELDS)
    before = None
    if instance.pk:
        old = AlertRuleSet.objects.select_for_update(no_key=True).get(pk=instance.pk)
        before = {f: getattr(old, f) for f in fields}
    instance.full_clean()
    instance.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    try:
        with transaction.atomic():  # a savepoint: the transaction stays usable after a violation
            instance.save()
    except IntegrityError:
        same_set = AlertRuleSet.objects.filter(protocol_version=instance.protocol_version_id)
        if instance.pk is not None:
            same_set = same_set.exclude(pk=instance.pk)
        if not same_set.exists():
            raise  # not the race this guards against: a real fault, not the user's input
        raise ValidationError({"protocol_version": CLINIC_WIDE_EXISTS if instance.protocol_version_id is None
                               else PROTOCOL_RULES_EXIST}) from None
    audit.record("update" if before else "create", actor=actor, request=request, obj=instance,
                 before=before, after={f: getattr(instance, f) for f in fields}, detail="alert rules")
    return instance
