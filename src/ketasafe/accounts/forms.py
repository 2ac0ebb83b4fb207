from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation

from .roles import ROLES

ROLE_CHOICES = [(r.name, r.label) for r in ROLES]


USERNAME_PATTERN = r"^[\w.@+-]{3,150}$"  # the staff page's rule; the CLI's first admin too


class StaffCreateForm(forms.Form):
    username = forms.RegexField(regex=USERNAME_PATTERN, max_length=150,
                                help_text="Letters, digits and . @ + - _ only.")
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    roles = forms.MultipleChoiceField(choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple)
    password = forms.CharField(widget=forms.PasswordInput, help_text="At least 12 characters.")

    def clean_username(self) -> str:
        username: str = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("A staff account with this username exists already.")
        return username

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password"):
            user = get_user_model()(username=data.get("username", ""),
                                    first_name=data.get("first_name", ""),
                                    last_name=data.get("last_name", ""), email=data.get("email", ""))
            try:
                password_validation.validate_password(data["password"], user)
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class StaffRolesForm(forms.Form):
    roles = forms.MultipleChoiceField(choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple,
                                      required=False)
    active = forms.BooleanField(required=False, help_text="Inactive staff cannot log in.")
    new_password = forms.CharField(widget=forms.PasswordInput, required=False,
                                   help_text="Leave empty to keep the current password. "
                                   "At least 12 characters; tell the staff member in person.")

    # What the page showed (roles and active), so that a page opened before another admin's
    # change cannot silently undo it (e.g. reactivate an account just deactivated).
    shown = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, member: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.member = member
        self.fields["shown"].initial = self.state_of(member) if member is not None else ""

    @staticmethod
    def state_of(member: Any) -> str:
        from .services import roles_of

        return f"{','.join(sorted(roles_of(member)))}|{int(member.is_active)}"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.member is not None and data.get("shown") != self.state_of(self.member):
            raise forms.ValidationError("Another admin changed this account since you opened the page: "
                                        "reload it and make your change again.")
        return data

    def clean_new_password(self) -> str:
        password: str = self.cleaned_data.get("new_password") or ""
        if password:
            password_validation.validate_password(password, self.member)
        return password
