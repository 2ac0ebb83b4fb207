from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from ketasafe.lib.timeutil import clinic_today

from .codes import is_atc, is_icd10cm, normalise_icd10
from .models import EARLIEST_DATE, Allergy, Measurement, Medication, Patient, Problem, ProblemStatus

DATE = forms.DateInput(attrs={"type": "date"})


def _past_date(value: dt.date | None, what: str) -> dt.date | None:
    """A date no later than today in the clinic and no earlier than 1900."""
    if value is None:
        return value
    if value > clinic_today():
        raise forms.ValidationError(f"{what} cannot be in the future.")
    if value < EARLIEST_DATE:
        raise forms.ValidationError(f"{what} cannot be before 1900.")
    return value


class PatientForm(forms.ModelForm):
    class Meta:
        model = Patient
        fields = ["mrn", "given_name", "family_name", "birth_date", "sex", "phone", "email",
                  "address_line", "city", "region", "postal_code", "pregnancy_status",
                  "breastfeeding"]
        widgets = {"birth_date": DATE,
                   "breastfeeding": forms.NullBooleanSelect()}

    # The MRN and birth-date rules are the model's (Patient.clean), so that every caller gets them.
    def clean_mrn(self) -> str:
        mrn: str = self.cleaned_data["mrn"].strip().upper()
        return mrn


class MeasurementForm(forms.ModelForm):
    class Meta:
        model = Measurement
        fields = ["measured_on", "weight_kg", "height_cm"]
        widgets = {"measured_on": DATE}

    def clean_measured_on(self) -> Any:
        return _past_date(self.cleaned_data.get("measured_on"), "Measurement date")

    def clean_weight_kg(self) -> Any:
        w = self.cleaned_data["weight_kg"]
        if w is not None and not (20 <= w <= 350):
            raise forms.ValidationError("Weight must be between 20 and 350 kg.")
        return w

    def clean_height_cm(self) -> Any:
        h = self.cleaned_data.get("height_cm")
        if h is not None and not (50 <= h <= 250):
            raise forms.ValidationError("Height must be between 50 and 250 cm.")
        return h


class AllergyForm(forms.ModelForm):
    class Meta:
        model = Allergy
        fields = ["substance", "reaction"]

    def clean_substance(self) -> str:
        value: str = self.cleaned_data["substance"].strip()
        if not value:
            raise forms.ValidationError("Name the substance.")
        return value


class MedicationForm(forms.ModelForm):
    class Meta:
        model = Medication
        fields = ["atc_code", "name", "dose"]
        help_texts = {"atc_code": "WHO ATC code, e.g. N06AB10 (escitalopram)."}

    def clean_atc_code(self) -> str:
        code: str = self.cleaned_data["atc_code"].strip().upper()
        if not is_atc(code):
            raise forms.ValidationError(f"{code!r} is not a WHO ATC code (e.g. N06AB10).")
        return code


class ProblemForm(forms.ModelForm):
    class Meta:
        model = Problem
        fields = ["icd10_code", "description", "status"]
        help_texts = {"icd10_code": "ICD-10-CM code, e.g. F33.2."}

    def clean_icd10_code(self) -> str:
        code: str = self.cleaned_data["icd10_code"]
        if not is_icd10cm(code):
            raise forms.ValidationError(f"{code!r} is not an ICD-10-CM code (e.g. F33.2).")
        return normalise_icd10(code)


class ProblemStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ProblemStatus.choices)


RECORD_FORMS: dict[str, tuple[type[forms.ModelForm], str]] = {
    "measurement": (MeasurementForm, "Record weight and height"),
    "allergy": (AllergyForm, "Add an allergy"),
    "medication": (MedicationForm, "Add a medication"),
    "problem": (ProblemForm, "Add a problem"),
}
