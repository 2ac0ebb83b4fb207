"""Treatment sessions: chairs, the session row and its transition history."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .state import Status

STATUS_CHOICES = [(s.value, s.value.replace("_", " ")) for s in Status]


class Chair(models.Model):
    """A treatment chair (bed). Monitors report it as PV1-3, or through their device id."""

    name = models.CharField(max_length=40, unique=True)  # as shown on the board, e.g. "Chair 1"
    bed_code = models.CharField(max_length=80, unique=True, help_text="PV1-3 as the monitor sends it")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TreatmentSession(models.Model):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="treatment_sessions")
    order = models.ForeignKey("protocols.TreatmentOrder", on_delete=models.PROTECT, related_name="sessions")
    session_number = models.PositiveSmallIntegerField()  # 1-based within the course
    chair = models.ForeignKey(Chair, null=True, blank=True, on_delete=models.PROTECT, related_name="sessions")
    scheduled_at = models.DateTimeField()
    # Assigned only by services.transition(); see state.TRANSITIONS.
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=Status.SCHEDULED.value,
                              db_index=True)
    prescriber_on_site = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                           on_delete=models.PROTECT, related_name="+")
    checked_in_at = models.DateTimeField(null=True, blank=True)
    dosing_started_at = models.DateTimeField(null=True, blank=True)  # first device / infusion start
    discharged_at = models.DateTimeField(null=True, blank=True)
    # Optimistic concurrency for forms: a stale form names the version it was built from.
    row_version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["scheduled_at"]

    def __str__(self) -> str:
        return f"Session {self.session_number} of {self.patient} ({self.status})"


class SessionTransition(models.Model):
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=STATUS_CHOICES)
    to_status = models.CharField(max_length=20, choices=STATUS_CHOICES)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"
