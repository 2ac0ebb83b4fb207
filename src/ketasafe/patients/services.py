"""Every change to the registry, each in one transaction with its audit entry (STYLE §3)."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone

from ketasafe import audit
from ketasafe.accounts.access import require_capability

from .models import Allergy, Measurement, Medication, Patient, Problem, normalise_mrn

# Changes to these make any signed screening stale (issue 3): they are screening inputs.
SCREENING_INPUT_MODELS = (Allergy, Medication, Problem)
SCREENING_INPUT_FIELDS = {"pregnancy_status", "breastfeeding", "birth_date", "sex"}


def lock_patient(patient_id: int) -> None:
    """Row-lock a patient until the transaction ends: the lock that serialises everything done
    for one patient across apps (schedules, orders, session steps, screenings). FOR NO KEY
    UPDATE, taken before the first audit entry (the rule in audit/services.py); taken again in
    the same transaction it is a no-op."""
    Patient.objects.select_for_update(no_key=True).filter(pk=patient_id).values_list("pk").first()


def _snapshot(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in fields}


def get_patient_for(request: HttpRequest, patient_id: int, *, capability: str = "view_patients",
                    action: str = "view", detail: str = "") -> Patient:
    """Fetch a patient for a page, checking the role and auditing the access (compliance B.3).

    A missing patient is a 404; a role without the capability is a 403 (and nothing is shown).
    """
    require_capability(request.user, capability)
    patient = get_object_or_404(Patient, pk=patient_id)
    audit.record(action, request=request, patient=patient, obj=patient, detail=detail or request.path)
    return patient


@transaction.atomic
def do_register_patient(*, actor: Any, request: HttpRequest | None = None, **fields: Any) -> Patient:
    patient = Patient(clinical_changed_at=timezone.now(), **fields)
    patient.full_clean()
    patient.save()
    audit.record("create", actor=actor, request=request, patient=patient, obj=patient,
                 after=_snapshot(patient, list(fields)))
    return patient


@transaction.atomic
def do_update_patient(*, actor: Any, patient: Patient, request: HttpRequest | None = None,
                      **fields: Any) -> Patient:
    patient = Patient.objects.select_for_update(no_key=True).get(pk=patient.pk)
    if "mrn" in fields:  # compared (and audited) as it will be stored (Patient.clean)
        fields["mrn"] = normalise_mrn(fields["mrn"])
    changed = {k: v for k, v in fields.items() if getattr(patient, k) != v}
    if not changed:
        return patient
    before = _snapshot(patient, list(changed))
    for key, value in changed.items():
        setattr(patient, key, value)
    if SCREENING_INPUT_FIELDS & changed.keys():
        patient.clinical_changed_at = timezone.now()
    patient.full_clean()
    # The entry before the row: changing the MRN (a unique key) takes the row FOR UPDATE, which
    # the commit-time key check of another transaction's entry naming this patient waits for,
    # while that transaction holds the audit chain: written first, this one waits for it instead.
    audit.record("update", actor=actor, request=request, patient=patient, obj=patient,
                 before=before, after=changed)
    patient.save()
    return patient


def _touch_clinical(patient: Patient) -> None:
    Patient.objects.filter(pk=patient.pk).update(clinical_changed_at=timezone.now())


@transaction.atomic
def do_add_record(*, actor: Any, patient: Patient, model: type[models.Model],
                  request: HttpRequest | None = None, **fields: Any) -> models.Model:
    """Add an allergy, medication, problem or measurement to a patient."""
    obj = model(patient=patient, **fields)
    obj.full_clean()
    obj.save()
    if model in SCREENING_INPUT_MODELS:
        _touch_clinical(patient)
    audit.record("create", actor=actor, request=request, patient=patient, obj=obj,
                 after=_snapshot(obj, [f for f in fields if f != "recorded_by"]))
    return obj


@transaction.atomic
def do_update_record(*, actor: Any, obj: models.Model, request: HttpRequest | None = None,
                     **fields: Any) -> models.Model:
    """Change fields of a history record (e.g. a problem's status, a medication stopped)."""
    obj = type(obj).objects.select_for_update(no_key=True).get(pk=obj.pk)  # type: ignore[attr-defined]
    changed = {k: v for k, v in fields.items() if getattr(obj, k) != v}
    if not changed:
        return obj
    before = _snapshot(obj, list(changed))
    for key, value in changed.items():
        setattr(obj, key, value)
    obj.full_clean()
    obj.save()
    patient = obj.patient  # type: ignore[attr-defined]
    if isinstance(obj, SCREENING_INPUT_MODELS):
        _touch_clinical(patient)
    audit.record("update", actor=actor, request=request, patient=patient, obj=obj,
                 before=before, after=changed)
    return obj


def record_measurement(*, actor: Any, patient: Patient, request: HttpRequest | None = None,
                       **fields: Any) -> Measurement:
    obj = do_add_record(actor=actor, patient=patient, model=Measurement, request=request,
                        recorded_by=actor, **fields)
    assert isinstance(obj, Measurement)
    return obj
