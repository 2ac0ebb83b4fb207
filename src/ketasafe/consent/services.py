"""Every change to consent records, each atomic with its audit entry (STYLE §3).

Guarantees:
- A version is written as a draft, then published once; a published version never changes.
- Published versions of a document go forward: a version is refused (at drafting and at
  publishing) when its effective date is before the latest published version's, and a version
  numbered below the latest published one cannot be published. So the current version is simply
  the highest-numbered published one in effect.
- Only the version in force now can be signed. The patient's typed name must match the
  registered name; the drawn signature must be a non-blank PNG; the witness (and, for a REMS
  enrollment, the prescriber) must hold the right capability and have re-entered their password
  (checked by the caller: `verify_staff_password`).
- Withdrawal stamps the signature and takes effect at once; it is never undone (sign again).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from ketasafe import audit
from ketasafe.accounts.access import has_capability, require_capability
from ketasafe.patients.models import Patient

from .exceptions import (
    AlreadyWithdrawn,
    ConsentInputInvalid,
    ConsentVersionLocked,
    ConsentVersionNotCurrent,
    SignerNotAllowed,
)
from .models import REMS_PROTOCOLS, ConsentDocument, ConsentSignature, ConsentVersion, Kind
from .signature_image import PNG_MAGIC
from .status import current_version

WITNESS_CAPABILITY = "witness_consent"
PRESCRIBER_CAPABILITY = "order_treatment"  # held by prescribers only (accounts/roles.py)


def normalized_name(name: str) -> str:
    return " ".join(name.split()).casefold()


def verify_staff_password(request: HttpRequest | None, username: str, password: str) -> Any | None:
    """The active staff member with these credentials, or None. Goes through the auth backends,
    so failures count towards lockout and are audited as login_failed."""
    if not username or not password:
        return None
    user = authenticate(request, username=username, password=password)
    return user if user is not None and user.is_active else None


@transaction.atomic
def do_create_version(*, actor: Any, protocol: str, kind: str, title: str, body: str,
                      effective_date: dt.date, request: HttpRequest | None = None) -> ConsentVersion:
    """A new draft version (numbered after the last) of the document for (protocol, kind)."""
    require_capability(actor, "manage_consent_documents")
    if kind == Kind.REMS_ENROLLMENT and protocol not in REMS_PROTOCOLS:
        raise ConsentInputInvalid("kind", "a REMS enrollment exists only for esketamine protocols")
    document, created = ConsentDocument.objects.get_or_create(protocol=protocol, kind=kind)
    if created:
        audit.record("create", actor=actor, request=request, obj=document, after={"protocol": protocol, "kind": kind})
    document = ConsentDocument.objects.select_for_update(no_key=True).get(pk=document.pk)
    _check_goes_forward(document, effective_date)
    number = (document.versions.aggregate(n=Max("version"))["n"] or 0) + 1
    version = ConsentVersion(document=document, version=number, title=title, body=body,
                             effective_date=effective_date, created_by=actor)
    version.full_clean()
    version.save()
    audit.record("create", actor=actor, request=request, obj=version,
                 after={"document": str(document), "version": number, "title": title,
                        "effective_date": effective_date})
    return version


def _check_goes_forward(document: ConsentDocument, effective_date: dt.date, number: int | None = None) -> None:
    latest = document.versions.filter(published=True).order_by("-version").first()
    if latest is None:
        return
    if number is not None and number < latest.version:
        raise ConsentInputInvalid("version", f"version {latest.version} is already published; a lower-numbered "
                                             f"version ({number}) cannot be published after it. Write a new version.")
    if effective_date < latest.effective_date:
        raise ConsentInputInvalid("effective_date",
                                  f"{effective_date:%Y-%m-%d} is before the effective date of published version "
                                  f"{latest.version} ({latest.effective_date:%Y-%m-%d}); a new version takes "
                                  "effect on or after it.")


@transaction.atomic
def do_publish_version(*, actor: Any, version: ConsentVersion,
                       request: HttpRequest | None = None) -> ConsentVersion:
    """Publish a draft. From its effective date, signatures of earlier versions are stale."""
    require_capability(actor, "manage_consent_documents")
    version = ConsentVersion.objects.select_for_update(no_key=True).get(pk=version.pk)
    if version.published:
        raise ConsentVersionLocked(f"Version {version.version} is already published.")
    ConsentDocument.objects.select_for_update(no_key=True).get(pk=version.document_id)  # one publisher at a time
    _check_goes_forward(version.document, version.effective_date, version.version)
    version.published = True
    version.published_at = timezone.now()
    version.published_by = actor
    version.save(update_fields=["published", "published_at", "published_by"])
    audit.record("update", actor=actor, request=request, obj=version,
                 before={"published": False}, after={"published": True, "effective_date": version.effective_date})
    return version


@transaction.atomic
def do_sign_consent(*, actor: Any, version: ConsentVersion, patient: Patient, typed_name: str,
                    signature_png: bytes, witness: Any, prescriber: Any = None,
                    request: HttpRequest | None = None, at: dt.datetime | None = None) -> ConsentSignature:
    """Record the patient's signature on the version in force, witnessed by a staff member whose
    password the caller has just verified (and co-signed by a prescriber for a REMS enrollment)."""
    now = at or timezone.now()
    require_capability(actor, WITNESS_CAPABILITY)  # the service's own gate, not only the view's
    if not has_capability(witness, WITNESS_CAPABILITY):
        raise SignerNotAllowed(f"{witness} may not witness consent.")
    document = version.document
    if current_version(document, now) != version:
        raise ConsentVersionNotCurrent(f"Version {version.version} of \"{version.title}\" is not the one "
                                       "in force; sign the current version.")
    if normalized_name(typed_name) != normalized_name(patient.full_name):
        raise ConsentInputInvalid("typed_name", f"type the patient's full name as registered: {patient.full_name}")
    if not signature_png.startswith(PNG_MAGIC):  # decode_signature checked the drawing itself
        raise ConsentInputInvalid("signature", "the patient has not drawn a signature")
    if document.kind == Kind.REMS_ENROLLMENT:
        if prescriber is None:
            raise ConsentInputInvalid("prescriber", "a REMS enrollment is signed by the prescriber too")
        if not has_capability(prescriber, PRESCRIBER_CAPABILITY):
            raise SignerNotAllowed(f"{prescriber} is not a prescriber.")
    elif prescriber is not None:
        raise ConsentInputInvalid("prescriber", "only a REMS enrollment has a prescriber signature")
    signature = ConsentSignature(
        version=version, patient=patient, typed_name=" ".join(typed_name.split()),
        signature_png=signature_png, signature_sha256=hashlib.sha256(signature_png).hexdigest(),
        signed_at=now, witness=witness, prescriber=prescriber, recorded_by=actor)
    signature.full_clean(exclude=["signature_png"])
    signature.save()
    audit.record("create", actor=actor, request=request, patient=patient, obj=signature,
                 after={"document": str(document), "version": version.version, "typed_name": signature.typed_name,
                        "signature_sha256": signature.signature_sha256, "witness": witness.get_username(),
                        "prescriber": prescriber.get_username() if prescriber else None})
    return signature


@transaction.atomic
def do_withdraw(*, actor: Any, signature: ConsentSignature, reason: str = "",
                request: HttpRequest | None = None) -> ConsentSignature:
    """Record the patient's withdrawal: from this moment the consent to that document no longer
    counts. Every signature of the patient on that document still in force is withdrawn, not
    only the one chosen: the gate reads the newest one, which may not be it."""
    require_capability(actor, WITNESS_CAPABILITY)
    signature = ConsentSignature.objects.select_for_update(no_key=True).get(pk=signature.pk)
    if signature.withdrawn_at is not None:
        raise AlreadyWithdrawn("This consent was already withdrawn.")
    withdrawn_at = timezone.now()
    in_force = (ConsentSignature.objects.select_for_update(no_key=True)
                .filter(patient_id=signature.patient_id, version__document_id=signature.version.document_id,
                        withdrawn_at=None).order_by("id"))
    for each in in_force:
        each.withdrawn_at = withdrawn_at
        each.withdrawn_recorded_by = actor
        each.withdrawal_reason = reason.strip()
        each.save(update_fields=["withdrawn_at", "withdrawn_recorded_by", "withdrawal_reason"])
        audit.record("update", actor=actor, request=request, patient=each.patient_id, obj=each,
                     before={"withdrawn_at": None},
                     after={"withdrawn_at": withdrawn_at, "reason": each.withdrawal_reason},
                     detail="consent withdrawn")
        if each.pk == signature.pk:
            signature = each
    return signature


def staff_by_username(username: str) -> Any | None:
    return get_user_model().objects.filter(username=username, is_active=True).first()
