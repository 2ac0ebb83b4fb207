from __future__ import annotations

from typing import Any

from django import forms

from .alert_rules import THRESHOLD_BOUNDS, threshold_notes
from .models import CLINIC_WIDE_EXISTS, AlertRuleSet, CodeMapEntry


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
        # The sanity bounds are checked by AlertRuleSet.clean(), which ModelForm validation calls
        # after this (one definition for every caller); here only what needs the database.
        data = super().clean() or {}
        if data.get("protocol_version") is None and "protocol_version" not in self.errors:
            others = AlertRuleSet.objects.filter(protocol_version=None)
            if self.instance.pk:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error("protocol_version", CLINIC_WIDE_EXISTS)
        return data
