from __future__ import annotations

from typing import Any

from django import forms

from .definitions import PROTOCOL_IDS
from .models import ProtocolVersion


def _decimal(label: str) -> forms.DecimalField:
    return forms.DecimalField(label=label, required=False, max_digits=7, decimal_places=3)


class ProtocolVersionForm(forms.Form):
    protocol_id = forms.ChoiceField(choices=[(p, p) for p in PROTOCOL_IDS], label="Shipped protocol")
    label = forms.RegexField(regex=r"^[\w.-]{1,60}$", max_length=60,
                             help_text="A name for this clinic version, e.g. clinic-2026-01.")
    changes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}), max_length=4000,
        help_text="One 'setting = value' per line, e.g. 'mg_per_kg_max = 0.6' or "
                  "'min_interval_hours = 72'. Hard limits may only be tightened.")


class OrderForm(forms.Form):
    protocol_version = forms.ModelChoiceField(queryset=ProtocolVersion.objects.none())
    sessions_ordered = forms.IntegerField(min_value=1, max_value=100)
    course_start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), required=False,
                                   help_text="Week 1 of the course starts here (kept when an "
                                             "order is changed).")
    phase = forms.CharField(max_length=30, required=False,
                            help_text="Empty: the first phase (e.g. induction).")
    # Dose parameters: empty means the protocol default. The dose itself is computed.
    dose_mg = forms.TypedChoiceField(choices=[("", "protocol default"), ("56", "56 mg"),
                                              ("84", "84 mg")], required=False, empty_value=None,
                                     label="Esketamine: dose for sessions after the first",
                                     help_text="Session 1 uses the protocol's first dose.")
    mg_per_kg = _decimal("IV depression: mg/kg")
    mg_per_kg_per_h = _decimal("IV CRPS: mg/kg/h")
    concentration_mg_per_ml = _decimal("IV: concentration (mg/mL)")
    final_volume_ml = _decimal("IV: final volume (mL)")
    duration_min = forms.IntegerField(label="IV depression: infusion minutes", required=False)
    reassessment_recorded = forms.BooleanField(
        required=False, label="Reassessment at the end of induction done (facts 1.3)")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)
    password = forms.CharField(widget=forms.PasswordInput, max_length=200, required=False,
                               label="Your password (signature)",
                               help_text="Signing needs your password again, even when logged in.")

    DOSE_FIELDS = ("dose_mg", "mg_per_kg", "mg_per_kg_per_h", "concentration_mg_per_ml",
                   "final_volume_ml", "duration_min")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["protocol_version"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = ProtocolVersion.objects.filter(active=True).order_by("protocol_id", "label")

    def dose_parameters(self) -> dict[str, Any]:
        return {k: self.cleaned_data[k] for k in self.DOSE_FIELDS
                if self.cleaned_data.get(k) not in (None, "")}


class CancelOrderForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)
    password = forms.CharField(widget=forms.PasswordInput, max_length=200, label="Your password")
