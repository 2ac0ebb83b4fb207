"""The hard gate before treatment: is this patient allowed to be treated under this protocol now?

`treatment_allowed(patient, protocol_id, at)` answers yes, or no with EVERY missing piece, so staff
can fix them all at once. The sessions work calls it before every session and refuses to start on
`allowed=False`. It reads only; it never changes or audits anything.

Codes (stable, other apps match on them):
  screening_missing, screening_unsigned, screening_expired, screening_stale, screening_ineligible,
  screening_pending_review (a newer screening found warnings and awaits the prescriber's review),
  consent_missing, consent_stale, consent_withdrawn,
  rems_enrollment_missing (esketamine protocols only; clinical-facts 1.9).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ketasafe.patients.models import Patient

SCREENING_MISSING = "screening_missing"
SCREENING_UNSIGNED = "screening_unsigned"
SCREENING_EXPIRED = "screening_expired"
SCREENING_STALE = "screening_stale"
SCREENING_INELIGIBLE = "screening_ineligible"
SCREENING_PENDING_REVIEW = "screening_pending_review"
CONSENT_MISSING = "consent_missing"
CONSENT_STALE = "consent_stale"
CONSENT_WITHDRAWN = "consent_withdrawn"
REMS_ENROLLMENT_MISSING = "rems_enrollment_missing"


@dataclass(frozen=True)
class GateProblem:
    code: str
    message: str


@dataclass(frozen=True)
class TreatmentGate:
    allowed: bool
    missing: tuple[GateProblem, ...]

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(p.code for p in self.missing)


def treatment_allowed(patient: Patient, protocol_id: str, at: dt.datetime) -> TreatmentGate:
    """Whether `patient` may be treated under `protocol_id` at `at` (timezone-aware).

    Guarantees: `allowed` is True only when `missing` is empty; `missing` lists every problem
    (screening, consent and, for esketamine, REMS enrollment), screening first. Records created
    after `at` do not count.
    """
    # Imported here so this module can be imported anywhere without loading models at import time.
    from ketasafe.consent.status import consent_problems
    from ketasafe.screening.eligibility import screening_problems

    problems = [*screening_problems(patient, protocol_id, at), *consent_problems(patient, protocol_id, at)]
    return TreatmentGate(allowed=not problems, missing=tuple(problems))
