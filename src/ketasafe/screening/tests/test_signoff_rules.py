"""Sign-off: only prescribers; justifications per warning; ineligible never signed; signed is final."""

from __future__ import annotations

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.patients import services as patient_services
from ketasafe.patients.models import Problem
from ketasafe.screening import services
from ketasafe.screening.models import RuleSetVersion, Screening, Status
from ketasafe.screening.refusals import (
    AlreadySigned,
    IneligibleCannotBeSigned,
    InputsChangedSinceScreening,
    JustificationMissing,
    NotAllowedToSign,
    ReasonRequired,
    RuleSetVersionLocked,
    ScreeningNotCompleted,
    ScreeningNotEditable,
)

from .helpers import JUSTIFICATION, completed, signed


@pytest.fixture
def staff(make_staff):
    return {r: make_staff(r) for r in ("nurse", "prescriber", "front_desk")}


def refusals(screening):
    return AuditEntry.objects.filter(action="refused", object_type="screening.Screening",
                                     object_id=str(screening.pk))


def test_eligible_screening_is_signed_as_is_by_a_prescriber(make_patient, staff):
    s = completed(make_patient(), staff["nurse"])
    assert s.outcome == "eligible"
    s = services.do_sign_screening(actor=staff["prescriber"], screening=s)
    assert s.status == Status.SIGNED and s.signed_by == staff["prescriber"] and s.signed_at


@pytest.mark.parametrize("role", ["nurse", "front_desk"])
def test_non_prescriber_signature_is_refused_and_audited(make_patient, staff, role):
    s = completed(make_patient(), staff["nurse"])
    with pytest.raises(NotAllowedToSign):
        services.do_sign_screening(actor=staff[role], screening=s)
    s.refresh_from_db()
    assert s.status == Status.COMPLETED and s.signed_at is None
    entry = refusals(s).get()
    assert entry.actor_user == staff[role] and "NotAllowedToSign" in entry.detail


def test_needs_review_without_a_justification_for_each_warning_is_refused(make_patient, staff):
    patient = make_patient()
    for code in ("H40.10", "I48.91"):  # GLAUCOMA and ARRHYTHMIA: two warnings
        Problem.objects.create(patient=patient, icd10_code=code, description=code, status="active")
    s = completed(patient, staff["nurse"])
    assert s.outcome == "needs_review"
    assert sorted(f["rule"] for f in s.warnings) == ["ARRHYTHMIA", "GLAUCOMA"]
    with pytest.raises(JustificationMissing) as exc:
        services.do_sign_screening(actor=staff["prescriber"], screening=s, justifications={"GLAUCOMA": JUSTIFICATION})
    assert exc.value.rule_ids == ["ARRHYTHMIA"]
    with pytest.raises(JustificationMissing):
        services.do_sign_screening(actor=staff["prescriber"], screening=s,
                                   justifications={"GLAUCOMA": JUSTIFICATION, "ARRHYTHMIA": "   ok  "})
    assert refusals(s).count() == 2
    s = services.do_sign_screening(actor=staff["prescriber"], screening=s,
                                   justifications={"GLAUCOMA": JUSTIFICATION, "ARRHYTHMIA": JUSTIFICATION,
                                                   "UNRELATED": "dropped"})
    assert s.status == Status.SIGNED
    assert s.justifications == {"GLAUCOMA": JUSTIFICATION, "ARRHYTHMIA": JUSTIFICATION}


def test_ineligible_cannot_be_signed_as_eligible_only_recorded_as_not_treated(make_patient, staff):
    patient = make_patient()
    Problem.objects.create(patient=patient, icd10_code="I67.1", description="aneurysm", status="active")
    s = completed(patient, staff["nurse"])
    assert s.outcome == "ineligible"
    with pytest.raises(IneligibleCannotBeSigned):
        services.do_sign_screening(actor=staff["prescriber"], screening=s)
    assert refusals(s).count() == 1
    with pytest.raises(ReasonRequired):
        services.do_record_not_treated(actor=staff["prescriber"], screening=s, reason=" ")
    s = services.do_record_not_treated(actor=staff["prescriber"], screening=s, reason="Cerebral aneurysm on MRI.")
    assert s.status == Status.NOT_TREATED and s.not_treated_reason == "Cerebral aneurysm on MRI."


def test_second_signature_is_refused_and_audited(make_patient, make_staff, staff):
    s = signed(make_patient(), staff["nurse"], staff["prescriber"])
    first = (s.signed_by_id, s.signed_at)
    other = make_staff("prescriber")
    with pytest.raises(AlreadySigned):
        services.do_sign_screening(actor=other, screening=s)
    with pytest.raises(AlreadySigned):
        services.do_record_not_treated(actor=other, screening=s, reason="Changed my mind about this.")
    s.refresh_from_db()
    assert (s.signed_by_id, s.signed_at) == first
    assert refusals(s).count() == 2


def test_signed_screening_is_immutable(make_patient, staff):
    s = signed(make_patient(), staff["nurse"], staff["prescriber"])
    with pytest.raises(ScreeningNotEditable):
        services.do_save_intake(actor=staff["nurse"], screening=s, systolic=200)
    with pytest.raises(ScreeningNotEditable):
        services.do_complete_screening(actor=staff["nurse"], screening=s)
    s.refresh_from_db()
    assert s.systolic is None and s.status == Status.SIGNED


def test_refused_audit_entry_survives_an_outer_rollback_of_the_change(make_patient, staff):
    # The refusal is written after the refused change's own transaction rolled back.
    s = completed(make_patient(), staff["nurse"])
    before = AuditEntry.objects.count()
    with pytest.raises(NotAllowedToSign):
        services.do_sign_screening(actor=staff["nurse"], screening=s)
    assert AuditEntry.objects.count() == before + 1


def test_history_change_after_the_run_must_be_rescreened_before_signing(make_patient, staff):
    patient = make_patient()
    s = completed(patient, staff["nurse"])
    patient_services.do_add_record(actor=staff["nurse"], patient=patient, model=Problem,
                                   icd10_code="F20.9", description="Schizophrenia", status="active")
    with pytest.raises(InputsChangedSinceScreening):
        services.do_sign_screening(actor=staff["prescriber"], screening=s)


def test_a_new_signed_screening_supersedes_the_old_one(make_patient, staff):
    patient = make_patient()
    old = signed(patient, staff["nurse"], staff["prescriber"])
    draft = services.do_start_intake(actor=staff["nurse"], patient=patient, protocol=old.protocol, indication="x")
    old.refresh_from_db()
    assert old.status == Status.SIGNED  # still valid while the new one is in progress
    new = signed(patient, staff["nurse"], staff["prescriber"])
    old.refresh_from_db()
    draft.refresh_from_db()
    assert old.status == Status.SUPERSEDED and old.superseded_by == new
    assert draft.status == Status.SUPERSEDED


def test_decision_stores_every_finding_and_the_rule_set_version(make_patient, staff):
    patient = make_patient(sex="female", pregnancy_status="unknown")
    s = completed(patient, staff["nurse"], systolic=150, diastolic=85)
    assert s.rules_version == "default-v1" and s.decision["rules_version"] == "default-v1"
    rules = {f["rule"]: f for f in s.decision["findings"]}
    assert set(rules) >= {"BP-HIGH", "PREGNANCY-UNKNOWN"}
    assert all({"message", "evidence", "source", "severity"} <= f.keys() for f in rules.values())
    assert s.intake["vitals"] == {"systolic": 150, "diastolic": 85}
    assert RuleSetVersion.objects.get(version="default-v1").used


def test_rule_set_versions_cannot_be_changed(db):
    row = RuleSetVersion.objects.get(version="default-v1")
    row.note = "edited"
    with pytest.raises(RuleSetVersionLocked):
        row.save()


def test_only_start_intake_roles_start_an_intake(make_patient, make_staff):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.do_start_intake(actor=make_staff("clinic_admin"), patient=make_patient(),
                                 protocol="iv-ketamine-depression", indication="x")
    assert not Screening.objects.exists()


def test_editing_a_completed_intake_starts_a_new_draft_and_keeps_the_completed_one(make_patient, staff):
    s = completed(make_patient(), staff["nurse"])
    draft = services.do_save_intake(actor=staff["nurse"], screening=s, systolic=120, diastolic=80)
    assert draft.pk != s.pk and draft.status == Status.DRAFT and draft.decision is None
    with pytest.raises(ScreeningNotCompleted):
        services.do_sign_screening(actor=staff["prescriber"], screening=draft)
    s.refresh_from_db()
    assert s.status == Status.COMPLETED and s.decision is not None and s.systolic is None
