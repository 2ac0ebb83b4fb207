"""What the chair board shows, read in a fixed number of queries whatever the number of chairs
(chairs, sessions in progress, the last two values of each vital per session, open alerts).

Every open alert is on the board: on its session's chair, or, for a session no longer in a chair
(aborted, cancelled, discharged while an alert was being raised, or in progress without an
active chair), in a list of its own below the chairs. An alert that still escalates must never
be off the board."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from ketasafe.protocols.services import definition_for
from ketasafe.sessions.checks import schedule_for
from ketasafe.sessions.models import Chair, MonitoringCheck, TreatmentSession
from ketasafe.sessions.rules import DueCheck

from .alerts import FUTURE_SKEW
from .ingest import IN_CHAIR
from .models import OPEN_ALERT_STATUSES, Alert, Observation

BOARD_KINDS = ("systolic", "diastolic", "heart_rate", "pulse_rate", "spo2", "resp_rate")
# A change smaller than this is shown as steady (→): monitor noise is not a trend.
TREND_STEP = {"systolic": 5, "diastolic": 4, "heart_rate": 5, "pulse_rate": 5, "spo2": 2, "resp_rate": 2}
# A reading older than this is shown greyed: the feed may have stopped.
OLD_AFTER = dt.timedelta(minutes=3)


@dataclass
class Reading:
    value: Decimal
    at: dt.datetime
    trend: str = "→"

    @property
    def shown(self) -> str:
        return f"{self.value.normalize():f}"


@dataclass
class ChairRow:
    chair: Chair
    session: TreatmentSession | None = None
    elapsed_min: int | None = None
    vitals: dict[str, Reading] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    last_at: dt.datetime | None = None
    stale: bool = False
    next_check: DueCheck | None = None
    next_check_state: str = ""  # "overdue", "due" or "upcoming"

    @property
    def bp(self) -> str:
        s, d = self.vitals.get("systolic"), self.vitals.get("diastolic")
        if s is None and d is None:
            return "–"
        return f"{s.shown if s else '–'}/{d.shown if d else '–'}"

    @property
    def rate(self) -> Reading | None:
        return self.vitals.get("heart_rate") or self.vitals.get("pulse_rate")

    @property
    def has_escalated(self) -> bool:
        return any(a.escalated_at for a in self.alerts if a.status == "raised")


def _trend(kind: str, new: Decimal, old: Decimal | None) -> str:
    if old is None:
        return "→"
    step = TREND_STEP.get(kind, 1)
    if new - old >= step:
        return "↑"
    if old - new >= step:
        return "↓"
    return "→"


@dataclass
class Board:
    rows: list[ChairRow]
    # Open alerts of sessions shown on no chair, oldest first, with their session and patient.
    elsewhere: list[Alert] = field(default_factory=list)

    @property
    def elsewhere_escalated(self) -> bool:
        return any(a.escalated_at for a in self.elsewhere if a.status == "raised")


def read_board(now: dt.datetime) -> Board:
    """One row per active chair, and the open alerts of sessions on none of them."""
    chairs = list(Chair.objects.filter(active=True).order_by("name"))
    rows = {c.pk: ChairRow(chair=c) for c in chairs}
    sessions = (TreatmentSession.objects.filter(chair__in=chairs, status__in=IN_CHAIR)
                .select_related("patient", "order__protocol_version", "administration")
                .order_by("checked_in_at", "id"))
    by_session: dict[int, ChairRow] = {}
    for session in sessions:
        row = rows[session.chair_id]  # type: ignore[index]
        row.session = session  # the latest check-in wins if a chair has two (should not happen)
        start = session.dosing_started_at or session.checked_in_at
        row.elapsed_min = int((now - start).total_seconds() // 60) if start else None
        by_session[session.pk] = row
    if by_session:
        # As the alerts do: a reading stamped ahead by a monitor clock is not "the latest".
        latest = (Observation.objects.filter(session_id__in=list(by_session), kind__in=BOARD_KINDS,
                                             observed_at__lte=now + FUTURE_SKEW)
                  .exclude(value=None)
                  .annotate(rn=Window(RowNumber(), partition_by=[F("session_id"), F("kind")],
                                      order_by=[F("observed_at").desc(), F("id").desc()]))
                  .filter(rn__lte=2).values_list("session_id", "kind", "value", "observed_at", "rn"))
        pairs: dict[tuple[int, str], dict[int, tuple[Decimal, dt.datetime]]] = defaultdict(dict)
        for session_id, kind, value, at, rn in latest:
            if value is not None:
                pairs[(session_id, kind)][rn] = (value, at)
        for (session_id, kind), found in pairs.items():
            if 1 not in found:
                continue
            row = by_session[session_id]
            value, at = found[1]
            previous = found.get(2)
            row.vitals[kind] = Reading(value, at, _trend(kind, value, previous[0] if previous else None))
            row.last_at = max(row.last_at, at) if row.last_at else at
        for row in by_session.values():
            row.stale = row.last_at is not None and now - row.last_at > OLD_AFTER
        _next_checks(by_session, now)
    # Every open alert in one query (open alerts are few: each is acted on within minutes);
    # those of a session on no chair are listed apart, never dropped.
    board = Board(list(rows.values()))
    alerts = (Alert.objects.filter(status__in=OPEN_ALERT_STATUSES)
              .select_related("acknowledged_by", "escalated_to", "session", "patient", "chair")
              .order_by("raised_at", "id"))
    for alert in alerts:
        if alert.session_id in by_session:
            by_session[alert.session_id].alerts.append(alert)
        else:
            board.elsewhere.append(alert)
    return board


def _next_checks(by_session: dict[int, ChairRow], now: dt.datetime) -> None:
    """Each session's next scheduled check, in one query for all sessions. The schedule comes
    from the session's own order version (a board is a display, not a gate: the session page
    and its gates use the course's current order version)."""
    done: dict[int, set[str]] = defaultdict(set)
    for session_id, code in MonitoringCheck.objects.filter(session_id__in=list(by_session)).values_list(
            "session_id", "code"):
        done[session_id].add(code)
    definitions: dict[int, Any] = {}
    for session_id, row in by_session.items():
        session = row.session
        assert session is not None
        version = session.order.protocol_version
        if version.pk not in definitions:
            definitions[version.pk] = definition_for(version)
        schedule = schedule_for(session, now, definition=definitions[version.pk], done=done[session_id])
        for wanted in ("overdue", "due", "upcoming"):
            found = next((check for check, state in schedule if state == wanted), None)
            if found is not None:
                row.next_check, row.next_check_state = found, wanted
                break


def summary(board: Board) -> dict[str, Any]:
    """The counts at the top of the board; the alerts of sessions on no chair count too."""
    every = [a for r in board.rows for a in r.alerts] + board.elsewhere
    return {"open_alerts": len(every),
            "unacknowledged": sum(1 for a in every if a.status == "raised"),
            "occupied": sum(1 for r in board.rows if r.session)}
