"""The treatment session state machine as data (STYLE §2), pure: no Django.

One enforcing function in services.py checks this table, locks the row and writes the
transition row and audit entry. No other code assigns a session's status.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    PRE_CHECKS_PASSED = "pre_checks_passed"
    DOSING = "dosing"
    MONITORING = "monitoring"
    RECOVERY = "recovery"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"
    ABORTED = "aborted"


ACTIVE: frozenset[Status] = frozenset({
    Status.SCHEDULED, Status.CHECKED_IN, Status.PRE_CHECKS_PASSED, Status.DOSING,
    Status.MONITORING, Status.RECOVERY,
})
TERMINAL: frozenset[Status] = frozenset({Status.DISCHARGED, Status.CANCELLED, Status.ABORTED})

# Forward path, plus cancel/abort from any active state. Cancelled = no drug given (before
# dosing); aborted = stopped after the drug was given or dosing began (with a reason).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.SCHEDULED: frozenset({Status.CHECKED_IN, Status.CANCELLED}),
    Status.CHECKED_IN: frozenset({Status.PRE_CHECKS_PASSED, Status.CANCELLED}),
    Status.PRE_CHECKS_PASSED: frozenset({Status.DOSING, Status.CANCELLED}),
    Status.DOSING: frozenset({Status.MONITORING, Status.ABORTED}),
    Status.MONITORING: frozenset({Status.RECOVERY, Status.ABORTED}),
    Status.RECOVERY: frozenset({Status.DISCHARGED, Status.ABORTED}),
    Status.DISCHARGED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.ABORTED: frozenset(),
}

# States in which the patient is in the chair, before or after the drug: monitor data goes to the
# session, and its vitals are judged against the alert rules (pre-dose readings count too).
IN_CHAIR: frozenset[Status] = ACTIVE - {Status.SCHEDULED}

# States in which a patient is in the chair with drug on board: monitors' data is expected.
DRUG_ON_BOARD: frozenset[Status] = frozenset({Status.DOSING, Status.MONITORING, Status.RECOVERY})


def can_transition(current: Status, to: Status) -> bool:
    return to in TRANSITIONS[current]
