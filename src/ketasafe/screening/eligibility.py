"""Eligibility per protocol, read from the screening records (no writes, no audit).

States: eligible, needs_screening (none, or one still awaiting sign-off), expired (the assessment
is older than the clinic's validity setting), stale (the problem list, medications, allergies or
pregnancy status changed after signing), ineligible (the prescriber recorded "not treated"),
ineligible_unsigned (the latest screening found a contraindication and awaits the prescriber),
pending_review (the latest screening found warnings and awaits the prescriber's review).

A completed screening awaiting sign-off that is newer than the signed one blocks treatment when it
is ineligible (screening_ineligible) or needs review (screening_pending_review): the patient's
condition today outranks an older signature. It keeps blocking while a newer draft is in progress
(a completed screening is never reverted to draft; services copies it into a new one), until a
newer screening has run and superseded it. Validity counts from the assessment, not the signature.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from ketasafe.clinic.models import ClinicSettings
from ketasafe.consent.gate import (
    SCREENING_EXPIRED,
    SCREENING_INELIGIBLE,
    SCREENING_MISSING,
    SCREENING_PENDING_REVIEW,
    SCREENING_STALE,
    SCREENING_UNSIGNED,
    GateProblem,
)
from ketasafe.lib.timeutil import clinic_tz
from ketasafe.patients.models import Patient

from .codes import PROTOCOLS
from .models import DECIDED_STATUSES, OPEN_STATUSES, Screening, Status

ELIGIBLE = "eligible"
NEEDS_SCREENING = "needs_screening"
EXPIRED = "expired"
STALE = "stale"
INELIGIBLE = "ineligible"
INELIGIBLE_UNSIGNED = "ineligible_unsigned"
PENDING_REVIEW = "pending_review"
BANNER_CLASS = {ELIGIBLE: "ok", NEEDS_SCREENING: "warn", EXPIRED: "warn", STALE: "warn", INELIGIBLE: "bad",
                INELIGIBLE_UNSIGNED: "bad", PENDING_REVIEW: "warn"}
STATE_LABEL = {ELIGIBLE: "Eligible", NEEDS_SCREENING: "Needs screening", EXPIRED: "Screening expired",
               STALE: "Screening out of date", INELIGIBLE: "Not eligible",
               INELIGIBLE_UNSIGNED: "Not eligible (awaiting prescriber)",
               PENDING_REVIEW: "Needs prescriber review"}


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Same day-of-month `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def expires_at(assessed: dt.datetime, validity_months: int) -> dt.datetime:
    return add_months(assessed, validity_months)


def assessed_at(screening: Screening) -> dt.datetime:
    """When the patient was assessed: the moment the screening ran, or the start of its
    `assessed_on` day (clinic zone) when that day is earlier. Validity counts from here."""
    completed = screening.completed_at
    assert completed is not None, "only a completed screening has an assessment"
    day = screening.assessed_on
    if day is not None and day < timezone.localtime(completed, clinic_tz()).date():
        return dt.datetime.combine(day, dt.time.min, tzinfo=clinic_tz())
    return completed


def screening_expires_at(screening: Screening, validity_months: int) -> dt.datetime:
    return expires_at(assessed_at(screening), validity_months)


@dataclass(frozen=True)
class Eligibility:
    protocol: str
    state: str
    problems: tuple[GateProblem, ...]
    current: Screening | None  # the signed or not-treated screening that decides, if any
    open: Screening | None  # the newest screening in progress (draft or awaiting sign-off), if any
    expires_at: dt.datetime | None
    # The completed screening awaiting sign-off, if any: `open` too, unless a newer draft exists.
    awaiting: Screening | None = None

    @property
    def banner_class(self) -> str:
        return BANNER_CLASS[self.state]

    @property
    def label(self) -> str:
        return STATE_LABEL[self.state]

    @property
    def reasons(self) -> list[str]:
        return [p.message for p in self.problems]


def _fmt(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def eligibility(patient: Patient, protocol: str, at: dt.datetime, *,
                validity_months: int | None = None) -> Eligibility:
    """Eligibility of `patient` for `protocol` at `at`. Records signed after `at` do not count."""
    months = ClinicSettings.current().screening_validity_months if validity_months is None else validity_months
    # Re-read from the database: a caller's Patient object may predate a history change.
    changed_at = Patient.objects.filter(pk=patient.pk).values_list("clinical_changed_at", flat=True).first()
    rows = list(Screening.objects.filter(patient_id=patient.pk, protocol=protocol,
                                         status__in=[*DECIDED_STATUSES, *OPEN_STATUSES])
                .select_related("signed_by").order_by("-started_at", "-id"))
    decided = sorted((s for s in rows if s.status in DECIDED_STATUSES and s.signed_at and s.signed_at <= at),
                     key=lambda s: (s.signed_at, s.pk), reverse=True)
    current = decided[0] if decided else None
    open_ = next((s for s in rows if s.status in OPEN_STATUSES), None)
    # A newer draft (e.g. copied from it to change an input) does not hide a completed decision.
    awaiting = next((s for s in rows if s.status == Status.COMPLETED), None)
    pending = _pending_decision(awaiting, current, at)

    problems: list[GateProblem] = []
    exp = None
    if current is None:
        if open_ is None:
            problems.append(GateProblem(SCREENING_MISSING, f"No signed screening for {protocol}."))
            state = NEEDS_SCREENING
        else:
            state = _pending_problems(pending, problems) or NEEDS_SCREENING
            shown = awaiting or open_
            what = "awaiting prescriber sign-off" if shown.status == Status.COMPLETED else "intake in progress"
            problems.append(GateProblem(SCREENING_UNSIGNED, f"Screening started {_fmt(shown.started_at)}, "
                                        f"{what}."))
    elif current.status == Status.NOT_TREATED:
        problems.append(GateProblem(SCREENING_INELIGIBLE,
                                    f"Prescriber recorded not treated on {_fmt(current.signed_at)}"  # type: ignore[arg-type]
                                    f": {current.not_treated_reason}"))
        state = INELIGIBLE
    else:
        signed_at = current.signed_at
        assert signed_at is not None
        exp = screening_expires_at(current, months)
        state = ELIGIBLE
        if changed_at is not None and changed_at > signed_at:
            problems.append(GateProblem(SCREENING_STALE,
                                        f"The problem list, medications, allergies or pregnancy status "
                                        f"changed on {_fmt(changed_at)}, after the screening was signed "
                                        f"on {_fmt(signed_at)}: screen again."))
            state = STALE
        if at >= exp:
            problems.append(GateProblem(SCREENING_EXPIRED,
                                        f"The screening assessed {_fmt(assessed_at(current))} (signed "
                                        f"{_fmt(signed_at)}) expired {_fmt(exp)} (valid {months} months)."))
            state = EXPIRED
        if pending is None or pending.outcome not in REFUSING_OUTCOMES:
            pending = _refusal_since(current, at)  # an unsigned refusal a later re-run superseded
        state = _pending_problems(pending, problems) or state
    return Eligibility(protocol, state, tuple(problems), current, open_, exp, awaiting)


REFUSING_OUTCOMES = ("ineligible", "needs_review")  # what only a prescriber's decision clears


def _refusal_since(current: Screening, at: dt.datetime) -> Screening | None:
    """A screening run after the signed one that found contraindications or warnings, even if
    a later re-run (not signed) superseded it: re-running with a finding left out (e.g. blank
    vitals) must not clear it. Only a prescriber's newer decision does (it becomes current)."""
    if current.completed_at is None:
        return None
    return (Screening.objects.filter(patient_id=current.patient_id, protocol=current.protocol,
                                     status__in=[Status.COMPLETED, Status.SUPERSEDED],
                                     outcome__in=REFUSING_OUTCOMES,
                                     completed_at__gt=current.completed_at, completed_at__lte=at)
            .order_by("-completed_at", "-id").first())


def _pending_decision(awaiting: Screening | None, current: Screening | None, at: dt.datetime) -> Screening | None:
    """The screening awaiting sign-off whose decision speaks now: completed by `at` and newer
    than the signed (or not-treated) one, if any."""
    if awaiting is None or awaiting.completed_at is None or awaiting.completed_at > at:
        return None
    if current is not None and current.completed_at is not None and awaiting.completed_at <= current.completed_at:
        return None
    return awaiting


def _pending_problems(pending: Screening | None, problems: list[GateProblem]) -> str | None:
    """Add what a newer unsigned decision blocks; return the state it sets, if any."""
    if pending is None:
        return None
    ran = f"The screening run {_fmt(pending.completed_at)} awaits the prescriber"  # type: ignore[arg-type]
    if pending.outcome == "ineligible":
        problems.append(GateProblem(SCREENING_INELIGIBLE, f"{_ineligible_message(pending)} {ran}."))
        return INELIGIBLE_UNSIGNED
    if pending.outcome == "needs_review":
        rules = ", ".join(sorted({f["rule"] for f in pending.warnings})) or "warnings"
        problems.append(GateProblem(SCREENING_PENDING_REVIEW,
                                    f"Screening found warnings ({rules}) that need a prescriber's written "
                                    f"review. {ran}."))
        return PENDING_REVIEW
    return None


def _ineligible_message(screening: Screening) -> str:
    rules = [f["rule"] for f in screening.findings if f.get("severity") == "contraindication"]
    return "Screening found contraindications: " + ", ".join(rules) + "." if rules else "Screening is ineligible."


def screening_problems(patient: Patient, protocol: str, at: dt.datetime) -> list[GateProblem]:
    return list(eligibility(patient, protocol, at).problems)


def eligibility_by_protocol(patient: Patient, at: dt.datetime) -> list[Eligibility]:
    months = ClinicSettings.current().screening_validity_months
    return [eligibility(patient, code, at, validity_months=months) for code in PROTOCOLS.prefixes]
