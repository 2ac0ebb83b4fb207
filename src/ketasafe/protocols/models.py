"""Protocol versions a clinic uses, and the treatment orders prescribers sign.

The clinical content of a protocol (limits, schedules) lives in the pure `definitions.py`;
a ProtocolVersion stores a clinic's changes to a shipped definition, validated against its hard
limits. An order change makes a new order version; a signed order is never edited.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ProtocolVersion(models.Model):
    protocol_id = models.CharField(max_length=40, db_index=True)  # a shipped protocol id
    label = models.CharField(max_length=80)  # e.g. "default" or "clinic-2026-01"
    changes = models.JSONField(default=dict, blank=True)  # overrides of the shipped defaults
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["protocol_id", "label"], name="protocol_version_unique")]

    def __str__(self) -> str:
        return f"{self.protocol_id} ({self.label})"

    @property
    def is_shipped(self) -> bool:
        return not self.changes


class OrderStatus(models.TextChoices):
    SIGNED = "signed"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


class TreatmentOrder(models.Model):
    """A signed course order. Changing it creates a new row (version + 1) that supersedes it."""

    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="orders")
    protocol_version = models.ForeignKey(ProtocolVersion, on_delete=models.PROTECT, related_name="orders")
    course_start = models.DateField()
    sessions_ordered = models.PositiveSmallIntegerField()
    dose_parameters = models.JSONField(default=dict)  # e.g. {"mg_per_kg": "0.5"} or {"dose_mg": 56}
    phase = models.CharField(max_length=30, blank=True)
    status = models.CharField(max_length=12, choices=OrderStatus.choices, default=OrderStatus.SIGNED)
    version = models.PositiveSmallIntegerField(default=1)
    supersedes = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="superseded_by")
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    notes = models.TextField(blank=True)
    # The first version of this course; None on version 1 itself. Sessions of every version of
    # a course count together for the course rules (interval, sessions per 7 days, numbering).
    root = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="later_versions")
    # facts 1.3: benefit is checked at the end of induction before the course continues. The
    # prescriber records it on a new order version (the course rules read it from there).
    reassessment_recorded_at = models.DateTimeField(null=True, blank=True)
    # How the signature was made (re-authentication at signing), e.g. "password".
    signature_method = models.CharField(max_length=20, default="password")
    # The dose shown to the prescriber when signing, from the weight dated on or before signing.
    signed_dose_preview = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-signed_at", "-id"]

    def __str__(self) -> str:
        return f"Order {self.pk} v{self.version} for {self.patient}"

    @property
    def course_root_id(self) -> int:
        return self.root_id or self.pk
