"""Forms for intake, sign-off and rule set versions. Bounds come from the contract's tables."""

from __future__ import annotations

from typing import Any

from django import forms

from ketasafe.outcomes.scales import SCALES

from .intake import VITAL_RANGES
from .models import PROTOCOL_CHOICES, DrugScreen, HepaticImpairment, RuleSetVersion, Screening
from .rules import RULES, THRESHOLDS, Severity

PHQ9 = SCALES["phq9"]
CSSRS = SCALES["cssrs-screen"]
NOT_ASKED = ""


class StartIntakeForm(forms.Form):
    protocol = forms.ChoiceField(choices=PROTOCOL_CHOICES)
    indication = forms.CharField(max_length=200, help_text="Why this treatment, in a few words "
                                 "(e.g. treatment-resistant depression, two failed antidepressants).")


def _answer_field(spec: Any, number: int, prompt: str, *, required: bool = False) -> forms.ChoiceField:
    choices = [(NOT_ASKED, "— not asked —")] + [(str(o.value), f"{o.value}: {o.label}") for o in spec.options]
    return forms.ChoiceField(label=f"{number}. {prompt}", choices=choices, required=required)


class IntakeForm(forms.Form):
    """The intake-only inputs. History, medications, allergies, pregnancy and weight come from the
    patient's record (edited on the patient page) when the screening runs."""

    indication = forms.CharField(max_length=200)
    hepatic_impairment = forms.ChoiceField(choices=HepaticImpairment.choices, initial=HepaticImpairment.NONE)
    systolic = forms.IntegerField(label="Resting systolic BP (mmHg)", required=False,
                                  min_value=VITAL_RANGES["systolic"][0], max_value=VITAL_RANGES["systolic"][1])
    diastolic = forms.IntegerField(label="Resting diastolic BP (mmHg)", required=False,
                                   min_value=VITAL_RANGES["diastolic"][0], max_value=VITAL_RANGES["diastolic"][1])
    heart_rate = forms.IntegerField(label="Heart rate (/min)", required=False,
                                    min_value=VITAL_RANGES["heart_rate"][0], max_value=VITAL_RANGES["heart_rate"][1])
    spo2 = forms.IntegerField(label="SpO2 (%)", required=False,
                              min_value=VITAL_RANGES["spo2"][0], max_value=VITAL_RANGES["spo2"][1])
    substance_use_history = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    drug_screen = forms.ChoiceField(label="Urine drug screen", choices=DrugScreen.choices, initial=DrugScreen.NOT_DONE)
    drug_screen_detail = forms.CharField(max_length=200, required=False, label="Drug screen detail")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for item in PHQ9.items:
            self.fields[f"phq9_{item.number}"] = _answer_field(PHQ9, item.number, item.prompt)
        for item in CSSRS.items:
            self.fields[f"cssrs_{item.number}"] = _answer_field(CSSRS, item.number, item.prompt)

    @staticmethod
    def initial_for(screening: Screening) -> dict[str, Any]:
        initial: dict[str, Any] = {f: getattr(screening, f) for f in (
            "indication", "hepatic_impairment", "systolic", "diastolic", "heart_rate", "spo2",
            "substance_use_history", "drug_screen", "drug_screen_detail")}
        for i, v in enumerate(screening.phq9 or [], 1):
            initial[f"phq9_{i}"] = str(v)
        for i, v in enumerate(screening.cssrs_screen or [], 1):
            initial[f"cssrs_{i}"] = str(v)
        return initial

    def phq9_fields(self) -> list[forms.BoundField]:
        return [self[f"phq9_{i.number}"] for i in PHQ9.items]

    def cssrs_fields(self) -> list[forms.BoundField]:
        return [self[f"cssrs_{i.number}"] for i in CSSRS.items]

    def other_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if not name.startswith(("phq9_", "cssrs_"))]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        phq = [data.get(f"phq9_{i.number}", NOT_ASKED) for i in PHQ9.items]
        if any(a != NOT_ASKED for a in phq) and any(a == NOT_ASKED for a in phq):
            self.add_error(None, "PHQ-9: answer all 9 items, or none.")
        data["phq9"] = [int(a) for a in phq] if all(a != NOT_ASKED for a in phq) else None
        data["cssrs_screen"] = self._cssrs(data)
        if (data.get("systolic") is None) != (data.get("diastolic") is None):
            self.add_error("diastolic" if data.get("diastolic") is None else "systolic",
                           "Give both systolic and diastolic blood pressure.")
        return data

    def _cssrs(self, data: dict[str, Any]) -> list[int] | None:
        raw = {i.number: data.get(f"cssrs_{i.number}", NOT_ASKED) for i in CSSRS.items}
        if all(v == NOT_ASKED for v in raw.values()):
            return None
        answers: list[int] = []
        for item in CSSRS.items:
            value = raw[item.number]
            asked = item.asked_if_yes is None or raw.get(item.asked_if_yes) == "1"
            if not asked:
                if value == "1":
                    self.add_error(f"cssrs_{item.number}", f"C-SSRS skips question {item.number} when "
                                   f"question {item.asked_if_yes} is No.")
                answers.append(0)
            elif value == NOT_ASKED:
                self.add_error(f"cssrs_{item.number}", f"C-SSRS: answer question {item.number}.")
                answers.append(0)
            else:
                answers.append(int(value))
        return answers

    def intake_fields(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {k: d[k] for k in ("indication", "hepatic_impairment", "systolic", "diastolic", "heart_rate",
                                  "spo2", "substance_use_history", "drug_screen", "drug_screen_detail",
                                  "phq9", "cssrs_screen")}


def _token_field() -> forms.CharField:
    # The decision the prescriber read (services.decision_token); the service refuses a mismatch.
    return forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)


class SignForm(forms.Form):
    """One justification per warning (needs_review); none for an eligible decision."""

    decision_token = _token_field()

    def __init__(self, *args: Any, warnings: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for finding in warnings:
            self.fields[f"justify_{finding['rule']}"] = forms.CharField(
                label=f"Why treatment may go ahead despite {finding['rule']}",
                help_text=finding.get("message", ""), min_length=10,
                widget=forms.Textarea(attrs={"rows": 2}))

    def justifications(self) -> dict[str, str]:
        return {name.removeprefix("justify_"): value for name, value in self.cleaned_data.items()
                if name.startswith("justify_")}


class NotTreatedForm(forms.Form):
    decision_token = _token_field()
    reason = forms.CharField(min_length=10, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Why this patient will not be treated under this protocol.")


class RuleSetVersionForm(forms.Form):
    """A new version derived from `base`: thresholds within their hard ranges, severities only raised."""

    version = forms.RegexField(regex=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", max_length=64,
                               help_text="e.g. clinic-2026-1 (letters, digits, '.', '_' or '-')")
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False,
                           help_text="Why the clinic changed these values (kept with the version).")

    def __init__(self, *args: Any, base: RuleSetVersion, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        base_set = base.ruleset()
        for key, spec in THRESHOLDS.items():
            self.fields[f"t_{key}"] = forms.IntegerField(
                label=f"{key} ({spec.unit})", initial=base_set.thresholds[key],
                min_value=spec.hard_min, max_value=spec.hard_max,
                help_text=f"{spec.description}. Source: {spec.source}")
        order = [Severity.CONTRAINDICATION, Severity.WARNING, Severity.CAUTION]
        for rule_id, rule in RULES.items():
            floor = base_set.severities[rule_id]
            allowed = [s for s in order if s.rank <= floor.rank]
            if len(allowed) == 1:
                continue  # already contraindication: nothing to raise it to
            self.fields[f"s_{rule_id}"] = forms.ChoiceField(
                label=f"{rule_id}: {rule.title}", initial=floor.value,
                choices=[(s.value, s.value) for s in allowed])

    def thresholds(self) -> dict[str, int]:
        return {n.removeprefix("t_"): v for n, v in self.cleaned_data.items() if n.startswith("t_")}

    def severities(self) -> dict[str, str]:
        return {n.removeprefix("s_"): v for n, v in self.cleaned_data.items() if n.startswith("s_")}
