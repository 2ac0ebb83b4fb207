from __future__ import annotations

from typing import Any

from django import forms

from .alert_rules import threshold_notes
from .models import AlertRuleSet, CodeMapEntry


class AssignForm(forms.Form):
    session: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=None, empty_label="Choose the session",
        help_text="Only sessions with the patient in a chair are listed.")

    def __init__(self, *args: Any, sessions: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["session"]
        field.queryset = sessions  # type: ignore[attr-defined]
        field.label_from_instance = lambda s: (  # type: ignore[attr-defined]
            f"{s.chair or 'no chair'}: {s.patient.full_name} ({s.patient.mrn}), session {s.session_number}, {s.status}")


class CodeMapEntryForm(forms.ModelForm):
    class Meta:
        model = CodeMapEntry
        fields = ["source", "system", "code", "loinc", "display", "ucum_unit", "kind", "extra_loinc",
                  "assume_unit_if_missing", "plausible_low", "plausible_high", "reference", "active"]
        widgets = {"reference": forms.Textarea(attrs={"rows": 2})}


class AlertRuleSetForm(forms.ModelForm):
    class Meta:
        model = AlertRuleSet
        fields = ["protocol_version", *AlertRuleSet.THRESHOLD_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        notes = threshold_notes()
        for name in AlertRuleSet.THRESHOLD_FIELDS:
            self.fields[name].help_text = notes.get(name, "")
        self.fields["protocol_version"].required = False
        self.fields["protocol_version"].empty_label = (  # type: ignore[attr-defined]
            "Clinic-wide (every protocol without its own rules)")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in AlertRuleSet.THRESHOLD_FIELDS:
            value = data.get(name)
            if value is not None and value <= 0:
                self.add_error(name, "Must be above zero.")
        if data.get("hr_low") and data.get("hr_high") and data["hr_low"] >= data["hr_high"]:
            self.add_error("hr_low", "Must be below the high heart-rate limit.")
        if data.get("spo2_low") and data["spo2_low"] > 100:
            self.add_error("spo2_low", "SpO2 is a percentage.")
        return data
