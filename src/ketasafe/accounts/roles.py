"""Roles are Django groups; what each may do is a set of capabilities (permissions).

Capabilities are declared on `accounts.Capability` (an unmanaged model that exists only to carry
them), so `user.has_perm("accounts.<codename>")` answers every authorisation question.
"""

from __future__ import annotations

from dataclasses import dataclass

CAPABILITIES: dict[str, str] = {
    "view_patients": "See patient records",
    "edit_patients": "Register patients and edit history, medications and allergies",
    "start_intake": "Start a screening intake",
    "sign_screening": "Sign screening eligibility decisions",
    "manage_consent_documents": "Publish consent document versions",
    "witness_consent": "Witness a patient's consent signature",
    "order_treatment": "Order and sign a treatment course",
    "schedule_sessions": "Schedule treatment sessions",
    "run_sessions": "Check in, run pre-checks, dose, monitor and discharge sessions",
    "override_precheck": "Override a failed soft pre-check (with a reason)",
    "confirm_override": "Confirm another clinician's override as the second clinician",
    "view_board": "See the chair board and acknowledge alerts",
    "manage_ledger": "Receive, count and reconcile controlled-substance stock",
    "witness_waste": "Witness controlled-substance waste",
    "manage_staff": "Manage staff accounts and roles",
    "configure_clinic": "Configure protocols, rule sets, alert rules and code maps",
    "view_audit": "Read and export the audit log",
}


@dataclass(frozen=True)
class Role:
    name: str
    label: str
    capabilities: frozenset[str]


ROLES: tuple[Role, ...] = (
    Role("prescriber", "Prescriber", frozenset({
        "view_patients", "edit_patients", "start_intake", "sign_screening", "witness_consent",
        "order_treatment", "schedule_sessions", "run_sessions", "override_precheck",
        "confirm_override", "view_board",
    })),
    Role("nurse", "Nurse", frozenset({
        "view_patients", "edit_patients", "start_intake", "witness_consent", "schedule_sessions",
        "run_sessions", "confirm_override", "view_board", "witness_waste",
    })),
    Role("cs_custodian", "Controlled-substance custodian", frozenset({
        "manage_ledger", "witness_waste",
    })),
    Role("front_desk", "Front desk", frozenset({
        "view_patients", "edit_patients", "start_intake", "schedule_sessions",
    })),
    Role("clinic_admin", "Clinic admin", frozenset({
        "manage_staff", "configure_clinic", "manage_consent_documents", "view_patients",
    })),
    Role("auditor", "Auditor (read-only)", frozenset({"view_audit"})),
)
ROLE_NAMES = frozenset(r.name for r in ROLES)

for _role in ROLES:
    assert _role.capabilities <= CAPABILITIES.keys(), _role.name
