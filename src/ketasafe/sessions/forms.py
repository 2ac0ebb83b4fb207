"""One small form per session step. Every step form carries the session's ``row_version`` so a
stale page is refused ("this session changed") rather than acting on what it no longer shows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from ketasafe.lib.timeutil import clinic_today, clinic_tz
from ketasafe.protocols.models import OrderStatus, TreatmentOrder

from .models import CTCAE_GRADES, AdverseEventType, Chair, PregnancyTest

YES_NO = [("", "— not answered —"), ("yes", "Yes"), ("no", "No")]
_LOCAL = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def _bool(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def _queryset(form: forms.Form, name: str, queryset: QuerySet[Any]) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)
    field.queryset = queryset


def prescribers() -> QuerySet[Any]:
    """Active staff whose role lets them order treatment."""
    perm = Q(groups__permissions__codename="order_treatment",
             groups__permissions__content_type__app_label="accounts")
    return get_user_model().objects.filter(perm, is_active=True).distinct().order_by("last_name")


class _StaffChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.get_full_name() or obj.get_username()


class StepForm(forms.Form):
    row_version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class ScheduleForm(forms.Form):
    order = forms.ModelChoiceField(queryset=TreatmentOrder.objects.none(), label="Course order")
    scheduled_at = forms.DateTimeField(widget=_LOCAL, label="Date and time")
    chair = forms.ModelChoiceField(queryset=Chair.objects.filter(active=True), required=False)
    prescriber_on_site = _StaffChoice(queryset=get_user_model().objects.none(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _queryset(self, "order", TreatmentOrder.objects.filter(status=OrderStatus.SIGNED)
                  .select_related("patient", "protocol_version").order_by("patient__family_name"))
        self.fields["order"].label_from_instance = (  # type: ignore[attr-defined]
            lambda o: f"{o.patient.full_name} ({o.patient.mrn}): {o.protocol_version.protocol_id}, "
                      f"{o.sessions_ordered} sessions")
        _queryset(self, "prescriber_on_site", prescribers())

    def clean_scheduled_at(self) -> dt.datetime:
        """From yesterday (a session entered late) to two years ahead, in the clinic's days."""
        value: dt.datetime = self.cleaned_data["scheduled_at"]
        today = clinic_today()
        first, last = today - dt.timedelta(days=1), today + dt.timedelta(days=SCHEDULE_DAYS_AHEAD)
        try:
            day = value.astimezone(clinic_tz()).date()
        except OverflowError:
            day = None
        if day is None or not first <= day <= last:
            raise forms.ValidationError(f"Choose a time from {first:%Y-%m-%d} to {last:%Y-%m-%d}.")
        return value


SCHEDULE_DAYS_AHEAD = 2 * 366


class CheckInForm(StepForm):
    chair = forms.ModelChoiceField(queryset=Chair.objects.filter(active=True))


class ChecklistForm(StepForm):
    prescriber_on_site = _StaffChoice(queryset=get_user_model().objects.none(), required=False,
                                      label="Prescriber on site")
    fasting_confirmed = forms.TypedChoiceField(
        choices=YES_NO, coerce=_bool, empty_value=None, required=False,
        label="Fasting: no food 2 h and no liquids 30 min (esketamine)")
    ride_home_arranged = forms.TypedChoiceField(choices=YES_NO, coerce=_bool, empty_value=None,
                                                required=False, label="Ride home arranged")
    pregnancy_test = forms.ChoiceField(choices=PregnancyTest.choices, required=False)
    benzodiazepines = forms.TypedChoiceField(choices=YES_NO, coerce=_bool, empty_value=None,
                                             required=False, label="Taking benzodiazepines")
    nonbenzo_hypnotics = forms.TypedChoiceField(
        choices=YES_NO, coerce=_bool, empty_value=None, required=False,
        label="Taking non-benzodiazepine sedative hypnotics")
    psychostimulants = forms.TypedChoiceField(choices=YES_NO, coerce=_bool, empty_value=None,
                                              required=False, label="Taking psychostimulants")
    maois = forms.TypedChoiceField(choices=YES_NO, coerce=_bool, empty_value=None, required=False,
                                   label="Taking MAOIs")
    opioids = forms.TypedChoiceField(choices=YES_NO, coerce=_bool, empty_value=None,
                                     required=False, label="Taking opioids")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _queryset(self, "prescriber_on_site", prescribers())


def _vital(label: str) -> forms.DecimalField:
    return forms.DecimalField(label=label, required=False, max_digits=5, decimal_places=1)


class CheckForm(StepForm):
    code = forms.CharField(max_length=40, label="Check")
    observed_at = forms.DateTimeField(widget=_LOCAL, required=False,
                                      help_text="Leave empty for now.")
    systolic = _vital("Systolic (mmHg)")
    diastolic = _vital("Diastolic (mmHg)")
    heart_rate = _vital("Heart rate (/min)")
    spo2 = _vital("SpO2 (%)")
    resp_rate = _vital("Respiratory rate (/min)")
    moaas = forms.TypedChoiceField(
        choices=[("", "—")] + [(str(i), str(i)) for i in range(5, -1, -1)], coerce=int,
        empty_value=None, required=False, label="MOAA/S (5 = alert)")
    dissociation_scale = forms.ChoiceField(
        choices=[("", "— none —"), ("cadss6", "CADSS-6 short form (6 items)"),
                 ("cadss", "CADSS (23 items)")], required=False)
    dissociation_answers = forms.CharField(
        required=False, max_length=200, help_text="Item answers 0-4, separated by commas.")

    VITAL_FIELDS = ("systolic", "diastolic", "heart_rate", "spo2", "resp_rate")

    def clean_dissociation_answers(self) -> list[str]:
        raw: str = self.cleaned_data.get("dissociation_answers", "")
        return [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]


class OverrideForm(StepForm):
    check_code = forms.CharField(max_length=40, widget=forms.HiddenInput)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000,
                             label="Reason for the override")
    confirmer_username = forms.CharField(max_length=150, label="Second clinician: username")
    confirmer_password = forms.CharField(widget=forms.PasswordInput, max_length=200,
                                         label="Second clinician: password")


class StartDosingForm(StepForm):
    lot_number = forms.CharField(max_length=40)
    observing_prescriber = _StaffChoice(queryset=get_user_model().objects.none())
    # The dose the page showed (checks.CurrentDose.token): refused if the dose changed since.
    expected_dose = forms.CharField(widget=forms.HiddenInput, max_length=1000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _queryset(self, "observing_prescriber", prescribers())


class DeviceForm(StepForm):
    given_at = forms.DateTimeField(widget=_LOCAL, required=False, help_text="Leave empty for now.")


class RateForm(StepForm):
    rate_ml_per_h = forms.DecimalField(max_digits=6, decimal_places=1, min_value=0,
                                       max_value=999, label="New rate (mL/h)")
    reason = forms.CharField(max_length=300)


class FinishForm(StepForm):
    reason = forms.CharField(max_length=500, required=False,
                             help_text="Needed only to stop an infusion before its planned end.")


_ALDRETE = [("2", "2"), ("1", "1"), ("0", "0")]


class DischargeForm(StepForm):
    activity = forms.TypedChoiceField(choices=_ALDRETE, coerce=int,
                                      help_text="2 moves 4 limbs, 1 moves 2, 0 none")
    respiration = forms.TypedChoiceField(choices=_ALDRETE, coerce=int,
                                         help_text="2 breathes deeply and coughs, 1 shallow, 0 apnoea")
    circulation = forms.TypedChoiceField(choices=_ALDRETE, coerce=int,
                                         help_text="2 BP within 20 of baseline, 1 20-50, 0 more")
    consciousness = forms.TypedChoiceField(choices=_ALDRETE, coerce=int,
                                           help_text="2 fully awake, 1 rousable, 0 not responding")
    oxygen = forms.TypedChoiceField(choices=_ALDRETE, coerce=int, label="SpO2",
                                    help_text="2 >92% on air, 1 needs O2 for >90%, 0 <90%")
    responsible_adult_present = forms.BooleanField(required=False)
    driving_instructions_given = forms.BooleanField(
        required=False, label="Driving instructions given (no driving until the next day)")
    ready_to_leave_min = forms.IntegerField(
        required=False, min_value=0, max_value=1440,
        label="REMS: ready to leave without the 2-hour minimum (min from first device)")

    ALDRETE_ORDER = ("activity", "respiration", "circulation", "consciousness", "oxygen")


class EndForm(StepForm):
    kind = forms.ChoiceField(choices=[("cancel", "Cancel (no drug given)"),
                                      ("abort", "Abort (stopped for a clinical reason)"),
                                      ("ama", "Patient leaves against medical advice")])
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)


class AdverseEventForm(forms.Form):
    type = forms.ChoiceField(choices=AdverseEventType.choices)
    description = forms.CharField(max_length=300, required=False)
    grade = forms.TypedChoiceField(choices=CTCAE_GRADES, coerce=int, label="CTCAE v5 grade")
    occurred_at = forms.DateTimeField(widget=_LOCAL, required=False, help_text="Leave empty for now.")
    action_taken = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)
    outcome = forms.CharField(max_length=200)
    prescriber_note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                                      max_length=2000,
                                      help_text="Prescribers only; required for grade 3 or higher.")


class NoteForm(forms.Form):
    event = forms.IntegerField(widget=forms.HiddenInput)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)


class PmfForm(forms.Form):
    reference = forms.CharField(max_length=80, required=False,
                                help_text="Confirmation number from the REMS, if any.")
