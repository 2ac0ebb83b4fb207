"""The intake in the browser: front desk starts it, the record fills history, running explains itself."""

from __future__ import annotations

from ketasafe.patients.models import Problem
from ketasafe.screening.models import Screening, Status


def _start(client, patient, protocol="iv-ketamine-depression"):
    response = client.post(f"/screening/patient/{patient.pk}/start/",
                           {"protocol": protocol, "indication": "TRD, two failed SSRIs"})
    assert response.status_code == 302, response.content
    return Screening.objects.get(patient=patient, status=Status.DRAFT)


PHQ9 = {f"phq9_{i}": "1" for i in range(1, 10)}
CSSRS_NONE = {"cssrs_1": "0", "cssrs_2": "0", "cssrs_6": "0"}


def _intake(**extra):
    data = {"indication": "TRD", "hepatic_impairment": "none", "drug_screen": "negative",
            "systolic": "128", "diastolic": "80", "heart_rate": "70", "spo2": "98", **PHQ9, **CSSRS_NONE}
    data.update(extra)
    return data


def test_front_desk_starts_and_screening_runs_with_findings_shown(client_for, make_patient):
    patient = make_patient()
    Problem.objects.create(patient=patient, icd10_code="I48.91", description="AF", status="active")
    s = _start(client_for("front_desk"), patient)
    nurse = client_for("nurse")
    response = nurse.post(f"/screening/{s.pk}/intake/", _intake(), follow=True)
    assert response.status_code == 200
    s.refresh_from_db()
    assert s.status == Status.COMPLETED and s.outcome == "needs_review"
    assert s.phq9 == [1] * 9 and s.cssrs_screen == [0] * 7
    page = response.content.decode()
    for text in ("ARRHYTHMIA", "PHQ9-ITEM9", "clinical-facts", "Evidence", "default-v1"):
        assert text in page


def test_out_of_range_vitals_are_a_400_naming_the_field_and_nothing_is_saved(client_for, make_patient):
    s = _start(client_for("nurse"), make_patient())
    response = client_for("nurse").post(f"/screening/{s.pk}/intake/", _intake(systolic="400"))
    assert response.status_code == 400 and b"less than or equal to 300" in response.content
    s.refresh_from_db()
    assert s.status == Status.DRAFT and s.systolic is None


def test_phq9_half_answered_is_refused(client_for, make_patient):
    s = _start(client_for("nurse"), make_patient())
    response = client_for("nurse").post(f"/screening/{s.pk}/intake/", _intake(phq9_9=""))
    assert response.status_code == 400 and b"answer all 9 items" in response.content


def test_cssrs_question_the_screener_skips_is_refused(client_for, make_patient):
    s = _start(client_for("nurse"), make_patient())
    response = client_for("nurse").post(f"/screening/{s.pk}/intake/", _intake(cssrs_4="1"))
    assert response.status_code == 400 and b"skips question 4" in response.content


def test_missing_weight_is_a_clear_400_and_nothing_is_saved(client_for, make_patient):
    s = _start(client_for("nurse"), make_patient(weight_kg=None))
    response = client_for("nurse").post(f"/screening/{s.pk}/intake/", _intake())
    assert response.status_code == 400 and b"patient.weight_kg: no weight recorded" in response.content
    s.refresh_from_db()
    assert s.status == Status.DRAFT and s.decision is None and s.systolic is None


def test_unknown_protocol_at_start_is_a_400(client_for, make_patient):
    response = client_for("nurse").post(f"/screening/patient/{make_patient().pk}/start/",
                                        {"protocol": "oral-ketamine", "indication": "x"})
    assert response.status_code == 400 and not Screening.objects.exists()


def test_save_draft_keeps_answers_without_screening(client_for, make_patient):
    s = _start(client_for("nurse"), make_patient())
    response = client_for("nurse").post(f"/screening/{s.pk}/intake/", {**_intake(), "save_draft": "1"})
    assert response.status_code == 302
    s.refresh_from_db()
    assert s.status == Status.DRAFT and s.systolic == 128 and s.decision is None
