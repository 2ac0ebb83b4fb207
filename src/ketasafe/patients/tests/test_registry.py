"""The patient registry: search, audited access, history edits, bad input."""

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.patients.models import Patient, Problem

pytestmark = pytest.mark.django_db


def test_search_finds_by_name_and_mrn(client_for, make_patient) -> None:
    make_patient(given_name="Ingrid", family_name="Holm", mrn="DEMO-0100")
    make_patient(given_name="Omar", family_name="Haddad", mrn="DEMO-0101")
    client = client_for("front_desk")
    by_name = client.get("/patients/", {"q": "holm"}).content.decode()
    by_mrn = client.get("/patients/", {"q": "0101"}).content.decode()
    assert "Holm" in by_name and "Haddad" not in by_name
    assert "Haddad" in by_mrn and "Holm" not in by_mrn


def test_opening_a_patient_is_an_audited_view(client_for, make_patient) -> None:
    patient = make_patient()
    client = client_for("nurse")
    assert client.get(f"/patients/{patient.pk}/").status_code == 200
    entry = AuditEntry.objects.filter(action="view", patient=patient).get()
    assert entry.actor == f"user:{client.user.username}"


def test_unknown_patient_id_is_a_404(client_for) -> None:
    assert client_for("nurse").get("/patients/999999/").status_code == 404


def test_roles_without_patient_access_get_403_and_no_audit_view(client_for, make_patient) -> None:
    patient = make_patient()
    assert client_for("cs_custodian").get(f"/patients/{patient.pk}/").status_code == 403
    assert not AuditEntry.objects.filter(action="view", patient=patient).exists()


def test_register_with_missing_fields_is_a_400_and_saves_nothing(client_for) -> None:
    response = client_for("front_desk").post("/patients/new/", {"mrn": "X-1", "birth_date": "not a date"})
    assert response.status_code == 400
    assert not Patient.objects.filter(mrn="X-1").exists()


def test_register_creates_the_patient_with_an_audit_entry(client_for) -> None:
    response = client_for("front_desk").post("/patients/new/", {
        "mrn": "x-77", "given_name": "Ada", "family_name": "Lovelace", "birth_date": "1985-12-10",
        "sex": "female", "pregnancy_status": "unknown", "breastfeeding": "unknown"})
    assert response.status_code == 302
    patient = Patient.objects.get(mrn="X-77")
    assert AuditEntry.objects.filter(action="create", patient=patient).exists()


def test_malformed_icd10_code_is_refused_and_nothing_saved(client_for, make_patient) -> None:
    patient = make_patient()
    response = client_for("nurse").post(f"/patients/{patient.pk}/add/problem/",
                                        {"icd10_code": "banana", "description": "x", "status": "active"})
    assert response.status_code == 400
    assert not patient.problems.exists()


def test_adding_a_problem_makes_screening_inputs_newer(client_for, make_patient) -> None:
    patient = make_patient()
    before = patient.clinical_changed_at
    response = client_for("nurse").post(f"/patients/{patient.pk}/add/problem/",
                                        {"icd10_code": "I713", "description": "AAA", "status": "active"})
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.clinical_changed_at > before
    assert patient.problems.get().icd10_code == "I71.3"


def test_problem_status_change_is_audited_with_before_and_after(client_for, make_patient) -> None:
    patient = make_patient()
    problem = Problem.objects.create(patient=patient, icd10_code="F20.9", description="x", status="active")
    client_for("nurse").post(f"/patients/problem/{problem.pk}/status/", {"status": "history"})
    problem.refresh_from_db()
    assert problem.status == "history"
    entry = AuditEntry.objects.get(action="update", object_id=str(problem.pk))
    assert '"before":{"status":"active"}' in entry.changes


def test_bad_problem_status_changes_nothing(client_for, make_patient) -> None:
    patient = make_patient()
    problem = Problem.objects.create(patient=patient, icd10_code="F20.9", description="x", status="active")
    client_for("nurse").post(f"/patients/problem/{problem.pk}/status/", {"status": "cured"})
    problem.refresh_from_db()
    assert problem.status == "active"


def test_weight_outside_range_is_refused(client_for, make_patient) -> None:
    patient = make_patient(weight_kg=None)
    response = client_for("nurse").post(f"/patients/{patient.pk}/add/measurement/",
                                        {"measured_on": "2026-11-20", "weight_kg": "900"})
    assert response.status_code == 400 and not patient.measurements.exists()
