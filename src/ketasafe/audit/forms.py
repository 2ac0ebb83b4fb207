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
