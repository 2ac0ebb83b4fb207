"""Every change to screening records, each atomic with its audit entry (STYLE §3).

Guarantees:
- Only a prescriber (capability sign_screening) signs. `eligible` is signed as is; `needs_review`
  needs a written justification for each warning; `ineligible` is never signed, only recorded as
  "not treated" with a reason. A signed screening is never changed; a second signature is refused.
- Every refused sign-off raises a ScreeningRefused and leaves an audit "refused" entry that
  survives the rollback of the refused change (it is written after the inner transaction ends).
- A screening stores the exact intake the rules saw, the decision with every finding (message,
  evidence, source) and the rule set version; a version is marked used by its first decision.
- A newer screening supersedes older ones for the same patient and protocol: open ones when it
  starts, decided ones when it is signed or recorded as not treated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ketasafe import audit
from ketasafe.accounts.access import has_capability, require_capability
from ketasafe.lib.timeutil import clinic_today
from ketasafe.patients.models import Patient, PregnancyStatus

from .exceptions import IntakeInvalid, RuleSetInvalid
from .intake import Vitals, parse_intake
from .models import DECIDED_STATUSES, OPEN_STATUSES, TRANSITIONS, RuleSetVersion, Screening, Status
from .refusals import (
    AlreadySigned,
    IneligibleCannotBeSigned,
    InputsChangedSinceScreening,
    JustificationMissing,
    NotAllowedToSign,
    ReasonRequired,
    ScreeningNotCompleted,
    ScreeningNotEditable,
    ScreeningRefused,
)
from .rules import DEFAULT_V1, RULES, screen

INTAKE_FIELDS = ("indication", "hepatic_impairment", "systolic", "diastolic", "heart_rate", "spo2",
                 "phq9", "cssrs_screen", "substance_use_history", "drug_screen", "drug_screen_detail")
MIN_JUSTIFICATION = 10  # characters: "ok" is not a clinical justification


def _transition(screening: Screening, to: str) -> None:
    if to not in TRANSITIONS[screening.status]:
        raise ScreeningNotEditable(f"A {screening.get_status_display().lower()} screening cannot "
                                   f"become {Status(to).label.lower()}.")
    screening.status = to


def active_ruleset() -> RuleSetVersion:
    """The rule set new screenings use: the most recently activated version (default-v1 at first)."""
    found = RuleSetVersion.objects.filter(activated_at__isnull=False).order_by("-activated_at", "-id").first()
    if found is not None:
        return found
    # Seeded by migration 0002; recreated here if a database flush (e.g. a transactional test)
    # removed it, so screening never depends on migration data surviving.
    row = RuleSetVersion.objects.filter(version=DEFAULT_V1.version).first()
    if row is None:
        row = RuleSetVersion(version=DEFAULT_V1.version, thresholds=dict(DEFAULT_V1.thresholds),
                             severities={k: str(v) for k, v in DEFAULT_V1.severities.items()},
                             activated_at=timezone.now())
        row.save()
    return row


# --- Intake ----------------------------------------------------------------------------------

@transaction.atomic
def do_start_intake(*, actor: Any, patient: Patient, protocol: str, indication: str,
                    request: HttpRequest | None = None, **fields: Any) -> Screening:
    """Start a draft intake (front desk, nurse or prescriber). Supersedes open intakes for the
    same patient and protocol, so there is at most one in progress."""
    require_capability(actor, "start_intake")
    screening = Screening(patient=patient, protocol=protocol, indication=indication, started_by=actor,
                          **{k: v for k, v in fields.items() if k in INTAKE_FIELDS})
    screening.full_clean()
    screening.save()
    audit.record("create", actor=actor, request=request, patient=patient, obj=screening,
                 after={"protocol": protocol, "indication": indication, "status": screening.status})
    for old in Screening.objects.select_for_update().filter(
            patient=patient, protocol=protocol, status__in=OPEN_STATUSES).exclude(pk=screening.pk):
        _supersede(old, screening, actor=actor, request=request)
    return screening


def _supersede(old: Screening, new: Screening, *, actor: Any, request: HttpRequest | None) -> None:
    before = old.status
    _transition(old, Status.SUPERSEDED)
    old.superseded_by = new
    old.superseded_at = timezone.now()
    old.save(update_fields=["status", "superseded_by", "superseded_at"])
    audit.record("update", actor=actor, request=request, patient=old.patient_id, obj=old,
                 before={"status": before}, after={"status": old.status, "superseded_by": new.pk})


def _locked(screening: Screening) -> Screening:
    return Screening.objects.select_for_update().select_related("patient").get(pk=screening.pk)


@transaction.atomic
def do_save_intake(*, actor: Any, screening: Screening, request: HttpRequest | None = None,
                   **fields: Any) -> Screening:
    """Save intake-only fields without screening. A completed screening goes back to draft (its
    decision no longer matches its inputs)."""
    require_capability(actor, "start_intake")
    screening = _locked(screening)
    if not screening.is_open:
        raise ScreeningNotEditable("This screening is closed; start a new one.")
    changed = _apply_fields(screening, fields)
    if screening.status == Status.COMPLETED:
        _transition(screening, Status.DRAFT)
        screening.decision = screening.intake = None
        screening.outcome = ""
        changed["status"] = (Status.COMPLETED, Status.DRAFT)
    screening.full_clean()
    screening.save()
    if changed:
        audit.record("update", actor=actor, request=request, patient=screening.patient, obj=screening,
                     before={k: v[0] for k, v in changed.items()}, after={k: v[1] for k, v in changed.items()})
    return screening


def _apply_fields(screening: Screening, fields: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    changed = {}
    for key, value in fields.items():
        if key not in INTAKE_FIELDS:
            raise TypeError(f"not an intake field: {key}")
        if getattr(screening, key) != value:
            changed[key] = (getattr(screening, key), value)
            setattr(screening, key, value)
    return changed


def _pregnant(status: str) -> bool | None:
    return {PregnancyStatus.PREGNANT: True, PregnancyStatus.NOT_PREGNANT: False,
            PregnancyStatus.NOT_APPLICABLE: False}.get(status)  # type: ignore[call-overload]


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def build_intake(screening: Screening, assessed_on: dt.date) -> dict[str, Any]:
    """The contract-format intake: the patient's record now plus the intake-only fields.

    Raises IntakeInvalid naming the field when the record lacks something the rules need.
    """
    patient = screening.patient
    measurement = patient.latest_measurement(on=assessed_on)
    if measurement is None:
        raise IntakeInvalid("patient.weight_kg", "no weight recorded for this patient; record it first")
    person: dict[str, Any] = {"birth_date": patient.birth_date.isoformat(), "sex": patient.sex,
                              "weight_kg": _number(measurement.weight_kg)}
    if measurement.height_cm is not None:
        person["height_cm"] = _number(measurement.height_cm)
    person["pregnant"] = _pregnant(patient.pregnancy_status)
    person["breastfeeding"] = patient.breastfeeding
    data: dict[str, Any] = {
        "protocol": screening.protocol,
        "assessed_on": assessed_on.isoformat(),
        "patient": person,
        "hepatic_impairment": screening.hepatic_impairment,
        "conditions": [{"system": "icd-10-cm", "code": p.icd10_code, "status": p.status,
                        "description": p.description}
                       for p in patient.problems.order_by("icd10_code", "id")],
        "medications": [{"atc": m.atc_code, "name": m.name}
                        for m in patient.medications.filter(active=True).order_by("atc_code", "id")],
        "allergies": [{"substance": a.substance}
                      for a in patient.allergies.filter(active=True).order_by("substance", "id")],
    }
    vitals = {k: getattr(screening, k) for k in ("systolic", "diastolic", "heart_rate", "spo2")
              if getattr(screening, k) is not None}
    if vitals:
        data["vitals"] = vitals
    scales = {k: list(v) for k, v in (("phq9", screening.phq9), ("cssrs_screen", screening.cssrs_screen))
              if v is not None}
    if scales:
        data["scales"] = scales
    return data


@transaction.atomic
def do_complete_screening(*, actor: Any, screening: Screening, request: HttpRequest | None = None,
                          assessed_on: dt.date | None = None, **fields: Any) -> Screening:
    """Save the intake fields and run the active rule set. On IntakeInvalid nothing is saved."""
    require_capability(actor, "start_intake")
    screening = _locked(screening)
    if not screening.is_open:
        raise ScreeningNotEditable("This screening is closed; start a new one.")
    _apply_fields(screening, fields)
    data = build_intake(screening, assessed_on or clinic_today())
    return _run(screening, data, actor=actor, request=request)


def _run(screening: Screening, data: dict[str, Any], *, actor: Any, request: HttpRequest | None) -> Screening:
    intake = parse_intake(data)  # IntakeInvalid propagates and rolls everything back
    version = active_ruleset()
    decision = screen(intake, version.ruleset())
    RuleSetVersion.objects.filter(pk=version.pk, used=False).update(used=True)
    before = screening.status
    _transition(screening, Status.COMPLETED)
    screening.assessed_on = intake.assessed_on
    screening.intake = data
    screening.decision = decision.as_dict()
    screening.outcome = decision.decision.value
    screening.ruleset = version
    screening.rules_version = version.version
    screening.completed_by = actor
    screening.completed_at = timezone.now()
    screening.full_clean()
    screening.save()
    audit.record("update", actor=actor, request=request, patient=screening.patient, obj=screening,
                 before={"status": before},
                 after={"status": screening.status, "outcome": screening.outcome,
                        "rules_version": screening.rules_version,
                        "findings": [f.rule for f in decision.findings]},
                 detail="screening run")
    return screening


@transaction.atomic
def do_screen_from_api(*, actor: Any, patient: Patient, data: dict[str, Any], indication: str = "",
                       request: HttpRequest | None = None) -> Screening:
    """Record a screening from a contract-format intake sent by an integration, and run it.

    The intake is screened as sent; it must be about this patient (birth date and sex match)."""
    require_capability(actor, "start_intake")
    intake = parse_intake(data)
    if intake.patient.birth_date != patient.birth_date:
        raise IntakeInvalid("patient.birth_date", "does not match the patient's record")
    if intake.patient.sex != patient.sex:
        raise IntakeInvalid("patient.sex", "does not match the patient's record")
    vitals = intake.vitals or Vitals()
    screening = do_start_intake(
        actor=actor, patient=patient, protocol=intake.protocol, request=request,
        indication=indication or "(from intake API)", hepatic_impairment=intake.hepatic_impairment.value,
        systolic=_whole(vitals.systolic), diastolic=_whole(vitals.diastolic),
        heart_rate=_whole(vitals.heart_rate), spo2=_whole(vitals.spo2),
        phq9=list(intake.scales.phq9) if intake.scales.phq9 is not None else None,
        cssrs_screen=list(intake.scales.cssrs_screen) if intake.scales.cssrs_screen is not None else None)
    return _run(_locked(screening), data, actor=actor, request=request)


def _whole(value: float | None) -> int | None:
    # The columns are for display; the stored `intake` (what the rules saw) keeps exact values.
    return int(value) if value is not None and float(value).is_integer() else None


# --- Sign-off --------------------------------------------------------------------------------

def _refused(fn: Any) -> Any:
    """Run a sign-off; on refusal, audit it *after* the refused change rolled back."""
    def wrapped(*, actor: Any, screening: Screening, request: HttpRequest | None = None, **kw: Any) -> Any:
        try:
            return fn(actor=actor, screening=screening, request=request, **kw)
        except ScreeningRefused as exc:
            audit.record("refused", actor=actor, request=request, patient=screening.patient_id,
                         obj=screening, detail=f"{fn.__name__}: {type(exc).__name__}: {exc}")
            raise
    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


def _check_signable(actor: Any, screening: Screening) -> None:
    if not has_capability(actor, "sign_screening"):
        raise NotAllowedToSign("Only a prescriber can sign a screening.")
    if screening.status in DECIDED_STATUSES or screening.signed_at is not None:
        raise AlreadySigned(f"This screening was already signed by {screening.signed_by} on "
                            f"{timezone.localtime(screening.signed_at):%Y-%m-%d %H:%M}; "
                            "start a new screening to change it.")
    if screening.status != Status.COMPLETED:
        raise ScreeningNotCompleted("Run the screening before signing it.")
    if screening.patient.clinical_changed_at > screening.completed_at:  # type: ignore[operator]
        raise InputsChangedSinceScreening("The patient's history changed after this screening ran; "
                                          "run it again before signing.")


@_refused
@transaction.atomic
def do_sign_screening(*, actor: Any, screening: Screening, justifications: Mapping[str, str] | None = None,
                      request: HttpRequest | None = None) -> Screening:
    """Prescriber signs an eligible or needs_review screening (see the module guarantees)."""
    screening = _locked(screening)
    _check_signable(actor, screening)
    if screening.outcome == "ineligible":
        raise IneligibleCannotBeSigned("An ineligible screening cannot be signed as eligible; "
                                       "record \"not treated\" with a reason instead.")
    given = {k: (v or "").strip() for k, v in (justifications or {}).items()}
    warnings = sorted({f["rule"] for f in screening.warnings})
    missing = [rule for rule in warnings if len(given.get(rule, "")) < MIN_JUSTIFICATION]
    if missing:
        raise JustificationMissing(missing)
    screening.justifications = {rule: given[rule] for rule in warnings}
    return _decide(screening, Status.SIGNED, actor=actor, request=request)


@_refused
@transaction.atomic
def do_record_not_treated(*, actor: Any, screening: Screening, reason: str,
                          request: HttpRequest | None = None) -> Screening:
    """Prescriber records that the patient will not be treated under this protocol, with a reason."""
    screening = _locked(screening)
    _check_signable(actor, screening)
    if len((reason or "").strip()) < MIN_JUSTIFICATION:
        raise ReasonRequired(f"Give a reason (at least {MIN_JUSTIFICATION} characters).")
    screening.not_treated_reason = reason.strip()
    return _decide(screening, Status.NOT_TREATED, actor=actor, request=request)


def _decide(screening: Screening, to: str, *, actor: Any, request: HttpRequest | None) -> Screening:
    before = screening.status
    _transition(screening, to)
    screening.signed_by = actor
    screening.signed_at = timezone.now()
    screening.save()
    audit.record("update", actor=actor, request=request, patient=screening.patient, obj=screening,
                 before={"status": before},
                 after={"status": screening.status, "outcome": screening.outcome,
                        "justifications": screening.justifications,
                        "not_treated_reason": screening.not_treated_reason},
                 detail="screening signed" if to == Status.SIGNED else "not treated")
    for old in Screening.objects.select_for_update().filter(
            patient_id=screening.patient_id, protocol=screening.protocol,
            status__in=DECIDED_STATUSES).exclude(pk=screening.pk):
        _supersede(old, screening, actor=actor, request=request)
    return screening


# --- Rule set versions -----------------------------------------------------------------------

@transaction.atomic
def do_create_ruleset_version(*, actor: Any, base: RuleSetVersion, version: str,
                              thresholds: Mapping[str, int] | None = None,
                              severities: Mapping[str, str] | None = None, note: str = "",
                              request: HttpRequest | None = None) -> RuleSetVersion:
    """Derive a new, immutable rule set version. Raises RuleSetInvalid (lowered severity,
    threshold out of range, name taken)."""
    require_capability(actor, "configure_clinic")
    if RuleSetVersion.objects.filter(version=version).exists():
        raise RuleSetInvalid(f"version {version!r} already exists")
    derived = base.ruleset().derive(version, thresholds=thresholds, severities=severities)
    row = RuleSetVersion(version=derived.version, based_on=base, thresholds=dict(derived.thresholds),
                         severities={k: str(v) for k, v in derived.severities.items()}, note=note,
                         created_by=actor)
    row.save()
    base_set = base.ruleset()
    audit.record("create", actor=actor, request=request, obj=row,
                 after={"version": row.version, "based_on": base.version,
                        "thresholds": {k: v for k, v in derived.thresholds.items()
                                       if base_set.thresholds.get(k) != v},
                        "severities": {k: str(v) for k, v in derived.severities.items()
                                       if base_set.severities.get(k) != v}})
    return row


@transaction.atomic
def do_activate_ruleset(*, actor: Any, ruleset: RuleSetVersion,
                        request: HttpRequest | None = None) -> RuleSetVersion:
    """Make `ruleset` the one new screenings use (earlier decisions keep the version they used)."""
    require_capability(actor, "configure_clinic")
    previous = active_ruleset()
    RuleSetVersion.objects.filter(pk=ruleset.pk).update(activated_at=timezone.now())
    audit.record("update", actor=actor, request=request, obj=ruleset,
                 before={"active": previous.version}, after={"active": ruleset.version})
    ruleset.refresh_from_db()
    return ruleset


def rule_titles() -> dict[str, str]:
    return {rule_id: spec.title for rule_id, spec in RULES.items()}
