"""The patient registry: search, audited access, history edits, bad input."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from ketasafe.audit.models import AuditEntry
from ketasafe.patients import services
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


@pytest.mark.parametrize("measured_on", ["2099-01-01", "1899-12-31"])
def test_measurement_dated_in_the_future_or_before_1900_is_refused(client_for, make_patient, measured_on) -> None:
    patient = make_patient()
    before = patient.latest_measurement()
    response = client_for("nurse").post(f"/patients/{patient.pk}/add/measurement/",
                                        {"measured_on": measured_on, "weight_kg": "150"})
    assert response.status_code == 400
    assert patient.measurements.count() == 1 and patient.latest_measurement() == before


def test_measurement_dated_today_in_the_clinic_is_accepted(client_for, make_patient) -> None:
    from ketasafe.lib.timeutil import clinic_today

    patient = make_patient(weight_kg=None)
    response = client_for("nurse").post(f"/patients/{patient.pk}/add/measurement/",
                                        {"measured_on": clinic_today().isoformat(), "weight_kg": "70"})
    assert response.status_code == 302 and patient.measurements.count() == 1


def _registration(**overrides: str) -> dict[str, str]:
    data = {"mrn": "x-78", "given_name": "Ada", "family_name": "Lovelace", "birth_date": "1985-12-10",
            "sex": "female", "pregnancy_status": "unknown", "breastfeeding": "unknown"}
    data.update(overrides)
    return data


@pytest.mark.parametrize("birth_date", ["2099-01-01", "1899-12-31"])
def test_birth_date_in_the_future_or_before_1900_is_refused(client_for, birth_date) -> None:
    response = client_for("front_desk").post("/patients/new/", _registration(birth_date=birth_date))
    assert response.status_code == 400 and not Patient.objects.filter(mrn="X-78").exists()


@pytest.mark.parametrize("mrn", ["ab", "=cmd|x", "a b c", "x" * 33, "MRN_1"])
def test_malformed_mrn_is_refused(client_for, mrn) -> None:
    response = client_for("front_desk").post("/patients/new/", _registration(mrn=mrn))
    assert response.status_code == 400 and not Patient.objects.exists()


@pytest.mark.parametrize(("field", "value"), [("mrn", "a b"), ("mrn", "MRN_1"), ("birth_date", dt.date(2099, 1, 1)),
                                               ("birth_date", dt.date(1899, 12, 31))])
def test_the_registry_rules_hold_for_every_caller_not_only_the_form(make_staff, make_patient, field, value) -> None:
    """The services are the only way in (demo data, a future import): they refuse what the
    page refuses, and change nothing."""
    actor = make_staff("front_desk")
    fields = {"mrn": "X-79", "given_name": "Ada", "family_name": "Lovelace", "birth_date": dt.date(1985, 12, 10),
              "sex": "female"}
    with pytest.raises(ValidationError) as exc:
        services.do_register_patient(actor=actor, **{**fields, field: value})
    assert field in exc.value.message_dict and not Patient.objects.filter(given_name="Ada").exists()
    patient = make_patient()
    with pytest.raises(ValidationError):
        services.do_update_patient(actor=actor, patient=patient, **{field: value})
    patient.refresh_from_db()
    assert getattr(patient, field) != value


def test_a_lower_case_mrn_is_stored_as_monitors_send_it(make_staff) -> None:
    patient = services.do_register_patient(actor=make_staff("front_desk"), mrn=" mrn-7 ", given_name="Ada",
                                           family_name="Lovelace", birth_date=dt.date(1985, 12, 10), sex="female")
    assert Patient.objects.get(pk=patient.pk).mrn == "MRN-7"


def test_the_page_shows_a_registry_error_once(client_for) -> None:
    response = client_for("front_desk").post("/patients/new/", _registration(mrn="a b"))
    assert response.content.decode().count("An MRN is 3 to 32 letters, digits or dashes.") == 1


def test_every_patient_list_page_is_an_audited_view(client_for, make_patient) -> None:
    make_patient()
    client = client_for("front_desk")
    assert client.get("/patients/").status_code == 200
    entry = AuditEntry.objects.filter(action="view", object_type="patients.Patient").get()
    assert entry.detail == "patient list page=1 q=" and entry.actor == f"user:{client.user.username}"
    client.get("/patients/", {"q": "ient"})
    assert AuditEntry.objects.filter(action="view", detail="patient list page=1 q=ient").exists()


def test_nul_character_in_the_search_is_not_a_server_error(client_for, make_patient) -> None:
    make_patient(family_name="Holm")
    response = client_for("front_desk").get("/patients/", {"q": "Ho\x00lm"})
    assert response.status_code == 200 and "Holm" in response.content.decode()


@pytest.mark.parametrize("nxt", ["https://evil.example/", "//evil.example/", "/\\evil.example/",
                                 "javascript:alert(1)"])
def test_next_after_saving_a_record_never_leaves_the_site(client_for, make_patient, nxt) -> None:
    patient = make_patient(weight_kg=None)
    response = client_for("nurse").post(f"/patients/{patient.pk}/add/measurement/?next={nxt}",
                                        {"measured_on": "2026-11-20", "weight_kg": "70"})
    assert response.status_code == 302 and response["Location"] == f"/patients/{patient.pk}/"


def test_next_after_saving_a_record_may_stay_on_the_site(client_for, make_patient) -> None:
    patient = make_patient(weight_kg=None)
    response = client_for("nurse").post(f"/patients/{patient.pk}/add/measurement/?next=/sessions/",
                                        {"measured_on": "2026-11-20", "weight_kg": "70"})
    assert response["Location"] == "/sessions/"


def test_an_mrn_sent_in_lower_case_for_the_same_patient_is_no_change(make_staff, make_patient) -> None:
    patient = make_patient(mrn="T-7001")
    services.do_update_patient(actor=make_staff("front_desk"), patient=patient, mrn=" t-7001 ")
    assert not AuditEntry.objects.filter(action="update", object_type="patients.Patient").exists()
    assert Patient.objects.get(pk=patient.pk).mrn == "T-7001"
