"""The state table is the only way a status changes: every listed move works through
_transition(), every other pair is refused and changes nothing."""

from __future__ import annotations

import itertools

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.sessions import services
from ketasafe.sessions.exceptions import InvalidTransition
from ketasafe.sessions.models import SessionTransition, TreatmentSession
from ketasafe.sessions.state import ACTIVE, TERMINAL, TRANSITIONS, Status

pytestmark = pytest.mark.django_db

S = Status
# Written out, not read from TRANSITIONS: a move added to the table by mistake (e.g. scheduled
# straight to dosing, skipping check-in and the pre-dose checks) must fail here.
EXPECTED = {
    (S.SCHEDULED, S.CHECKED_IN), (S.SCHEDULED, S.CANCELLED),
    (S.CHECKED_IN, S.PRE_CHECKS_PASSED), (S.CHECKED_IN, S.CANCELLED),
    (S.PRE_CHECKS_PASSED, S.DOSING), (S.PRE_CHECKS_PASSED, S.CANCELLED),
    (S.DOSING, S.MONITORING), (S.DOSING, S.ABORTED),
    (S.MONITORING, S.RECOVERY), (S.MONITORING, S.ABORTED),
    (S.RECOVERY, S.DISCHARGED), (S.RECOVERY, S.ABORTED),
}
ALL_PAIRS = list(itertools.product(Status, Status))
ALLOWED = sorted(EXPECTED)
REFUSED = [(a, b) for a, b in ALL_PAIRS if (a, b) not in EXPECTED]


def test_the_table_is_exactly_the_expected_moves():
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == EXPECTED


def _session_in(session: TreatmentSession, status: Status) -> TreatmentSession:
    # Test set-up only: put the row into a starting state without going through the gates.
    TreatmentSession.objects.filter(pk=session.pk).update(status=status.value)
    session.refresh_from_db()
    return session


def test_table_shape():
    assert set(TRANSITIONS) == set(Status)
    for terminal in TERMINAL:
        assert TRANSITIONS[terminal] == frozenset()
    for state in ACTIVE:  # cancel or abort from any active state
        assert TRANSITIONS[state] & {Status.CANCELLED, Status.ABORTED}


@pytest.mark.parametrize("start,to", ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_listed_transition_is_applied_recorded_and_audited(esk_session, team, start, to):
    session = _session_in(esk_session, start)
    before_version = session.row_version
    audits = AuditEntry.objects.count()
    services._transition(session, to, actor=team["nurse"], reason="test")
    fresh = TreatmentSession.objects.get(pk=session.pk)
    assert fresh.status == to.value
    assert fresh.row_version == before_version + 1
    row = SessionTransition.objects.get(session=session)
    assert (row.from_status, row.to_status, row.actor) == (start.value, to.value, team["nurse"])
    assert AuditEntry.objects.count() == audits + 1


@pytest.mark.parametrize("start,to", REFUSED, ids=[f"{a}->{b}" for a, b in REFUSED])
def test_every_unlisted_transition_is_refused(esk_session, team, start, to):
    session = _session_in(esk_session, start)
    with pytest.raises(InvalidTransition) as exc:
        services._transition(session, to, actor=team["nurse"])
    assert str(start.value).replace("_", " ") in str(exc.value)
    fresh = TreatmentSession.objects.get(pk=session.pk)
    assert fresh.status == start.value and fresh.row_version == session.row_version
    assert not SessionTransition.objects.filter(session=session).exists()
    assert AuditEntry.objects.filter(action="refused", object_id=str(session.pk)).exists()


def test_transition_cannot_be_used_to_set_status_or_version_sideways(esk_session, team):
    with pytest.raises(ValueError):
        services._transition(esk_session, Status.CHECKED_IN, actor=team["nurse"],
                            changes={"status": "discharged"})


def test_only_the_session_services_call_the_transition_function():
    """_transition checks the state table but not a step's gate: views and other apps must go
    through the do_* services."""
    import pathlib
    import re

    root = pathlib.Path(services.__file__).parents[1]
    # Any reference to the session services' transition function (screening has its own).
    pattern = re.compile(r"(sessions|session_services|services)\._?transition\b"
                         r"|sessions\.services import[^\n]*\btransition")

    def code(path: pathlib.Path) -> str:
        return "\n".join(line.split("#", 1)[0] for line in path.read_text().splitlines())

    callers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                     if "tests" not in p.parts and pattern.search(code(p)))
    assert callers == []
    assert not hasattr(services, "transition")
