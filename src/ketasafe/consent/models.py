"""Consent documents, their versions, and patients' signatures (issue 3).

Rows change only through `services.do_*` (atomic, audited). Invariants:
- One document per (protocol, kind). Versions are numbered 1, 2, ... per document.
- A published version never changes. The current version of a document at a moment is the
  published one with the latest effective date on or before that day; a signature on any other
  version is stale for sessions from then on.
- A signature is never edited or deleted; withdrawal stamps `withdrawn_at` and takes effect at once.
- The drawn signature is stored as PNG bytes in the row (no media folder to back up separately);
  its SHA-256 is kept beside it and printed on the print view.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from ketasafe.screening.models import PROTOCOL_CHOICES

# SPRAVATO REMS: outpatient settings enrol each patient before the first treatment, signed by
# the patient and the prescriber (clinical-facts 1.9). Only the esketamine protocols need it.
REMS_PROTOCOLS = frozenset({"esketamine-trd", "esketamine-mdsi"})


class Kind(models.TextChoices):
    TREATMENT = "treatment", "Informed consent to treatment"
    REMS_ENROLLMENT = "rems_enrollment", "SPRAVATO REMS patient enrollment"


class ConsentDocument(models.Model):
    protocol = models.CharField(max_length=40, choices=PROTOCOL_CHOICES)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["protocol", "kind"]
        constraints = [models.UniqueConstraint(fields=["protocol", "kind"], name="consent_doc_protocol_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.protocol})"


class ConsentVersion(models.Model):
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    effective_date = models.DateField()
    published = models.BooleanField(default=False)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["document", "-version"]
        constraints = [models.UniqueConstraint(fields=["document", "version"], name="consent_version_unique")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class ConsentSignature(models.Model):
    version = models.ForeignKey(ConsentVersion, on_delete=models.PROTECT, related_name="signatures")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="consent_signatures")
    typed_name = models.CharField(max_length=200)
    signature_png = models.BinaryField()
    signature_sha256 = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    witness = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # REMS enrollment only: the prescriber who co-signed (confirmed with their own password).
    prescriber = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                              on_delete=models.PROTECT, related_name="+")
    withdrawal_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-signed_at", "-id"]
        indexes = [models.Index(fields=["patient", "signed_at"])]

    def __str__(self) -> str:
        return f"{self.typed_name} signed {self.version} at {self.signed_at:%Y-%m-%d %H:%M}"

    @property
    def document(self) -> ConsentDocument:
        return self.version.document
