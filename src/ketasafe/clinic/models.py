"""Clinic-wide settings: one row, edited by a clinic admin, every change audited.

Facts marked unconfirmed in the reference become settings here, not constants in code.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class ClinicSettings(models.Model):
    name = models.CharField(max_length=200, default="KetaSafe Clinic")
    address = models.CharField(max_length=300, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    # Issue 3: a signed screening expires after this many months.
    screening_validity_months = models.PositiveSmallIntegerField(
        default=12, validators=[MinValueValidator(1), MaxValueValidator(24)],
        help_text="A signed screening is valid for this many months (1 to 24).")
    # Issue 4: a pregnancy test result is a pre-check where the clinic requires one.
    require_pregnancy_test = models.BooleanField(
        default=True, help_text="Require a negative pregnancy test before dosing for patients "
        "who could be pregnant (female, under 55).")
    predose_vitals_max_age_min = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(120)],
        help_text="Pre-dose vitals must be at most this old (minutes, 5 to 120).")

    class Meta:
        verbose_name_plural = "clinic settings"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def current(cls) -> ClinicSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj
