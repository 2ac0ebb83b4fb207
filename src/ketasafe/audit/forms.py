from typing import Any

from django import forms

from .models import Action


class AuditFilterForm(forms.Form):
    since = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    user = forms.CharField(required=False, max_length=150, label="User (username)")
    patient = forms.CharField(required=False, max_length=32, label="Patient MRN")
    action = forms.ChoiceField(required=False, choices=[("", "any")] + list(Action.choices))
    sort = forms.ChoiceField(required=False, choices=[("-at", "newest first"), ("at", "oldest first"),
                                                      ("actor", "user"), ("action", "action")])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # Far-off years overflow when converted to UTC (a 500): only 1900..2100 is a sensible filter.
        for name in ("since", "until"):
            value = data.get(name)
            if value is not None and not (1900 <= value.year <= 2100):
                self.add_error(name, "Choose a date between the years 1900 and 2100.")
        return data
