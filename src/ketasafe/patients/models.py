"""The patient registry: demographics, dated measurements, allergies, medications, problems.

Rows change only through `services.do_*`, which audit every change. `clinical_changed_at` moves
whenever something a screening depends on changes (problems, medications, allergies, pregnancy),
so a screening signed before it is stale.
"""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from ketasafe.lib.timeutil import clinic_today

MRN_PATTERN = re.compile(r"[A-Z0-9-]{3,32}")  # monitors send it in PID-3: no spaces, one case
EARLIEST_DATE = dt.date(1900, 1, 1)


def normalise_mrn(value: object) -> str:
    return str(value or "").strip().upper()


class Sex(models.TextChoices):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class PregnancyStatus(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    NOT_PREGNANT = "not_pregnant", "Not pregnant"
    PREGNANT = "pregnant", "Pregnant"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class Patient(models.Model):
    mrn = models.CharField("MRN", max_length=32, unique=True)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField()
    sex = models.CharField(max_length=10, choices=Sex.choices)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    address_line = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    region = models.CharField("state / region", max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    pregnancy_status = models.CharField(max_length=20, choices=PregnancyStatus.choices,
                                        default=PregnancyStatus.UNKNOWN)
    breastfeeding = models.BooleanField(null=True, blank=True)
    clinical_changed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["family_name", "given_name"]
        indexes = [models.Index(fields=["family_name", "given_name"])]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    def clean(self) -> None:
        """The registry's rules for every caller (the services call full_clean), not only the
        form: an MRN as monitors and the contract send it, a birth date that has happened."""
        errors: dict[str, str] = {}
        self.mrn = normalise_mrn(self.mrn)
        if not MRN_PATTERN.fullmatch(self.mrn):
            errors["mrn"] = "An MRN is 3 to 32 letters, digits or dashes."
        if isinstance(self.birth_date, dt.date):
            if self.birth_date > clinic_today():
                errors["birth_date"] = "Birth date cannot be in the future."
            elif self.birth_date < EARLIEST_DATE:
                errors["birth_date"] = "Birth date cannot be before 1900."
        if errors:
            raise ValidationError(errors)

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def age_on(self, day: dt.date) -> int:
        """Whole years; a 29 February birthday is reached on 1 March in other years."""
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    def latest_measurement(self, on: dt.date | None = None) -> Measurement | None:
        qs = self.measurements.all()
        if on is not None:
            qs = qs.filter(measured_on__lte=on)
        return qs.order_by("-measured_on", "-id").first()


class Measurement(models.Model):
    """Weight (and height) on a date: doses are computed from the latest dated weight."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="measurements")
    measured_on = models.DateField()
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    height_cm = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.weight_kg} kg on {self.measured_on}"


class Allergy(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    substance = models.CharField(max_length=120)
    reaction = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "allergies"

    def __str__(self) -> str:
        return self.substance


class Medication(models.Model):
    """A current (or stopped) medication, coded by WHO ATC."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medications")
    atc_code = models.CharField("ATC code", max_length=10)
    name = models.CharField(max_length=120)
    dose = models.CharField(max_length=120, blank=True)
    active = models.BooleanField(default=True)
    recorded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.atc_code})"


class ProblemStatus(models.TextChoices):
    ACTIVE = "active"
    HISTORY = "history"
    RESOLVED = "resolved"


class Problem(models.Model):
    """A problem-list entry, coded by ICD-10-CM."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="problems")
    icd10_code = models.CharField("ICD-10-CM code", max_length=10)
    description = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=ProblemStatus.choices)
    recorded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.icd10_code} {self.description} ({self.status})"
