"""Observations (vital signs) from bedside monitors and by hand, and where they came from."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class VitalKind(models.TextChoices):
    SYSTOLIC = "systolic"
    DIASTOLIC = "diastolic"
    MAP = "map", "mean arterial pressure"
    HEART_RATE = "heart_rate", "heart rate"
    PULSE_RATE = "pulse_rate", "pulse rate"
    SPO2 = "spo2", "SpO2"
    RESP_RATE = "resp_rate", "respiratory rate"
    TEMPERATURE = "temperature"
    WEIGHT = "weight"


class Source(models.TextChoices):
    MONITOR = "monitor"
    MANUAL = "manual"


class Observation(models.Model):
    """One measured value. Monitor data is stored as received (raw fields kept) and, where the
    code map knows it, as a LOINC/UCUM value with a kind. Flags say what was odd about it."""

    session = models.ForeignKey("treatment_sessions.TreatmentSession", null=True, blank=True,
                                on_delete=models.PROTECT, related_name="observations")
    patient = models.ForeignKey("patients.Patient", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="observations")
    kind = models.CharField(max_length=20, choices=VitalKind.choices, blank=True, db_index=True)
    loinc = models.CharField(max_length=20, blank=True)
    value = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True)  # UCUM
    observed_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    message = models.ForeignKey("monitoring.InboundMessage", null=True, blank=True,
                                on_delete=models.PROTECT, related_name="observations")
    # As received from the monitor (empty for manual entries).
    raw_code = models.CharField(max_length=80, blank=True)
    raw_code_system = models.CharField(max_length=40, blank=True)
    raw_value = models.CharField(max_length=200, blank=True)
    raw_unit = models.CharField(max_length=80, blank=True)
    flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["session", "kind", "observed_at"])]

    def __str__(self) -> str:
        return f"{self.kind or self.raw_code} {self.value} {self.unit} at {self.observed_at}"


class InboundMessage(models.Model):
    """One HL7 message accepted from a monitor: unique per sender and control id (MSH-10), so a
    repeated message is acknowledged again and stored once."""

    sender = models.CharField(max_length=200)  # MSH-3 + MSH-4
    control_id = models.CharField(max_length=200)
    received_at = models.DateTimeField()
    raw = models.TextField()
    bed = models.CharField(max_length=80, blank=True)
    patient_identifier = models.CharField(max_length=80, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sender", "control_id"], name="inbound_once")]

    def __str__(self) -> str:
        return f"{self.sender} {self.control_id}"
