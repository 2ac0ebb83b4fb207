from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from ketasafe import audit
from ketasafe.accounts.access import capability_required

from .models import ClinicSettings

# Pages of other apps a clinic admin configures, shown when those apps provide them.
SETUP_LINKS = [
    ("Screening rule sets", "screening:rulesets"),
    ("Consent documents", "consent:documents"),
    ("Protocols", "protocols:list"),
    ("Alert rules", "monitoring:alert_rules"),
    ("Monitor code map", "monitoring:code_map"),
    ("Unmapped monitor codes", "monitoring:unmapped"),
    ("Staff", "accounts:staff_list"),
]


class ClinicSettingsForm(forms.ModelForm):
    class Meta:
        model = ClinicSettings
        fields = ["name", "address", "phone", "email", "screening_validity_months",
                  "require_pregnancy_test", "predose_vitals_max_age_min"]


@capability_required("configure_clinic")
def clinic_setup(request: HttpRequest) -> HttpResponse:
    current = ClinicSettings.current()
    form = ClinicSettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            before = {f: getattr(ClinicSettings.current(), f) for f in form.changed_data}
            saved = form.save()
            audit.record("update", request=request, obj=saved, before=before,
                         after={f: getattr(saved, f) for f in form.changed_data})
        messages.success(request, "Clinic settings saved.")
        return redirect("clinic_setup")
    links = []
    for label, name in SETUP_LINKS:
        try:
            links.append((label, reverse(name)))
        except NoReverseMatch:
            continue
    return render(request, "clinic/setup.html", {"form": form, "links": links},
                  status=400 if form.errors else 200)
