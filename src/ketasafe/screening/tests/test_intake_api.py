"""POST /screening/api/intake: 201 with the decision, or 400 naming the field with nothing saved."""

from __future__ import annotations

import json

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.lib.timeutil import clinic_today
from ketasafe.screening.models import Screening, Status

URL = "/screening/api/intake"


def body(who, **changes):
    """A valid body for `who` (make_patient: male, 80 kg, nothing on the problem list), assessed today."""
    patient = who
    data = {
        "patient_id": patient.pk, "protocol": "esketamine-trd", "assessed_on": clinic_today().isoformat(),
        "patient": {"birth_date": patient.birth_date.isoformat(), "sex": patient.sex, "weight_kg": 80.0},
        "vitals": {"systolic": 128, "diastolic": 82, "heart_rate": 72, "spo2": 98},
        "scales": {"phq9": [2, 2, 1, 2, 1, 2, 1, 1, 1], "cssrs_screen": [1, 0, 0, 0, 0, 0, 0]},
    }
    data.update(changes)
    return data


def post(client, data):
    raw = data if isinstance(data, str) else json.dumps(data)
    return client.post(URL, raw, content_type="application/json")


def test_valid_intake_is_saved_and_returns_the_decision(client_for, make_patient):
    client, patient = client_for("nurse"), make_patient()
    response = post(client, body(patient))
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["decision"] == "needs_review" and data["rules_version"] == "default-v1"
    assert [f["rule"] for f in data["findings"]] == ["PHQ9-ITEM9"]
    s = Screening.objects.get(pk=data["screening_id"])
    assert s.status == Status.COMPLETED and s.patient == patient and s.systolic == 128 and s.phq9[8] == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"patient": {"sex": "male", "weight_kg": 70}}, "patient.birth_date"),
    ({"protocol": "oral-ketamine"}, "protocol"),
    ({"vitals": {"systolic": 400}}, "vitals.systolic"),
    ({"scales": {"cssrs_screen": [0, 0, 1, 0, 0, 0, 0]}}, "scales.cssrs_screen"),
    ({"conditions": [{"system": "snomed", "code": "F33.2", "status": "active"}]}, "conditions"),
    ({"patient_id": None}, "patient_id"),
    ({"patient_id": 999999}, "patient_id"),
    ({"patient_id": "1"}, "patient_id"),
])
def test_bad_input_is_400_naming_the_field_and_nothing_is_saved(client_for, make_patient, change, field):
    client, patient = client_for("nurse"), make_patient()
    audit_before = AuditEntry.objects.exclude(action="view").count()
    response = post(client, body(patient, **change))
    assert response.status_code == 400
    assert response.json()["error"].startswith(field), response.json()
    assert not Screening.objects.exists()
    assert AuditEntry.objects.exclude(action="view").count() == audit_before


@pytest.mark.parametrize("raw", ["{not json", "[" * 100_000 + "]" * 100_000, '{"patient_id": NaN}'])
def test_bad_json_is_400(client_for, raw):
    response = post(client_for("nurse"), raw)
    assert response.status_code == 400 and response.json()["error"].startswith("JSON")


def test_intake_about_another_person_is_refused(client_for, make_patient):
    client, patient = client_for("nurse"), make_patient()
    data = body(patient)
    data["patient"]["birth_date"] = "1999-01-01"
    response = post(client, data)
    assert response.status_code == 400 and response.json()["error"].startswith("patient.birth_date")
    assert not Screening.objects.exists()


def test_role_without_start_intake_gets_403(client_for, make_patient):
    response = post(client_for("clinic_admin"), body(make_patient()))
    assert response.status_code == 403
    assert not Screening.objects.exists()
