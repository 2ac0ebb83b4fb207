"""The intake API screens the patient's record as it is today, never the caller's copy of it.

History (problem list, medications, allergies, pregnancy, breastfeeding, weight) comes from the
record; a body that contradicts it is refused naming the field; assessed_on must be today in the
clinic's zone. Only intake-only inputs (vitals, scales, hepatic impairment, indication, substance
use, drug screen) come from the body.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.consent.gate import treatment_allowed
from ketasafe.lib.timeutil import clinic_today
from ketasafe.patients.models import Allergy, Medication, PregnancyStatus, Problem
from ketasafe.screening import services
from ketasafe.screening.models import Screening, Status
from ketasafe.screening.refusals import IneligibleCannotBeSigned

from .test_intake_api import body, post


def _refused(response, field):
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith(field), response.json()
    assert not Screening.objects.exists()


def test_a_condition_on_the_problem_list_is_screened_when_the_body_omits_conditions(
        client_for, make_patient, make_staff):
    client, patient = client_for("nurse"), make_patient()
    Problem.objects.create(patient=patient, icd10_code="I71.4", description="AAA", status="active")
    response = post(client, body(patient))
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["decision"] == "ineligible"
    assert "I71.4" in json.dumps(data["findings"])
    screening = Screening.objects.get(pk=data["screening_id"])
    assert [c["code"] for c in screening.intake["conditions"]] == ["I71.4"]  # what the rules saw
    with pytest.raises(IneligibleCannotBeSigned):
        services.do_sign_screening(actor=make_staff("prescriber"), screening=screening)
    assert not treatment_allowed(patient, "esketamine-trd", dt.datetime.now(dt.UTC)).allowed


def test_a_body_whose_conditions_contradict_the_problem_list_is_refused(client_for, make_patient):
    client, patient = client_for("nurse"), make_patient()
    Problem.objects.create(patient=patient, icd10_code="I71.4", description="AAA", status="active")
    audit_before = AuditEntry.objects.exclude(action="view").count()
    response = post(client, body(patient, conditions=[]))
    _refused(response, "conditions")
    assert "I71.4" in response.json()["error"]
    assert AuditEntry.objects.exclude(action="view").count() == audit_before


@pytest.mark.parametrize(("record", "change", "field"), [
    ("med", {"medications": []}, "medications"),
    (None, {"medications": [{"atc": "N06AB10", "name": "escitalopram"}]}, "medications"),
    ("allergy", {"allergies": [{"substance": "latex"}]}, "allergies"),
    (None, {"conditions": [{"system": "icd-10-cm", "code": "F33.2", "status": "active"}]}, "conditions"),
    ("condition", {"conditions": [{"system": "icd-10-cm", "code": "F33.2", "status": "resolved"}]}, "conditions"),
    (None, {"patient_weight": 55.0}, "patient.weight_kg"),
    (None, {"patient_height": 180.0}, "patient.height_cm"),
])
def test_a_body_whose_history_contradicts_the_record_is_refused_naming_the_field(
        client_for, make_patient, record, change, field):
    client, patient = client_for("nurse"), make_patient()
    if record == "med":
        Medication.objects.create(patient=patient, atc_code="N06AB10", name="escitalopram", active=True)
    elif record == "allergy":
        Allergy.objects.create(patient=patient, substance="penicillin", active=True)
    elif record == "condition":
        Problem.objects.create(patient=patient, icd10_code="F33.2", description="MDD", status="active")
    data = body(patient)
    if "patient_weight" in change:
        data["patient"]["weight_kg"] = change["patient_weight"]
    elif "patient_height" in change:
        data["patient"]["height_cm"] = change["patient_height"]
    else:
        data.update(change)
    _refused(post(client, data), field)


@pytest.mark.parametrize(("status", "sent", "field"), [
    (PregnancyStatus.PREGNANT, {"pregnant": False}, "patient.pregnant"),
    (PregnancyStatus.NOT_PREGNANT, {"pregnant": True}, "patient.pregnant"),
    (PregnancyStatus.NOT_PREGNANT, {"pregnant": False, "breastfeeding": True}, "patient.breastfeeding"),
])
def test_a_body_whose_pregnancy_or_breastfeeding_contradicts_the_record_is_refused(
        client_for, make_patient, status, sent, field):
    client = client_for("nurse")
    patient = make_patient(sex="female", pregnancy_status=status, breastfeeding=False)
    data = body(patient)
    data["patient"].update(sent)
    _refused(post(client, data), field)


def test_a_body_that_agrees_with_the_record_is_screened_with_its_intake_only_inputs(client_for, make_patient):
    client, patient = client_for("nurse"), make_patient()
    Problem.objects.create(patient=patient, icd10_code="F33.2", description="MDD", status="active")
    Medication.objects.create(patient=patient, atc_code="N06AB10", name="escitalopram", active=True)
    Allergy.objects.create(patient=patient, substance="Penicillin", active=True)
    data = body(patient, conditions=[{"system": "icd-10-cm", "code": "f33.2", "status": "active"}],
                medications=[{"atc": "n06ab10"}], allergies=[{"substance": "penicillin "}],
                hepatic_impairment="mild", indication="TRD, two failed SSRIs",
                substance_use_history="Alcohol socially", drug_screen="negative", drug_screen_detail="panel 10")
    response = post(client, data)
    assert response.status_code == 201, response.content
    s = Screening.objects.get(pk=response.json()["screening_id"])
    assert (s.indication, s.hepatic_impairment, s.substance_use_history, s.drug_screen, s.drug_screen_detail) == (
        "TRD, two failed SSRIs", "mild", "Alcohol socially", "negative", "panel 10")
    assert s.intake["vitals"] == {"systolic": 128, "diastolic": 82, "heart_rate": 72, "spo2": 98}
    assert s.intake["assessed_on"] == clinic_today().isoformat()


def test_the_age_rule_uses_today_not_a_far_future_assessed_on(client_for, make_patient):
    client = client_for("nurse")
    today = clinic_today()
    patient = make_patient(birth_date=today.replace(year=today.year - 16))
    _refused(post(client, body(patient, assessed_on="2030-01-01")), "assessed_on")
    response = post(client, body(patient))
    assert response.status_code == 201
    assert "AGE-UNDER-18" in [f["rule"] for f in response.json()["findings"]]


@pytest.mark.parametrize("days", [-400, -1, 1, 365 * 73])
def test_an_assessed_on_other_than_today_in_the_clinic_is_refused(client_for, make_patient, days):
    client, patient = client_for("nurse"), make_patient()
    day = clinic_today() + dt.timedelta(days=days)
    response = post(client, body(patient, assessed_on=day.isoformat()))
    _refused(response, "assessed_on")
    assert re.search(r"not today", response.json()["error"])


def test_fractional_vitals_are_refused_rather_than_dropped(client_for, make_patient):
    client, patient = client_for("nurse"), make_patient()
    _refused(post(client, body(patient, vitals={"systolic": 185.5, "diastolic": 80})), "vitals.systolic")


@pytest.mark.parametrize(("key", "value"), [("drug_screen", "maybe"), ("substance_use_history", 3),
                                            ("drug_screen_detail", "x" * 201)])
def test_bad_intake_only_fields_are_refused_naming_the_field(client_for, make_patient, key, value):
    client, patient = client_for("nurse"), make_patient()
    _refused(post(client, body(patient, **{key: value})), key)


def test_an_api_screening_supersedes_the_open_one_and_stays_completed(client_for, make_patient):
    client, patient = client_for("nurse"), make_patient()
    first = post(client, body(patient)).json()["screening_id"]
    second = post(client, body(patient)).json()["screening_id"]
    assert Screening.objects.get(pk=first).status == Status.SUPERSEDED
    assert Screening.objects.get(pk=second).status == Status.COMPLETED
