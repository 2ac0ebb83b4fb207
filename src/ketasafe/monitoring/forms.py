from __future__ import annotations

from decimal import Decimal
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

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        from .codemap import entry_errors

        for name, message in entry_errors(data).items():
            if name not in self.errors:
                self.add_error(name, message)
        return data


# Sanity bounds of each threshold (mmHg, %, /min, seconds): not clinical advice, only the range
# outside which a value would switch its alarm off in practice (systolic_high 9999) or make it
# fire for every patient. A clinic choosing a value outside needs a code change, on purpose.
THRESHOLD_BOUNDS: dict[str, tuple[Decimal, Decimal, str]] = {
    "systolic_high": (Decimal(140), Decimal(220), "mmHg"),
    "diastolic_high": (Decimal(80), Decimal(130), "mmHg"),
    "spo2_low": (Decimal(80), Decimal(97), "%"),
    "hr_high": (Decimal(90), Decimal(160), "/min"),
    "hr_low": (Decimal(30), Decimal(60), "/min"),
    "rr_low": (Decimal(4), Decimal(12), "/min"),
    "rise_systolic": (Decimal(10), Decimal(80), "mmHg"),
    "rise_diastolic": (Decimal(10), Decimal(50), "mmHg"),
    "stale_after_s": (Decimal(60), Decimal(600), "s"),
}
CLINIC_WIDE_EXISTS = "Clinic-wide alert rules already exist: edit them instead of adding a second set."


class AlertRuleSetForm(forms.ModelForm):
    class Meta:
        model = AlertRuleSet
        fields = ["protocol_version", *AlertRuleSet.THRESHOLD_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        notes = threshold_notes()
        for name in AlertRuleSet.THRESHOLD_FIELDS:
            low, high, unit = THRESHOLD_BOUNDS[name]
            self.fields[name].help_text = (f"Sanity bounds {low}-{high} {unit} (a value outside would switch "
                                           f"the alarm off or make it fire for everyone). {notes.get(name, '')}")
        self.fields["protocol_version"].required = False
        self.fields["protocol_version"].empty_label = (  # type: ignore[attr-defined]
            "Clinic-wide (every protocol without its own rules)")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in AlertRuleSet.THRESHOLD_FIELDS:
            value = data.get(name)
            low, high, unit = THRESHOLD_BOUNDS[name]
            if value is not None and not low <= value <= high:
                self.add_error(name, f"Must be between {low} and {high} {unit} (sanity bounds).")
        if data.get("hr_low") and data.get("hr_high") and data["hr_low"] >= data["hr_high"]:
            self.add_error("hr_low", "Must be below the high heart-rate limit.")
        if data.get("protocol_version") is None and "protocol_version" not in self.errors:
            others = AlertRuleSet.objects.filter(protocol_version=None)
            if self.instance.pk:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error("protocol_version", CLINIC_WIDE_EXISTS)
        return data
