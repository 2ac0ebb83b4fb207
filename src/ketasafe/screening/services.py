"""Every change to screening records, each atomic with its audit entry (STYLE §3).

Guarantees:
- Only a prescriber (capability sign_screening) signs. `eligible` is signed as is; `needs_review`
  needs a written justification for each warning; `ineligible` is never signed, only recorded as
  "not treated" with a reason. A signed screening is never changed; a second signature is refused.
- Every refused sign-off raises a ScreeningRefused and leaves an audit "refused" entry that
  survives the rollback of the refused change (it is written after the inner transaction ends).
- A screening stores the exact intake the rules saw, the decision with every finding (message,
  evidence, source) and the rule set version; a version is marked used by its first decision.
- A completed screening is a record: its inputs and decision never change, and it never goes back
  to draft. Saving or running a changed intake starts a new screening with its intake fields
  copied; the completed one keeps counting (eligibility, the treatment gate) until then.
- A newer screening supersedes older ones for the same patient and protocol: drafts when it
  starts, open ones (drafts and completed) when it completes, decided ones when it is signed or
  recorded as not treated.
- What is signed is what the prescriber saw: a sign-off carries the decision token of the page it
  came from, and is refused (ScreeningChanged, audited) when the screening ran again since.
- An assessment already older than the clinic's validity period cannot be signed (ScreeningTooOld).
- The intake API screens the patient's record, never the caller's copy of it: history, medications,
  allergies, pregnancy, breastfeeding and weight come from the record (a body that contradicts it
  is refused naming the field), the assessment date is today in the clinic's zone, and only the
  intake-only inputs (vitals, scales, hepatic impairment, indication, substance use, drug screen)
  are taken from the body.
- Concurrent changes to one patient's screenings run one after the other, never deadlock: every
  path locks in one order, the patient's row first (patients.services.lock_patient), then screening rows, then the
  rule set version it marks used, all before its first audit entry (the audit chain head is
  locked until commit). The second caller then sees what the first did (a superseded screening is
  refused, a newer run supersedes). PostgreSQL needs this; SQLite queues writers anyway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ketasafe import audit
from ketasafe.accounts.access import has_capability, require_capability
from ketasafe.clinic.models import ClinicSettings
from ketasafe.lib.timeutil import clinic_today
from ketasafe.patients.models import Patient, PregnancyStatus
from ketasafe.patients.services import lock_patient

from .eligibility import assessed_at, screening_expires_at
from .exceptions import IntakeInvalid, RuleSetInvalid
from .intake import Intake, Vitals, parse_intake
from .models import (
    DECIDED_STATUSES,
    OPEN_STATUSES,
    TRANSITIONS,
    DrugScreen,
    RuleSetVersion,
    Screening,
    Status,
)
from .refusals import (
    AlreadySigned,
    IneligibleCannotBeSigned,
    InputsChangedSinceScreening,
    JustificationMissing,
    NotAllowedToSign,
    ReasonRequired,
    ScreeningChanged,
    ScreeningNotCompleted,
    ScreeningNotEditable,
    ScreeningRefused,
    ScreeningTooOld,
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
                    request: HttpRequest | None = None, copied_from: Screening | None = None,
                    **fields: Any) -> Screening:
    """Start a draft intake (front desk, nurse or prescriber). Supersedes draft intakes for the
    same patient and protocol, so there is at most one draft in progress. A completed screening
    awaiting sign-off is not superseded here: its decision keeps counting until a newer screening
    has run (_run)."""
    require_capability(actor, "start_intake")
    lock_patient(patient.pk)
    screening = Screening(patient=patient, protocol=protocol, indication=indication, started_by=actor,
                          **{k: v for k, v in fields.items() if k in INTAKE_FIELDS})
    screening.full_clean()
    screening.save()
    after: dict[str, Any] = {"protocol": protocol, "indication": indication, "status": screening.status}
    if copied_from is not None:
        after["copied_from"] = copied_from.pk
    audit.record("create", actor=actor, request=request, patient=patient, obj=screening, after=after)
    for old in Screening.objects.select_for_update(no_key=True).filter(
            patient=patient, protocol=protocol, status=Status.DRAFT).exclude(pk=screening.pk):
        _supersede(old, screening, actor=actor, request=request)
    return screening


def _copy(completed: Screening, *, actor: Any, request: HttpRequest | None) -> Screening:
    """A new draft with `completed`'s intake fields: how a completed screening's inputs change
    without touching the record of what was decided."""
    fields = {k: getattr(completed, k) for k in INTAKE_FIELDS if k != "indication"}
    return do_start_intake(actor=actor, patient=completed.patient, protocol=completed.protocol,
                           indication=completed.indication, request=request, copied_from=completed, **fields)


def _supersede(old: Screening, new: Screening, *, actor: Any, request: HttpRequest | None) -> None:
    before = old.status
    _transition(old, Status.SUPERSEDED)
    old.superseded_by = new
    old.superseded_at = timezone.now()
    old.save(update_fields=["status", "superseded_by", "superseded_at"])
    audit.record("update", actor=actor, request=request, patient=old.patient_id, obj=old,
                 before={"status": before}, after={"status": old.status, "superseded_by": new.pk})


def _locked(screening: Screening) -> Screening:
    """The screening, re-read and row-locked, after its patient's row (always in that order:
    the row lock of the join would otherwise take the screening first and then wait for the
    patient while holding it)."""
    lock_patient(screening.patient_id)
    return Screening.objects.select_for_update(of=("self",), no_key=True).select_related("patient").get(pk=screening.pk)


def _ruleset_for_run() -> RuleSetVersion:
    """The active rule set version, marked used. Called before the run's first audit entry: the
    first use locks the version's row (a write), and every run must take it before the audit
    chain head, or two runs of different patients deadlock. Rolled back with the run."""
    version = active_ruleset()
    RuleSetVersion.objects.filter(pk=version.pk, used=False).update(used=True)
    return version


@transaction.atomic
def do_save_intake(*, actor: Any, screening: Screening, request: HttpRequest | None = None,
                   **fields: Any) -> Screening:
    """Save intake-only fields without screening; return the screening that holds them.

    A draft is saved in place. A completed screening is never changed: when the fields differ
    from it, they are saved on a new draft copied from it (audited as created from it), and the
    completed one keeps counting until a newer screening has run. Unchanged fields write nothing.
    """
    require_capability(actor, "start_intake")
    screening = _locked(screening)
    if not screening.is_open:
        raise ScreeningNotEditable("This screening is closed; start a new one.")
    if screening.status == Status.COMPLETED:
        if not _differs(screening, fields):
            return screening
        screening = _copy(screening, actor=actor, request=request)
    changed = _apply_fields(screening, fields)
    screening.full_clean()
    screening.save()
    if changed:
        audit.record("update", actor=actor, request=request, patient=screening.patient, obj=screening,
                     before={k: v[0] for k, v in changed.items()}, after={k: v[1] for k, v in changed.items()})
    return screening


def _differs(screening: Screening, fields: Mapping[str, Any]) -> bool:
    return any(getattr(screening, key) != value for key, value in fields.items() if key in INTAKE_FIELDS)


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
    """Save the intake fields and run the active rule set; return the screening that ran.

    A draft runs in place. A completed screening is never run again: a new screening copied from
    it (with `fields` applied) runs instead and, having run, supersedes it. On IntakeInvalid
    nothing is saved (no copy either)."""
    require_capability(actor, "start_intake")
    screening = _locked(screening)
    if not screening.is_open:
        raise ScreeningNotEditable("This screening is closed; start a new one.")
    version = _ruleset_for_run()  # before _copy writes the audit
    if screening.status == Status.COMPLETED:
        screening = _copy(screening, actor=actor, request=request)
    _apply_fields(screening, fields)
    data = build_intake(screening, assessed_on or clinic_today())
    return _run(screening, data, version, actor=actor, request=request)


def _run(screening: Screening, data: dict[str, Any], version: RuleSetVersion, *, actor: Any,
         request: HttpRequest | None) -> Screening:
    """Run `version` (from _ruleset_for_run) on `screening`, locked by the caller (_locked)."""
    intake = parse_intake(data)  # IntakeInvalid propagates and rolls everything back
    decision = screen(intake, version.ruleset())
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
    # Only now, with a decision of its own, does the new screening replace the older open ones
    # (a completed one's decision counted until this moment).
    for old in Screening.objects.select_for_update(no_key=True).filter(
            patient_id=screening.patient_id, protocol=screening.protocol,
            status__in=OPEN_STATUSES).exclude(pk=screening.pk):
        _supersede(old, screening, actor=actor, request=request)
    return screening


# Intake-only text an integration may send next to the contract intake: {field: max length}.
API_TEXT_FIELDS = {"indication": 200, "substance_use_history": 2000, "drug_screen_detail": 200}


def api_text(value: object, field: str) -> str:
    """Validate one intake-only text field of the API body ("" when absent)."""
    limit = API_TEXT_FIELDS[field]
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise IntakeInvalid(field, f"must be text of at most {limit} characters")
    if "\x00" in value:
        # PostgreSQL cannot store a NUL in a text column (it would be a 500, not a 400).
        raise IntakeInvalid(field, "must not contain a NUL character")
    return value.strip()


def _api_drug_screen(value: object) -> str:
    if value is None:
        return DrugScreen.NOT_DONE
    if not isinstance(value, str) or value not in DrugScreen.values:
        raise IntakeInvalid("drug_screen", "must be one of " + ", ".join(DrugScreen.values))
    return value


def _api_vital(value: float | None, field: str) -> int | None:
    # The columns (and so the record of what was measured) hold whole numbers, as the form does.
    if value is None:
        return None
    if not float(value).is_integer():
        raise IntakeInvalid(field, f"{value} must be a whole number")
    return int(value)


def _icd_key(code: str) -> str:
    return code.strip().upper().replace(".", "")


def _substance_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _same_set(field: str, sent: Mapping[Any, str], recorded: Mapping[Any, str], where: str) -> None:
    """Compare as sets of normalized keys (order, case and duplicates do not matter); the values
    are how each entry is shown in the error."""
    if sent.keys() == recorded.keys():
        return
    differences = []
    if missing := sorted(recorded[k] for k in recorded.keys() - sent.keys()):
        differences.append("the record has " + ", ".join(missing) + " which the intake lacks")
    if extra := sorted(sent[k] for k in sent.keys() - recorded.keys()):
        differences.append("the intake has " + ", ".join(extra) + " which the record lacks")
    raise IntakeInvalid(field, f"does not match the patient's {where} ({'; '.join(differences)}); "
                               "update the record on the patient page, it is what is screened")


def _check_against_record(data: Mapping[str, Any], intake: Intake, record: Mapping[str, Any]) -> None:
    """Refuse a body whose history contradicts the patient's record, naming the field.

    Lists and patient fields the body leaves out are not compared: the record is screened anyway.
    """
    sent_patient = data.get("patient") or {}
    person = record["patient"]
    if intake.patient.birth_date.isoformat() != person["birth_date"]:
        raise IntakeInvalid("patient.birth_date", "does not match the patient's record")
    if intake.patient.sex != person["sex"]:
        raise IntakeInvalid("patient.sex", "does not match the patient's record")
    if abs(intake.patient.weight_kg - person["weight_kg"]) >= 0.05:  # the record keeps 0.1 kg
        raise IntakeInvalid("patient.weight_kg", f"{intake.patient.weight_kg} does not match the patient's "
                                                 f"latest recorded weight ({person['weight_kg']} kg)")
    if intake.patient.height_cm is not None and (
            person.get("height_cm") is None or abs(intake.patient.height_cm - person["height_cm"]) >= 0.05):
        raise IntakeInvalid("patient.height_cm", f"{intake.patient.height_cm} does not match the patient's "
                                                 f"recorded height ({person.get('height_cm') or 'none recorded'})")
    for key in ("pregnant", "breastfeeding"):
        if key in sent_patient and getattr(intake.patient, key) != person[key]:
            raise IntakeInvalid(f"patient.{key}", f"{json.dumps(getattr(intake.patient, key))} does not match "
                                                  f"the patient's record ({json.dumps(person[key])})")
    if data.get("conditions") is not None:
        _same_set("conditions", {(_icd_key(c.code), str(c.status)): f"{c.code} {c.status}" for c in intake.conditions},
                  {(_icd_key(c["code"]), c["status"]): f"{c['code']} {c['status']}" for c in record["conditions"]},
                  "problem list")
    if data.get("medications") is not None:
        _same_set("medications", {m.atc.strip().upper(): m.atc for m in intake.medications},
                  {m["atc"].strip().upper(): m["atc"] for m in record["medications"]}, "active medications")
    if data.get("allergies") is not None:
        _same_set("allergies", {_substance_key(a.substance): a.substance for a in intake.allergies},
                  {_substance_key(a["substance"]): a["substance"] for a in record["allergies"]}, "allergies")


@transaction.atomic
def do_screen_from_api(*, actor: Any, patient: Patient, data: dict[str, Any], indication: object = None,
                       substance_use_history: object = None, drug_screen: object = None,
                       drug_screen_detail: object = None, request: HttpRequest | None = None) -> Screening:
    """Screen `patient`'s record today, with the intake-only inputs an integration sent.

    `data` is a contract-format intake. It must be about this patient, assessed today (clinic
    zone), and agree with the record wherever it states history; otherwise IntakeInvalid names the
    field and nothing is saved. The rules see the record (build_intake), as a form screening does.
    """
    require_capability(actor, "start_intake")
    intake = parse_intake(data)
    today = clinic_today()
    if intake.assessed_on != today:
        raise IntakeInvalid("assessed_on", f"{intake.assessed_on.isoformat()} is not today in the clinic "
                                           f"({today.isoformat()}); the API screens the patient as they are now")
    vitals = intake.vitals or Vitals()
    fields: dict[str, Any] = {
        "indication": api_text(indication, "indication") or "(from intake API)",
        "substance_use_history": api_text(substance_use_history, "substance_use_history"),
        "drug_screen": _api_drug_screen(drug_screen),
        "drug_screen_detail": api_text(drug_screen_detail, "drug_screen_detail"),
        "hepatic_impairment": intake.hepatic_impairment.value,
        **{k: _api_vital(getattr(vitals, k), f"vitals.{k}") for k in ("systolic", "diastolic", "heart_rate", "spo2")},
        "phq9": list(intake.scales.phq9) if intake.scales.phq9 is not None else None,
        "cssrs_screen": list(intake.scales.cssrs_screen) if intake.scales.cssrs_screen is not None else None,
    }
    lock_patient(patient.pk)  # first (module guarantees), and before the record is read below
    # Compare with the record before anything is written, so a refusal leaves no trace.
    draft = Screening(patient=patient, protocol=intake.protocol, **fields)
    _check_against_record(data, intake, build_intake(draft, today))
    version = _ruleset_for_run()  # before do_start_intake writes the audit
    screening = do_start_intake(actor=actor, patient=patient, protocol=intake.protocol, request=request, **fields)
    screening = _locked(screening)
    return _run(screening, build_intake(screening, today), version, actor=actor, request=request)


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


def decision_token(screening: Screening) -> str:
    """A digest of the decision as it stands: a sign-off form carries the token of the page the
    prescriber read, and the service refuses it if the screening changed since (superseded by a
    newer run, or decided)."""
    state = {"id": screening.pk, "status": screening.status, "outcome": screening.outcome,
             "completed_at": screening.completed_at.isoformat() if screening.completed_at else None,
             "rules_version": screening.rules_version, "decision": screening.decision}
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _check_signable(actor: Any, screening: Screening, expected_token: str | None) -> None:
    """`expected_token` None: a caller in code (demo, commands) signs the row as it stands; a form
    always passes the token it was rendered with ("" when missing, which never matches)."""
    if not has_capability(actor, "sign_screening"):
        raise NotAllowedToSign("Only a prescriber can sign a screening.")
    if screening.status in DECIDED_STATUSES or screening.signed_at is not None:
        raise AlreadySigned(f"This screening was already signed by {screening.signed_by} on "
                            f"{timezone.localtime(screening.signed_at):%Y-%m-%d %H:%M}; "
                            "start a new screening to change it.")
    if expected_token is not None and expected_token != decision_token(screening):
        raise ScreeningChanged("This screening changed since you opened it (a newer screening ran or it was "
                               "decided); review the current screening and sign that.")
    if screening.status == Status.SUPERSEDED:
        raise ScreeningNotCompleted(f"This screening was superseded by screening {screening.superseded_by_id}; "
                                    "review and sign that one.")
    if screening.status != Status.COMPLETED:
        raise ScreeningNotCompleted("Run the screening before signing it.")
    if screening.patient.clinical_changed_at > screening.completed_at:  # type: ignore[operator]
        raise InputsChangedSinceScreening("The patient's history changed after this screening ran; "
                                          "run it again before signing.")


def _check_fresh(screening: Screening) -> None:
    """Signing starts no clock: validity counts from the assessment, so one already past the
    clinic's validity period would be signed expired. (Recording "not treated" stays allowed.)"""
    months = ClinicSettings.current().screening_validity_months
    if timezone.now() >= screening_expires_at(screening, months):
        raise ScreeningTooOld(f"This screening assessed the patient on "
                              f"{timezone.localtime(assessed_at(screening)):%Y-%m-%d}, more than the clinic's "
                              f"validity period ({months} months) ago; run a new screening before signing.")


@_refused
@transaction.atomic
def do_sign_screening(*, actor: Any, screening: Screening, justifications: Mapping[str, str] | None = None,
                      expected_token: str | None = None, request: HttpRequest | None = None) -> Screening:
    """Prescriber signs an eligible or needs_review screening (see the module guarantees)."""
    screening = _locked(screening)
    _check_signable(actor, screening, expected_token)
    _check_fresh(screening)
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
def do_record_not_treated(*, actor: Any, screening: Screening, reason: str, expected_token: str | None = None,
                          request: HttpRequest | None = None) -> Screening:
    """Prescriber records that the patient will not be treated under this protocol, with a reason."""
    screening = _locked(screening)
    _check_signable(actor, screening, expected_token)
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
    for old in Screening.objects.select_for_update(no_key=True).filter(
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
