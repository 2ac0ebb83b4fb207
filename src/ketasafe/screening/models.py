"""Screening records: rule set versions, intakes with their decision, and prescriber sign-off.

Rows change only through `services.do_*` (each atomic and audited). Invariants:
- A RuleSetVersion is written once; its thresholds and severities never change. `used` turns true
  when a decision first uses it; `activated_at` (which one new screenings use) is not rule content.
- A Screening's status moves only along TRANSITIONS. Once signed or not-treated its inputs, decision
  and signature never change; the only later change is being superseded by a newer screening.
- `intake` is the exact contract-format input the rules saw (a snapshot of the problem list,
  medications, allergies, pregnancy and weight at the time), `decision` the exact output.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from .codes import PROTOCOLS
from .refusals import RuleSetVersionLocked
from .rules import DEFAULT_V1, RuleSet

PROTOCOL_CHOICES = [(code, f"{code}: {label}") for code, label in PROTOCOLS.codes]


class RuleSetVersion(models.Model):
    version = models.CharField(max_length=64, unique=True)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="derived")
    thresholds = models.JSONField()
    severities = models.JSONField()
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    used = models.BooleanField(default=False)
    # The most recently activated version is the one new screenings use.
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.version

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Write-once: a rule set that could change after the fact would make stored decisions
        # unexplainable. `used` and `activated_at` move through queryset updates in services.
        if self.pk is not None:
            raise RuleSetVersionLocked(f"rule set {self.version} cannot be changed; derive a new version")
        super().save(*args, **kwargs)

    def ruleset(self) -> RuleSet:
        # default-v1 is defined by the code (and the contract), never by a database row.
        if self.version == DEFAULT_V1.version:
            return DEFAULT_V1
        return RuleSet(self.version, dict(self.thresholds), dict(self.severities))


class Status(models.TextChoices):
    DRAFT = "draft", "Draft (intake in progress)"
    COMPLETED = "completed", "Screened, awaiting prescriber sign-off"
    SIGNED = "signed", "Signed by prescriber"
    NOT_TREATED = "not_treated", "Not treated"
    SUPERSEDED = "superseded", "Superseded"


# The screening state machine (STYLE §2). A completed screening is a record of a decision: it never
# goes back to draft or runs again. Changing its intake starts a new screening (services._copy),
# which supersedes it once that one has run; until then the completed decision keeps counting.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.COMPLETED, Status.SUPERSEDED}),
    Status.COMPLETED: frozenset({Status.SIGNED, Status.NOT_TREATED, Status.SUPERSEDED}),
    Status.SIGNED: frozenset({Status.SUPERSEDED}),
    Status.NOT_TREATED: frozenset({Status.SUPERSEDED}),
    Status.SUPERSEDED: frozenset(),
}
OPEN_STATUSES = (Status.DRAFT, Status.COMPLETED)
DECIDED_STATUSES = (Status.SIGNED, Status.NOT_TREATED)


class HepaticImpairment(models.TextChoices):
    NONE = "none", "None"
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"


class DrugScreen(models.TextChoices):
    NOT_DONE = "not_done", "Not done"
    NEGATIVE = "negative", "Negative"
    POSITIVE = "positive", "Positive"


class Screening(models.Model):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="screenings")
    protocol = models.CharField(max_length=40, choices=PROTOCOL_CHOICES)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)

    # Intake-only inputs (the rest comes from the patient's record when the screening runs).
    indication = models.CharField(max_length=200)
    hepatic_impairment = models.CharField(max_length=10, choices=HepaticImpairment.choices,
                                          default=HepaticImpairment.NONE)
    systolic = models.PositiveSmallIntegerField(null=True, blank=True)
    diastolic = models.PositiveSmallIntegerField(null=True, blank=True)
    heart_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2 = models.PositiveSmallIntegerField("SpO2", null=True, blank=True)
    phq9 = models.JSONField(null=True, blank=True)  # 9 answers 0-3, or null
    cssrs_screen = models.JSONField(null=True, blank=True)  # 7 answers 0/1, or null
    substance_use_history = models.TextField(blank=True)
    drug_screen = models.CharField(max_length=10, choices=DrugScreen.choices, default=DrugScreen.NOT_DONE)
    drug_screen_detail = models.CharField(max_length=200, blank=True)

    # What the rules saw and said.
    assessed_on = models.DateField(null=True, blank=True)
    intake = models.JSONField(null=True, blank=True)
    decision = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=20, blank=True)  # eligible / needs_review / ineligible
    ruleset = models.ForeignKey(RuleSetVersion, null=True, blank=True, on_delete=models.PROTECT,
                                related_name="screenings")
    rules_version = models.CharField(max_length=64, blank=True)

    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    completed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+")
    completed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(null=True, blank=True)
    justifications = models.JSONField(default=dict, blank=True)  # {warning rule id: text}
    not_treated_reason = models.TextField(blank=True)
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="supersedes")
    superseded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["patient", "protocol", "status"])]

    def __str__(self) -> str:
        return f"Screening {self.pk} ({self.protocol}, {self.status})"

    @property
    def findings(self) -> list[dict[str, Any]]:
        return list((self.decision or {}).get("findings", []))

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f.get("severity") == "warning"]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES
