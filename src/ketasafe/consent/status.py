"""Where a patient stands on consent for a protocol at a moment (reads only; used by the gate)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from ketasafe.patients.models import Patient

from .gate import CONSENT_MISSING, CONSENT_STALE, CONSENT_WITHDRAWN, REMS_ENROLLMENT_MISSING, GateProblem
from .models import REMS_PROTOCOLS, ConsentDocument, ConsentSignature, ConsentVersion, Kind


def _day(at: dt.datetime) -> dt.date:
    return timezone.localtime(at).date()


def current_version(document: ConsentDocument | None, at: dt.datetime) -> ConsentVersion | None:
    """The published version in force at `at`: the highest version number among those published
    by `at` whose effective date has come. (Publishing refuses a version dated before the latest
    published one, so a higher number never hides behind an earlier date.)"""
    if document is None:
        return None
    return (document.versions.filter(published=True, published_at__lte=at, effective_date__lte=_day(at))
            .order_by("-version").first())


def _fmt(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class ConsentState:
    kind: str
    document: ConsentDocument | None
    current: ConsentVersion | None
    signature: ConsentSignature | None  # the latest signature (possibly withdrawn or stale)
    problem: GateProblem | None


def treatment_consent(patient: Patient, protocol: str, at: dt.datetime) -> ConsentState:
    document = ConsentDocument.objects.filter(protocol=protocol, kind=Kind.TREATMENT).first()
    current = current_version(document, at)
    signature = (ConsentSignature.objects.filter(patient_id=patient.pk, version__document=document,
                                                 signed_at__lte=at)
                 .select_related("version", "witness").order_by("-signed_at", "-id").first()
                 if document else None)
    problem = None
    if signature is None:
        problem = GateProblem(CONSENT_MISSING,
                              f"No treatment consent is published for {protocol}." if current is None else
                              f"The patient has not signed \"{current.title}\" (version {current.version}).")
    elif signature.withdrawn_at is not None and signature.withdrawn_at <= at:
        problem = GateProblem(CONSENT_WITHDRAWN, f"The patient withdrew consent on {_fmt(signature.withdrawn_at)}.")
    elif current is None or signature.version_id != current.pk:
        newer = f"version {current.version}, in force since {current.effective_date:%Y-%m-%d}" if current else \
            "no version currently in force"
        problem = GateProblem(CONSENT_STALE, f"The patient signed version {signature.version.version}; "
                              f"the consent now is {newer}: sign again.")
    return ConsentState(Kind.TREATMENT, document, current, signature, problem)


def rems_enrollment(patient: Patient, protocol: str, at: dt.datetime) -> ConsentState | None:
    """None for protocols without a REMS. Enrollment is per patient: any esketamine protocol's."""
    if protocol not in REMS_PROTOCOLS:
        return None
    document = ConsentDocument.objects.filter(protocol=protocol, kind=Kind.REMS_ENROLLMENT).first()
    current = current_version(document, at)
    signature = (ConsentSignature.objects.filter(patient_id=patient.pk, version__document__kind=Kind.REMS_ENROLLMENT,
                                                 version__document__protocol__in=REMS_PROTOCOLS, signed_at__lte=at)
                 .select_related("version", "witness", "prescriber").order_by("-signed_at", "-id").first())
    problem = None
    if signature is None:
        problem = GateProblem(REMS_ENROLLMENT_MISSING,
                              "The patient is not enrolled in the SPRAVATO REMS (patient and prescriber "
                              "sign the enrollment before the first treatment).")
    elif signature.withdrawn_at is not None and signature.withdrawn_at <= at:
        problem = GateProblem(REMS_ENROLLMENT_MISSING,
                              f"The REMS enrollment was withdrawn on {_fmt(signature.withdrawn_at)}.")
    return ConsentState(Kind.REMS_ENROLLMENT, document, current, signature, problem)


def consent_problems(patient: Patient, protocol: str, at: dt.datetime) -> list[GateProblem]:
    states = [treatment_consent(patient, protocol, at), rems_enrollment(patient, protocol, at)]
    return [s.problem for s in states if s is not None and s.problem is not None]
