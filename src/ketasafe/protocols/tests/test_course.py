"""Course rules: intervals, rolling 7-day counts per phase, the reassessment gate, the order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketasafe.protocols.course import (
    CourseViolation,
    ViolationCode,
    check_session,
    course_week,
    next_allowed_at,
    phase_for,
)
from ketasafe.protocols.definitions import PROTOCOL_IDS, CoursePhase, get_protocol
from ketasafe.protocols.exceptions import CourseInputError

START = date(2025, 1, 6)  # a Monday
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
TIMING = {
    ViolationCode.MIN_INTERVAL,
    ViolationCode.MAX_PER_7_DAYS,
    ViolationCode.BEFORE_LAST_SESSION,
}


def day(n: float, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2025, 1, 6, hour, minute, tzinfo=UTC) + timedelta(days=n)


def codes(
    protocol: str,
    previous: list[datetime],
    proposed: datetime,
    *,
    ordered: int = 20,
    reassessed: bool = True,
    number: int | None = None,
) -> set[ViolationCode]:
    found = check_session(
        protocol,
        course_start=START,
        previous_sessions=previous,
        proposed_at=proposed,
        session_number=len(previous) + 1 if number is None else number,
        sessions_ordered=ordered,
        reassessment_recorded=reassessed,
    )
    assert all(isinstance(v, CourseViolation) and "\n" not in v.message for v in found)
    return {v.code for v in found}


# --- weeks and phases ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "week", "trd", "mdsi"),
    [
        (day(0, 0), 1, "induction", "treatment"),
        (day(6, 23, 59), 1, "induction", "treatment"),
        (day(7, 0), 2, "induction", "treatment"),
        (day(27, 23, 59), 4, "induction", "treatment"),
        (day(28, 0), 5, "maintenance", "beyond-4-weeks"),
        (day(55, 23, 59), 8, "maintenance", "beyond-4-weeks"),
        (day(56, 0), 9, "continuation", "beyond-4-weeks"),
        (day(400), 58, "continuation", "beyond-4-weeks"),
    ],
)
def test_phases_follow_the_label_weeks(at: datetime, week: int, trd: str, mdsi: str) -> None:
    assert course_week(START, at) == week
    assert phase_for("esketamine-trd", START, at).code == trd
    assert phase_for("esketamine-mdsi", START, at).code == mdsi


def test_weeks_are_counted_in_the_clinic_time_zone() -> None:
    at = datetime(2025, 2, 2, 23, 30, tzinfo=UTC)  # 3 February 01:30 at UTC+2
    plus_two = timezone(timedelta(hours=2))
    assert phase_for("esketamine-trd", START, at).code == "induction"
    assert phase_for("esketamine-trd", START, at, tz=plus_two).code == "maintenance"


def test_before_the_course_start_has_no_week() -> None:
    with pytest.raises(CourseInputError, match="before the course start 2025-01-06"):
        course_week(START, day(-1))


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2025, 1, 8, 9, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(CourseInputError, match="timezone-aware"):
        codes("esketamine-trd", [T0], naive)
    with pytest.raises(CourseInputError, match="previous session 1 .* timezone-aware"):
        codes("esketamine-trd", [naive], day(3))


def test_a_previous_session_before_the_course_start_is_bad_data() -> None:
    with pytest.raises(CourseInputError, match="before the course start"):
        codes("esketamine-trd", [day(-2)], day(3))


def test_session_counts_below_1_are_bad_data() -> None:
    with pytest.raises(CourseInputError):
        codes("esketamine-trd", [], T0, number=0)
    with pytest.raises(CourseInputError):
        codes("esketamine-trd", [], T0, ordered=0)


# --- minimum interval ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "hours"),
    [("esketamine-trd", 48), ("esketamine-mdsi", 48), ("iv-ketamine-depression", 24),
     ("iv-ketamine-crps", 20)],
)  # fmt: skip
def test_minimum_interval_is_inclusive(protocol: str, hours: int) -> None:
    assert get_protocol(protocol).course.min_interval_hours == hours
    exactly = T0 + timedelta(hours=hours)
    assert ViolationCode.MIN_INTERVAL not in codes(protocol, [T0], exactly)
    assert ViolationCode.MIN_INTERVAL in codes(protocol, [T0], exactly - timedelta(minutes=1))


def test_minimum_interval_is_a_clinic_setting() -> None:
    clinic = get_protocol("esketamine-trd").derive("c1", min_interval_hours=72)
    found = check_session(
        clinic, course_start=START, previous_sessions=[T0], proposed_at=day(2),
        session_number=2, sessions_ordered=8, reassessment_recorded=False,
    )  # fmt: skip
    assert [v.code for v in found] == [ViolationCode.MIN_INTERVAL]
    assert "minimum interval is 72 h (next allowed 2025-01-09 09:00 UTC)" in found[0].message


def test_a_session_not_after_the_last_one_is_refused() -> None:
    assert ViolationCode.BEFORE_LAST_SESSION in codes("esketamine-trd", [day(3)], day(3))
    assert ViolationCode.BEFORE_LAST_SESSION in codes("esketamine-trd", [day(3)], day(1))


# --- sessions per rolling 7 days -----------------------------------------------------------


def test_trd_induction_allows_two_in_any_7_days() -> None:
    previous = [day(0), day(2)]
    assert ViolationCode.MAX_PER_7_DAYS in codes("esketamine-trd", previous, day(4))
    # Day 0 09:00 leaves the window exactly 168 h later.
    assert codes("esketamine-trd", previous, day(7)) == set()
    assert ViolationCode.MAX_PER_7_DAYS in codes("esketamine-trd", previous, day(7, 8, 59))


def test_mdsi_allows_two_in_any_7_days() -> None:
    assert ViolationCode.MAX_PER_7_DAYS in codes("esketamine-mdsi", [day(0), day(3)], day(6))
    assert codes("esketamine-mdsi", [day(0), day(3)], day(7)) == set()


INDUCTION = [day(d) for d in (0, 3, 7, 10, 14, 17, 21, 24)]


def test_first_maintenance_dose_follows_the_label_schedule_after_induction() -> None:
    # Day 24 is in induction; day 28 starts week 5, where only maintenance sessions count.
    assert codes("esketamine-trd", INDUCTION, day(28)) == set()


def test_trd_maintenance_allows_one_in_any_7_days() -> None:
    previous = [*INDUCTION, day(28)]
    assert ViolationCode.MAX_PER_7_DAYS in codes("esketamine-trd", previous, day(31))
    assert ViolationCode.MAX_PER_7_DAYS in codes("esketamine-trd", previous, day(35, 8, 59))
    assert codes("esketamine-trd", previous, day(35)) == set()


def test_trd_from_week_9_allows_at_most_weekly() -> None:
    previous = [*INDUCTION, day(28), day(35), day(42), day(49), day(56)]
    assert ViolationCode.MAX_PER_7_DAYS in codes("esketamine-trd", previous, day(60))
    assert codes("esketamine-trd", previous, day(63)) == set()
    assert codes("esketamine-trd", previous, day(70)) == set()  # every 2 weeks is fine too


def test_iv_depression_allows_three_in_any_7_days() -> None:
    previous = [day(0), day(1), day(2)]
    assert ViolationCode.MAX_PER_7_DAYS in codes("iv-ketamine-depression", previous, day(4))
    assert ViolationCode.MAX_PER_7_DAYS in codes("iv-ketamine-depression", previous, day(6, 23))
    assert codes("iv-ketamine-depression", previous, day(7)) == set()


def test_iv_frequency_is_a_clinic_setting() -> None:
    dep = get_protocol("iv-ketamine-depression")
    clinic = dep.derive("c1", phases=(replace_max(dep.course.phases[0], 2),))
    found = check_session(
        clinic, course_start=START, previous_sessions=[day(0), day(2)], proposed_at=day(4),
        session_number=3, sessions_ordered=6, reassessment_recorded=False,
    )  # fmt: skip
    assert [v.code for v in found] == [ViolationCode.MAX_PER_7_DAYS]
    assert "series allows 2 sessions in any 7 days" in found[0].message
    assert "next allowed 2025-01-13 09:00 UTC" in found[0].message


def replace_max(phase: CoursePhase, n: int) -> CoursePhase:
    return replace(phase, max_sessions_per_7_days=n)


def test_crps_allows_daily_but_not_eight_in_7_days() -> None:
    daily = [day(d) for d in range(7)]
    assert codes("iv-ketamine-crps", daily, day(7)) == set()
    # 20 h after day 6 is within the 20 h interval but would make 8 in the 7 days to 05:00.
    assert codes("iv-ketamine-crps", daily, day(7, 5)) == {ViolationCode.MAX_PER_7_DAYS}


# --- reassessment gate, order and numbering ------------------------------------------------


@pytest.mark.parametrize("protocol", ["esketamine-trd", "esketamine-mdsi"])
def test_reassessment_must_be_recorded_before_week_5(protocol: str) -> None:
    previous = INDUCTION
    assert codes(protocol, previous[:-1], day(27), reassessed=False) == set()
    assert codes(protocol, previous, day(28), reassessed=False) == {ViolationCode.REASSESSMENT_DUE}
    assert codes(protocol, previous, day(28), reassessed=True) == set()


def test_iv_has_no_reassessment_gate() -> None:
    previous = [day(d) for d in range(0, 35, 3)]
    assert codes("iv-ketamine-depression", previous, day(36), reassessed=False) == set()


def test_a_session_beyond_the_ordered_count_is_refused() -> None:
    previous = [day(d) for d in range(0, 15, 3)]  # 5 sessions
    assert codes("iv-ketamine-depression", previous, day(16), ordered=6) == set()
    assert codes("iv-ketamine-depression", previous, day(16), ordered=5) == {ViolationCode.BEYOND_ORDERED}


def test_session_number_must_follow_the_record() -> None:
    assert codes("esketamine-trd", [T0], day(3), number=1) == {ViolationCode.SESSION_NUMBER_MISMATCH}


def test_before_course_start_is_reported_with_the_other_gates() -> None:
    assert codes("esketamine-trd", [], day(-1), ordered=1, number=2) == {
        ViolationCode.BEFORE_COURSE_START,
        ViolationCode.SESSION_NUMBER_MISMATCH,
        ViolationCode.BEYOND_ORDERED,
    }


def test_every_violation_is_reported_at_once() -> None:
    found = codes("esketamine-trd", [*INDUCTION, day(28)], day(29), reassessed=False, ordered=9)
    assert found == {
        ViolationCode.MIN_INTERVAL,
        ViolationCode.MAX_PER_7_DAYS,
        ViolationCode.REASSESSMENT_DUE,
        ViolationCode.BEYOND_ORDERED,
    }


# --- next_allowed_at -----------------------------------------------------------------------


def test_next_allowed_at_examples() -> None:
    trd = "esketamine-trd"
    assert next_allowed_at(trd, course_start=START, previous_sessions=[]) == day(0, 0)
    assert next_allowed_at(trd, course_start=START, previous_sessions=[T0]) == day(2)
    assert next_allowed_at(trd, course_start=START, previous_sessions=[day(0), day(2)]) == day(7)
    # After induction, the maintenance phase starts at midnight of day 28, not 7 days after 24.
    assert next_allowed_at(trd, course_start=START, previous_sessions=INDUCTION) == day(28, 0)
    later = next_allowed_at(trd, course_start=START, previous_sessions=[T0], not_before=day(9))
    assert later == day(9)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(PROTOCOL_IDS),
    st.lists(st.integers(min_value=0, max_value=24 * 60 * 9), min_size=1, max_size=14),
)
def test_next_allowed_at_is_the_earliest_time_the_timing_rules_accept(protocol: str, delays_min: list[int]) -> None:
    previous: list[datetime] = []
    for delay in delays_min:
        base = max(previous) if previous else day(0, 0)
        not_before = base + timedelta(minutes=delay)
        at = next_allowed_at(protocol, course_start=START, previous_sessions=previous, not_before=not_before)
        assert at >= not_before
        assert not codes(protocol, previous, at) & TIMING
        if at > not_before:
            assert codes(protocol, previous, at - timedelta(seconds=1)) & TIMING
        previous.append(at)
