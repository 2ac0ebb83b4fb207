"""Consent forms. Passwords are checked here (through the auth backends, so lockout applies)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest

from ketasafe.accounts.access import has_capability
from ketasafe.screening.models import PROTOCOL_CHOICES

from .models import REMS_PROTOCOLS, Kind
from .services import PRESCRIBER_CAPABILITY, WITNESS_CAPABILITY, verify_staff_password
from .signature_image import SignatureImageInvalid, decode_signature


class ConsentVersionForm(forms.Form):
    protocol = forms.ChoiceField(choices=PROTOCOL_CHOICES)
    kind = forms.ChoiceField(choices=Kind.choices)
    title = forms.CharField(max_length=200)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}),
                           help_text="The full text the patient reads before signing.")
    effective_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}),
                                     help_text="From this day, signatures of earlier versions are stale.")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("kind") == Kind.REMS_ENROLLMENT and data.get("protocol") not in REMS_PROTOCOLS:
            self.add_error("kind", "A REMS enrollment exists only for esketamine protocols.")
        return data


class SignConsentForm(forms.Form):
    typed_name = forms.CharField(label="Patient: type your full name", max_length=200)
    signature = forms.CharField(widget=forms.HiddenInput, required=False,
                                error_messages={"required": "The patient has not drawn a signature."})
    witness_username = forms.CharField(label="Witness username", max_length=150)
    witness_password = forms.CharField(label="Witness password", widget=forms.PasswordInput,
                                       help_text="The witness confirms with their own password.")

    def __init__(self, *args: Any, request: HttpRequest, rems: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request = request
        self.rems = rems
        if rems:
            self.fields["prescriber_username"] = forms.CharField(label="Prescriber username", max_length=150)
            self.fields["prescriber_password"] = forms.CharField(
                label="Prescriber password", widget=forms.PasswordInput,
                help_text="The prescriber signs the REMS enrollment with their own password.")

    def clean_signature(self) -> bytes:
        try:
            return decode_signature(self.cleaned_data.get("signature", ""))
        except SignatureImageInvalid as exc:
            raise forms.ValidationError(f"Signature: {exc}.") from None

    def _staff(self, role: str, capability: str, what: str) -> Any:
        username = self.cleaned_data.get(f"{role}_username", "")
        password = self.cleaned_data.get(f"{role}_password", "")
        if not username or not password:
            return None
        user = verify_staff_password(self.request, username, password)
        if user is None:
            self.add_error(f"{role}_password", f"The {role} username or password is not correct.")
        elif not has_capability(user, capability):
            self.add_error(f"{role}_username", f"{username} may not {what}.")
            return None
        return user

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        data["witness"] = self._staff("witness", WITNESS_CAPABILITY, "witness consent")
        data["prescriber"] = self._staff("prescriber", PRESCRIBER_CAPABILITY, "sign as prescriber") \
            if self.rems else None
        return data


class WithdrawForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                             help_text="Optional: what the patient said.")
