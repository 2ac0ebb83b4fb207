"""Course rules: may this session happen at this time, in this course?

Pure: no Django, no clock (the caller passes every datetime, timezone-aware). Refusals come back
as ``CourseViolation`` values, all of them at once, so the UI can show every reason; bad data
(naive datetimes, a session before the course began) raises CourseInputError instead.

Definitions used throughout:
- Week 1 of a course is its first 7 calendar days in the clinic's time zone ``tz``, counted from
  ``course_start``; phases are ranges of weeks (facts 1.3).
- "Rolling 7 days" before a proposed time T is the half-open window (T - 168 h, T]: a session
  exactly 168 h earlier no longer counts. Only sessions in T's own phase count, so that the
  first weekly maintenance dose may follow the last twice-weekly induction dose on the label's
  schedule (facts 1.3); the minimum interval still applies across the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from .definitions import CoursePhase, ProtocolDefinition, get_protocol
from .exceptions import CourseInputError

WINDOW = timedelta(days=7)


class ViolationCode(StrEnum):
    BEFORE_COURSE_START = "BEFORE-COURSE-START"
    BEFORE_LAST_SESSION = "BEFORE-LAST-SESSION"
    MIN_INTERVAL = "MIN-INTERVAL"
    MAX_PER_7_DAYS = "MAX-PER-7-DAYS"
    SESSION_NUMBER_MISMATCH = "SESSION-NUMBER-MISMATCH"
    BEYOND_ORDERED = "BEYOND-ORDERED"
    REASSESSMENT_DUE = "REASSESSMENT-DUE"


@dataclass(frozen=True)
class CourseViolation:
    code: ViolationCode
    message: str


def _protocol(protocol: ProtocolDefinition | str) -> ProtocolDefinition:
    return get_protocol(protocol) if isinstance(protocol, str) else protocol


def _require_aware(name: str, at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise CourseInputError(f"{name} {at.isoformat()} must be timezone-aware")


def _show(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz)


def course_week(course_start: date, at: datetime, *, tz: tzinfo = UTC) -> int:
    """The 1-based week of the course ``at`` falls in; CourseInputError if before the start."""
    _require_aware("at", at)
    days = (at.astimezone(tz).date() - course_start).days
    if days < 0:
        raise CourseInputError(f"{_show(at, tz)} is before the course start {course_start}")
    return days // 7 + 1


def phase_for(protocol: ProtocolDefinition | str, course_start: date, at: datetime, *, tz: tzinfo = UTC) -> CoursePhase:
    """The course phase (facts 1.3 for esketamine) that ``at`` falls in."""
    week = course_week(course_start, at, tz=tz)
    for phase in _protocol(protocol).course.phases:
        if phase.contains_week(week):
            return phase
    # Unreachable for a valid definition: phases run from week 1 and the last is open-ended.
    raise CourseInputError(f"no phase covers week {week}")


def _same_phase_in_window(
    defn: ProtocolDefinition,
    course_start: date,
    previous: Sequence[datetime],
    at: datetime,
    tz: tzinfo,
) -> list[datetime]:
    code = phase_for(defn, course_start, at, tz=tz).code
    return sorted(s for s in previous if at - WINDOW < s <= at and phase_for(defn, course_start, s, tz=tz).code == code)


def _validate(course_start: date, previous: Sequence[datetime], tz: tzinfo) -> None:
    for index, session in enumerate(previous):
        _require_aware(f"previous session {index + 1}", session)
        course_week(course_start, session, tz=tz)  # raises if before the course start


def check_session(
    protocol: ProtocolDefinition | str,
    *,
    course_start: date,
    previous_sessions: Sequence[datetime],
    proposed_at: datetime,
    session_number: int,
    sessions_ordered: int,
    reassessment_recorded: bool,
    tz: tzinfo = UTC,
) -> list[CourseViolation]:
    """Every course rule the proposed session breaks; an empty list means it may go ahead.

    ``previous_sessions`` are this course's completed dosing sessions, in any order.
    ``session_number`` is 1-based and should be ``len(previous_sessions) + 1``.
    """
    defn = _protocol(protocol)
    _require_aware("proposed_at", proposed_at)
    _validate(course_start, previous_sessions, tz)
    if session_number < 1 or sessions_ordered < 1:
        raise CourseInputError("session_number and sessions_ordered must be 1 or more")
    settings = defn.course
    found: list[CourseViolation] = []

    def add(code: ViolationCode, message: str) -> None:
        found.append(CourseViolation(code, message))

    # The session count must agree with the record, or a session-1 dose rule could be misapplied.
    if session_number != len(previous_sessions) + 1:
        add(
            ViolationCode.SESSION_NUMBER_MISMATCH,
            f"session {session_number} proposed but {len(previous_sessions)} sessions are recorded in this course",
        )
    if session_number > sessions_ordered:
        add(
            ViolationCode.BEYOND_ORDERED,
            f"session {session_number} is beyond the {sessions_ordered} sessions ordered",
        )
    if proposed_at.astimezone(tz).date() < course_start:
        add(
            ViolationCode.BEFORE_COURSE_START,
            f"{_show(proposed_at, tz)} is before the course start {course_start}",
        )
        return found  # no week, so no phase: the remaining rules do not apply

    if previous_sessions:
        last = max(previous_sessions)
        interval = timedelta(hours=settings.min_interval_hours)
        if proposed_at <= last:
            add(
                ViolationCode.BEFORE_LAST_SESSION,
                f"{_show(proposed_at, tz)} is not after the last session at {_show(last, tz)}",
            )
        elif proposed_at - last < interval:
            hours = (proposed_at - last).total_seconds() / 3600
            add(
                ViolationCode.MIN_INTERVAL,
                f"only {hours:.1f} h since the last session; the minimum interval is "
                f"{settings.min_interval_hours} h (next allowed {_show(last + interval, tz)})",
            )

    # facts 1.3: "a maximum session frequency for each phase"; IV: clinic setting (facts 2.1).
    phase = phase_for(defn, course_start, proposed_at, tz=tz)
    window = _same_phase_in_window(defn, course_start, previous_sessions, proposed_at, tz)
    if len(window) + 1 > phase.max_sessions_per_7_days:
        free_at = window[len(window) - phase.max_sessions_per_7_days] + WINDOW
        add(
            ViolationCode.MAX_PER_7_DAYS,
            f"{phase.code} allows {phase.max_sessions_per_7_days} sessions in any 7 days and "
            f"{len(window)} are already in the 7 days before {_show(proposed_at, tz)} "
            f"(next allowed {_show(free_at, tz)})",
        )

    # facts 1.3: TRD, check benefit at the end of induction; MDSI, at 4 weeks.
    gate = settings.reassessment_after_week
    week = course_week(course_start, proposed_at, tz=tz)
    if gate is not None and week > gate and not reassessment_recorded:
        add(
            ViolationCode.REASSESSMENT_DUE,
            f"week {week}: the reassessment due after week {gate} must be recorded before the course continues",
        )
    return found


def next_allowed_at(
    protocol: ProtocolDefinition | str,
    *,
    course_start: date,
    previous_sessions: Sequence[datetime],
    not_before: datetime | None = None,
    tz: tzinfo = UTC,
) -> datetime:
    """The earliest time, not before ``not_before``, that passes the timing rules (start of
    course, minimum interval, sessions per rolling 7 days).

    The gates that do not depend on time (ordered count, reassessment) are ``check_session``'s;
    the UI shows both. A time equal to the result passes the timing rules; any earlier one
    (not before ``not_before``) breaks at least one of them.
    """
    defn = _protocol(protocol)
    _validate(course_start, previous_sessions, tz)
    candidate = _day_start(course_start, tz)
    if not_before is not None:
        _require_aware("not_before", not_before)
        candidate = max(candidate, not_before)
    if previous_sessions:
        last = max(previous_sessions)
        candidate = max(candidate, last + timedelta(hours=defn.course.min_interval_hours))
    # Each pass moves forward to the next time the window or the phase changes, so the loop
    # ends within (sessions + phases) passes.
    while True:
        phase = phase_for(defn, course_start, candidate, tz=tz)
        window = _same_phase_in_window(defn, course_start, previous_sessions, candidate, tz)
        excess = len(window) + 1 - phase.max_sessions_per_7_days
        if excess <= 0:
            return candidate
        # The window frees when its excess oldest sessions are 168 h old ...
        free_at = window[excess - 1] + WINDOW
        # ... or earlier, when the next phase begins and the count starts again.
        if phase.last_week is not None:
            next_phase = _day_start(course_start + timedelta(weeks=phase.last_week), tz)
            free_at = min(free_at, next_phase)
        candidate = free_at
