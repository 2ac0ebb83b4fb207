"""Alerts: raised from committed observations, acknowledged, resolved, escalated. All audited.

- ``evaluate_after_ingest`` / ``evaluate_session`` run from ``transaction.on_commit`` of the
  transaction that stored the observations (never before: an alert never points at data that
  was rolled back). They judge every reading that just arrived (late or backfilled ones too)
  and the latest value of its kinds against the session's thresholds (``thresholds_for``) and
  its pre-dose baseline (``baseline_for``). "Latest" ignores readings stamped more than
  ``FUTURE_SKEW`` ahead (flagged ``future_timestamp`` at ingest), so a monitor clock running
  ahead cannot hide later readings. A PID-3 patient mismatch on a chair raises ``DATA_CONFLICT``
  on that chair's session.
- At most one open alert per session and code (a unique constraint; a race loses quietly).
- Every reading judged is marked ``judged``; ``judge_pending`` (in the watch) judges those of a
  session in the chair that were left unjudged (a failed evaluation, a process stopped between
  commit and evaluation), so a failure delays an alert by seconds instead of losing it.
- ``run_watch(now)`` is the periodic part (the listener runs it every few seconds; ``ketasafe
  monitor_watch`` runs it on its own): late judging, escalation of alerts not acknowledged within
  ``ESCALATE_AFTER`` to the session's prescriber on site, and the stale-feed rule. Work is
  claimed with conditional updates (STYLE §8), so several watchers never double an escalation.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max, OuterRef, Q, Subquery
from django.http import HttpRequest
from django.utils import timezone

from ketasafe import audit
from ketasafe.accounts.access import has_capability
from ketasafe.sessions.models import SessionTransition, TreatmentSession
from ketasafe.sessions.state import IN_CHAIR

from .alert_rules import (
    DEFAULT_THRESHOLDS,
    STALE_FEED_STATES,
    AlertFinding,
    AlertThresholds,
    evaluate_vitals,
    is_feed_stale,
)
from .models import (
    OPEN_ALERT_STATUSES,
    PENDING_JUDGEMENT,
    STALE_FEED,
    Alert,
    AlertRuleSet,
    AlertStatus,
    Observation,
)

log = logging.getLogger("ketasafe.monitoring.alerts")

ESCALATE_AFTER = dt.timedelta(minutes=2)
# The watch judges a reading left unjudged once it is this old (its own evaluation runs at once,
# on commit), at most this many per session and pass (the rest on the next pass, seconds later).
JUDGE_PENDING_AFTER = dt.timedelta(seconds=15)
JUDGE_PENDING_BATCH = 2000
SYSTEM = "system:alerts"
# Sessions whose vitals are judged: the patient is in the chair (pre-dose readings count too).
JUDGED = IN_CHAIR


class AlertActionRefused(Exception):
    """An acknowledge/resolve that does not apply (already done, or the wrong state)."""


# --- thresholds and baseline -------------------------------------------------------------------

def plain(value: Decimal) -> Decimal:
    """120.0000 (as stored) -> 120, 80.5000 -> 80.5: for messages staff read."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _to_thresholds(rules: AlertRuleSet) -> AlertThresholds:
    return AlertThresholds(**{name: Decimal(getattr(rules, name)) for name in AlertRuleSet.THRESHOLD_FIELDS})


def thresholds_for(session: Any) -> AlertThresholds:
    """The rule set of the session's protocol version, else the clinic-wide one, else defaults."""
    version_id = None
    order = getattr(session, "order", None) if session is not None else None
    if order is not None:
        version_id = order.protocol_version_id
    candidates = {r.protocol_version_id: r for r in AlertRuleSet.objects.filter(
        Q(protocol_version_id=version_id) | Q(protocol_version=None))} if version_id else \
        {r.protocol_version_id: r for r in AlertRuleSet.objects.filter(protocol_version=None)}
    rules = candidates.get(version_id) or candidates.get(None)
    return _to_thresholds(rules) if rules else DEFAULT_THRESHOLDS


def baseline_for(session: Any) -> dict[str, Decimal]:
    """The session's pre-dose vitals: the last value of each kind observed before dosing began.
    Empty before dosing (no rise can be judged without a dose to rise from)."""
    start = session.dosing_started_at
    if start is None:
        return {}
    found: dict[str, Decimal] = {}
    qs = (Observation.objects.filter(session=session, observed_at__lt=start, kind__in=("systolic", "diastolic"))
          .exclude(value=None).order_by("-observed_at", "-id").values_list("kind", "value"))
    for kind, value in qs:
        if value is not None:
            found.setdefault(kind, plain(value))
        if len(found) == 2:
            break
    return found


# --- raising -----------------------------------------------------------------------------------

FUTURE_SKEW = dt.timedelta(minutes=5)
FUTURE_TIMESTAMP = "future_timestamp"  # observation flag: observed_at more than FUTURE_SKEW ahead of arrival
DATA_CONFLICT = "DATA_CONFLICT"
ALERT_CHECK_FAILED = "CHECK_FAILED"  # the watch could not judge a session's readings


def evaluate_after_ingest(sessions: Mapping[int, Iterable[str]],
                          new_messages: Mapping[int, Iterable[int]] | None = None,
                          conflicts: Mapping[int, Iterable[str]] | None = None) -> None:
    """on_commit callback of an ingest batch: judge each session that received new values.

    ``new_messages`` maps a session to the ids of the messages just stored for it: every
    reading of those messages is judged (late or backfilled readings, readings from a monitor
    whose clock runs behind), not only the newest per kind. ``conflicts`` maps a session in
    progress on a chair to what its chair sent for another registered patient (PID-3
    mismatch): it raises ``DATA_CONFLICT`` on that session."""
    new_messages = new_messages or {}
    for session_id, kinds in sessions.items():
        try:
            evaluate_session(session_id, kinds=set(kinds), message_ids=set(new_messages.get(session_id, ())))
        except Exception:  # noqa: BLE001 - one session's failure must not hide the others' alerts
            log.exception("alert evaluation failed for session %s", session_id)
    for session_id, mrns in (conflicts or {}).items():
        try:
            raise_data_conflict(session_id, sorted(set(mrns)))
        except Exception:  # noqa: BLE001
            log.exception("data-conflict alert failed for session %s", session_id)


def raise_data_conflict(session_id: int, mrns: list[str], now: dt.datetime | None = None) -> Alert | None:
    """The chair of this session sent data naming another registered patient (PID-3): the data
    was kept off the session; the nurse must check which patient the monitor is set up for."""
    now = now or timezone.now()
    session = (TreatmentSession.objects.select_related("chair", "patient").filter(pk=session_id).first())
    if session is None or session.status not in JUDGED:
        return None
    named = ", ".join(mrns) or "another patient"
    return _raise(session, None, None, now, code=DATA_CONFLICT,
                  message=f"Data from {session.chair or 'this chair'} names patient {named}, not the patient "
                          f"in the chair: kept off this session. Check the monitor's patient.")


def evaluate_session(session_id: int, *, kinds: set[str] | None = None,
                     now: dt.datetime | None = None, message_ids: Iterable[int] = (),
                     observation_ids: Iterable[int] = (), resolve_stale: bool = True) -> list[Alert]:
    """Judge the latest committed value of ``kinds`` (all kinds if None) for one session, and
    every new reading (of ``message_ids`` / ``observation_ids``) whatever its timestamp.
    "Latest" ignores readings stamped more than ``FUTURE_SKEW`` ahead of now (a monitor clock
    ahead must not hide later readings). Raises the alerts that fire and are not already open;
    resolves an open stale-feed alert (numerics arrived). Returns the alerts raised.

    A session no longer in the chair has only the given readings judged, each on its own: one
    stored while the patient was in the chair is judged even if the session ended before its
    evaluation ran (its alert is listed on the board with the sessions no longer in a chair).
    The readings are marked judged in the same transaction as their alerts: judged once, with
    their alerts, or not at all (then the watch judges them again)."""
    now = now or timezone.now()
    message_ids, observation_ids = set(message_ids), set(observation_ids)
    with transaction.atomic():
        # One evaluation of a session at a time, locking in the order every session action does
        # (the session, then rows, the audit chain last): two evaluations of one session (the
        # monitor's, a nurse's, the watch's) wait for each other instead of deadlocking on the
        # alerts they both raise, and the second sees what the first judged.
        session = (TreatmentSession.objects.select_for_update(of=("self",), no_key=True)
                   .select_related("order", "chair", "patient")
                   .only("id", "status", "dosing_started_at", "patient__id", "patient__mrn", "chair__id",
                         "chair__name", "order__id", "order__protocol_version_id")
                   .filter(pk=session_id).first())
        if session is None:
            return []
        in_chair = session.status in JUDGED
        readings = Observation.objects.filter(session=session).exclude(kind="").exclude(value=None)
        latest: dict[str, Observation] = {}
        if in_chair:
            recent = readings if kinds is None else readings.filter(kind__in=kinds)
            for obs in recent.filter(observed_at__lte=now + FUTURE_SKEW).order_by("-observed_at", "-id")[:50]:
                latest.setdefault(obs.kind, obs)
        new: list[Observation] = []
        if message_ids or observation_ids:
            # Not yet judged: a reading another evaluation judged meanwhile is not judged again.
            new = list(readings.filter(Q(message_id__in=message_ids) | Q(pk__in=observation_ids))
                       .filter(judged=False).order_by("id"))
        if not latest and not new:
            return []
        baseline = baseline_for(session)
        thresholds = thresholds_for(session)
        vitals = {kind: plain(obs.value) for kind, obs in latest.items() if obs.value is not None}
        judged: list[tuple[AlertFinding, Observation | None]] = [
            (f, latest.get(f.kind)) for f in evaluate_vitals(vitals, baseline, thresholds)]  # type: ignore[arg-type]
        start = session.dosing_started_at
        latest_ids = {o.pk for o in latest.values()}
        for obs in new:
            if obs.value is None or obs.pk in latest_ids:
                continue
            # A rise is judged only for a reading taken after dosing began.
            rise_base = baseline if start is not None and obs.observed_at >= start else {}
            reading: dict[Any, Decimal] = {obs.kind: plain(obs.value)}
            judged += [(f, obs) for f in evaluate_vitals(reading, rise_base, thresholds)]  # type: ignore[arg-type]
        # Marked in the same transaction as the alerts: judged once, with its alerts, or not at
        # all (then the watch judges it again).
        _mark_judged(Observation.objects.filter(pk__in=[o.pk for o in (*new, *latest.values())]), session_id)
        raised: list[Alert] = []
        done: set[str] = set()
        for finding, source in sorted(judged, key=lambda pair: pair[0].code):
            if finding.code in done:
                continue
            done.add(finding.code)
            _raise(session, finding, source, now, audit_later=raised)
        _audit_raised(raised, session)  # the audit chain last
    if in_chair and resolve_stale:
        _resolve_stale(session, now, "numerics arrived again")
    return raised


def _mark_judged(readings: Any, session_id: int) -> None:
    readings.filter(session_id=session_id, judged=False).update(judged=True)


def judge_pending(now: dt.datetime, *, session_id: int | None = None,
                  after: dt.timedelta = JUDGE_PENDING_AFTER) -> int:
    """The safety net of the on-commit evaluation: judge every reading the rules have not judged
    (its evaluation failed, or the process stopped after the commit: a monitor that then sends
    the message again gets AA for the stored copy, and nothing would judge it), whatever its
    session's state now. Readings stored less than ``after`` ago are left to their own
    evaluation, which normally runs within milliseconds (``session_id``/``after=0``: one
    session, at once, as discharge does). Each reading is judged on its own (the latest of its
    kind may be a newer reading whose alert a nurse has resolved), and a stale-feed alert is left
    to the stale-feed rule (a late reading is not news). Returns how many were judged."""
    pending = Observation.objects.filter(PENDING_JUDGEMENT).filter(created_at__lte=now - after)
    if session_id is not None:
        pending = pending.filter(session_id=session_id)
    done = 0
    # Per session, so that one session whose evaluation keeps failing cannot crowd out the others.
    for sid in pending.order_by("session_id").values_list("session_id", flat=True).distinct():
        ids = list(pending.filter(session_id=sid).order_by("id").values_list("id", flat=True)[:JUDGE_PENDING_BATCH])
        log.warning("judging %d reading(s) of session %s late: their evaluation did not run or failed", len(ids), sid)
        try:
            evaluate_session(sid, kinds=set(), now=now, observation_ids=ids, resolve_stale=False)
            done += len(ids)
        except Exception:  # noqa: BLE001 - one session's failure must not stop the others'
            log.exception("late alert evaluation failed for session %s", sid)
            _raise_check_failed(sid, len(ids), now)
    return done


def _raise_check_failed(session_id: int, count: int, now: dt.datetime) -> None:
    """The alert rules cannot judge this session's readings: say so on the board (the nurse
    watches the monitor itself), rather than only in a log nobody at the chair reads."""
    try:
        session = TreatmentSession.objects.select_related("chair", "patient").get(pk=session_id)
        _raise(session, None, None, now, code=ALERT_CHECK_FAILED,
               message=f"The alert check failed for {count} reading(s) of this session: watch the monitor "
                       "itself and record vitals by hand until this is resolved; report it to the clinic admin.")
    except Exception:  # noqa: BLE001 - the log above stays the record of last resort
        log.exception("could not raise the alert-check alert for session %s", session_id)


def _raise(session: Any, finding: AlertFinding | None, obs: Observation | None, now: dt.datetime, *,
           code: str | None = None, message: str | None = None,
           audit_later: list[Alert] | None = None) -> Alert | None:
    """Insert the alert unless one with its code is open; audited at once, or by the caller
    (``audit_later``, then ``_audit_raised``) so that the audit chain is its last lock."""
    code = code or (finding.code if finding else "")
    if Alert.objects.filter(session=session, code=code, status__in=OPEN_ALERT_STATUSES).exists():
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                session=session, chair=session.chair, patient=session.patient, code=code,
                kind=finding.kind if finding else "", value=finding.value if finding else None,
                threshold=finding.threshold if finding else None,
                baseline=finding.baseline if finding else None,
                message=(message or (finding.message if finding else code))[:300], observation=obs,
                raised_at=now)
            if audit_later is None:
                _audit_raised([alert], session)
    except IntegrityError:
        return None  # another writer raised the same alert first
    if audit_later is not None:
        audit_later.append(alert)
    return alert


def _audit_raised(raised: list[Alert], session: Any) -> None:
    for alert in raised:
        audit.record("create", actor=SYSTEM, patient=session.patient, obj=alert,
                     after={"code": alert.code, "message": alert.message, "session": session.pk,
                            "value": alert.value, "threshold": alert.threshold},
                     detail=f"alert raised: {alert.message}")


def _resolve_stale(session: Any, now: dt.datetime, why: str) -> None:
    for alert in Alert.objects.filter(session=session, code=STALE_FEED, status__in=OPEN_ALERT_STATUSES):
        _system_resolve(alert, now, why)


def _system_resolve(alert: Alert, now: dt.datetime, why: str,
                    statuses: Iterable[str] = OPEN_ALERT_STATUSES) -> bool:
    with transaction.atomic():
        claimed = Alert.objects.filter(pk=alert.pk, status__in=tuple(statuses)).update(
            status=AlertStatus.RESOLVED, resolved_at=now, resolution=why[:300])
        if claimed:
            audit.record("update", actor=SYSTEM, patient=alert.patient_id, obj=alert,
                         after={"status": "resolved", "resolution": why}, detail=f"alert {alert.code} resolved")
    return bool(claimed)


def lock_open_alerts(session: Any) -> list[Alert]:
    """Row-lock the session's open alerts (for a caller that will change them after writing
    audit entries: take this first, as every alert action takes the alert row before the audit
    chain)."""
    return list(Alert.objects.select_for_update(no_key=True)
                .filter(session=session, status__in=OPEN_ALERT_STATUSES).order_by("id"))


def resolve_acknowledged(session: Any, now: dt.datetime, why: str) -> int:
    """Resolve (as the system, audited) the session's alerts that someone acknowledged but nobody
    resolved; for a session that left the chair (discharge), whose alerts leave the chair board.
    A raised alert is never resolved here: nobody has seen it (discharge refuses it; one raised
    meanwhile stays on the board and escalates). Call it inside the caller's transaction.
    Returns how many were resolved."""
    done = 0
    for alert in Alert.objects.filter(session=session, status=AlertStatus.ACKNOWLEDGED).order_by("id"):
        done += _system_resolve(alert, now, why, statuses=(AlertStatus.ACKNOWLEDGED,))
    return done


# --- nurse actions -----------------------------------------------------------------------------

@transaction.atomic
def do_acknowledge(*, actor: Any, alert: Alert, request: HttpRequest | None = None,
                   now: dt.datetime | None = None) -> Alert:
    """Mark an alert seen by ``actor`` (who needs view_board). Only a raised alert can be
    acknowledged; the conditional update makes two nurses' clicks record the first one."""
    if not has_capability(actor, "view_board"):
        raise PermissionDenied("Your role does not allow acknowledging alerts.")
    now = now or timezone.now()
    claimed = Alert.objects.filter(pk=alert.pk, status=AlertStatus.RAISED).update(
        status=AlertStatus.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=actor)
    alert.refresh_from_db()
    if not claimed:
        raise AlertActionRefused(f"This alert is already {alert.status}.")
    audit.record("update", actor=actor, request=request, patient=alert.patient_id, obj=alert,
                 before={"status": "raised"}, after={"status": "acknowledged", "acknowledged_at": now},
                 detail=f"alert {alert.code} acknowledged")
    return alert


@transaction.atomic
def do_resolve(*, actor: Any, alert: Alert, note: str = "", request: HttpRequest | None = None,
               now: dt.datetime | None = None) -> Alert:
    """Close an acknowledged alert (an alert must be acknowledged before it is resolved, so the
    record always says who saw it)."""
    if not has_capability(actor, "view_board"):
        raise PermissionDenied("Your role does not allow resolving alerts.")
    now = now or timezone.now()
    claimed = Alert.objects.filter(pk=alert.pk, status=AlertStatus.ACKNOWLEDGED).update(
        status=AlertStatus.RESOLVED, resolved_at=now, resolved_by=actor, resolution=note[:300])
    alert.refresh_from_db()
    if not claimed:
        state = "still raised: acknowledge it first" if alert.status == AlertStatus.RAISED else "already resolved"
        raise AlertActionRefused(f"This alert is {state}.")
    audit.record("update", actor=actor, request=request, patient=alert.patient_id, obj=alert,
                 before={"status": "acknowledged"}, after={"status": "resolved", "note": note},
                 detail=f"alert {alert.code} resolved")
    return alert


# --- the periodic watch ------------------------------------------------------------------------

def escalate_due(now: dt.datetime) -> list[Alert]:
    """Escalate raised alerts older than ESCALATE_AFTER to the prescriber on site. Each alert is
    claimed with a conditional update, so it is escalated (and audited) exactly once."""
    done = []
    due = (Alert.objects.filter(status=AlertStatus.RAISED, escalated_at=None, raised_at__lte=now - ESCALATE_AFTER)
           .select_related("session"))
    for alert in due:
        prescriber_id = alert.session.prescriber_on_site_id
        with transaction.atomic():
            claimed = Alert.objects.filter(pk=alert.pk, status=AlertStatus.RAISED, escalated_at=None).update(
                escalated_at=now, escalated_to_id=prescriber_id)
            if not claimed:
                continue
            audit.record("update", actor=SYSTEM, patient=alert.patient_id, obj=alert,
                         after={"escalated_at": now, "escalated_to": prescriber_id},
                         detail=f"alert {alert.code} not acknowledged within 2 minutes: escalated to the "
                                f"prescriber on site" + ("" if prescriber_id else " (none recorded)"))
        alert.escalated_at, alert.escalated_to_id = now, prescriber_id
        done.append(alert)
    return done


def check_stale_feeds(now: dt.datetime) -> list[Alert]:
    """Raise STALE_FEED for a chair in dosing or monitoring with no numerics for the rule set's
    ``stale_after_s``; resolve stale alerts of sessions that left those states."""
    since = (SessionTransition.objects.filter(session=OuterRef("pk"), to_status=OuterRef("status"))
             .order_by("-at").values("at")[:1])
    sessions = (TreatmentSession.objects.filter(status__in=STALE_FEED_STATES, chair__isnull=False)
                .select_related("order", "chair", "patient")
                .annotate(last_numeric=Max("observations__created_at",
                                           filter=Q(observations__value__isnull=False)),
                          state_since=Subquery(since)))
    raised = []
    for session in sessions:
        state_since = session.state_since or session.dosing_started_at
        thresholds = thresholds_for(session)
        if is_feed_stale(session.last_numeric, now, session.status, thresholds, state_since=state_since):
            minutes = int(thresholds.stale_after_s) // 60
            alert = _raise(session, None, None, now, code=STALE_FEED,
                           message=f"No vital signs from {session.chair or 'the chair'} for {minutes} minutes "
                                   f"or more while in {session.status}")
            if alert:
                raised.append(alert)
    for alert in Alert.objects.filter(code=STALE_FEED, status__in=OPEN_ALERT_STATUSES).exclude(
            session__status__in=STALE_FEED_STATES):
        _system_resolve(alert, now, "the session left dosing/monitoring")
    return raised


def run_watch(now: dt.datetime | None = None) -> dict[str, int]:
    """One pass of the periodic work. Safe to run from several processes at once."""
    now = now or timezone.now()
    result = {}
    # Each part on its own: a failure of one must not stop the others (nor the watch).
    for name, part in (("judged_late", judge_pending), ("escalated", escalate_due), ("stale", check_stale_feeds)):
        try:
            done = part(now)
            result[name] = done if isinstance(done, int) else len(done)
        except Exception:  # noqa: BLE001
            log.exception("monitor watch: %s failed", name)
            result[name] = 0
    return result
