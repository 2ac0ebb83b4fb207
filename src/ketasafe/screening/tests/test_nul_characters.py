"""A NUL character in any intake text is refused naming the field (400), never stored: PostgreSQL
cannot hold one in text or jsonb, so it would otherwise be a 500."""

from __future__ import annotations

import pytest

from ketasafe.patients.models import Allergy
from ketasafe.screening.exceptions import IntakeInvalid
from ketasafe.screening.intake import parse_intake
from ketasafe.screening.models import Screening

from .builders import data
from .test_intake_api import body, post


@pytest.mark.parametrize(("changes", "field"), [
    ({"protocol": "esketamine-trd\x00"}, "protocol"),
    ({"assessed_on": "2026-11-24\x00"}, "assessed_on"),
    ({"conditions": [{"system": "icd-10-cm", "code": "F33.2\x00", "status": "active"}]}, "conditions[0].code"),
    ({"medications": [{"atc": "N06AB10", "name": "escita\x00lopram"}]}, "medications[0].name"),
    ({"medications": [{"atc": "N06\x00AB10"}]}, "medications[0].atc"),
    ({"allergies": [{"substance": "peni\x00cillin"}]}, "allergies[0].substance"),
])
def test_the_intake_parser_refuses_a_nul_in_any_string_naming_the_field(changes, field):
    with pytest.raises(IntakeInvalid) as info:
        parse_intake(data(**changes))
    assert info.value.field == field and "NUL" in info.value.message


@pytest.mark.parametrize(("key", "value", "field"), [
    ("indication", "x\x00y", "indication"),
    ("substance_use_history", "alcohol\x00", "substance_use_history"),
    ("drug_screen_detail", "\x00", "drug_screen_detail"),
    ("allergies", [{"substance": "peni\x00cillin"}], "allergies[0].substance"),
])
def test_the_intake_api_refuses_a_nul_with_400_naming_the_field(client_for, make_patient, key, value, field):
    client, patient = client_for("nurse"), make_patient()
    Allergy.objects.create(patient=patient, substance="penicillin", active=True)
    response = post(client, body(patient, **{key: value}))
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith(f"{field}: ") and "NUL" in response.json()["error"]
    assert not Screening.objects.exists()
