"""A completed screening is a record: saving or re-running its intake never reverts or rewrites it.
Changing its inputs starts a new screening (its intake fields copied) which supersedes it only once
that new one has run; until then the completed decision keeps counting, so an ineligible or
needs-review result keeps blocking treatment."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from ketasafe.audit.models import AuditEntry
from ketasafe.consent.gate import SCREENING_INELIGIBLE, treatment_allowed
from ketasafe.screening import services
from ketasafe.screening.eligibility import INELIGIBLE_UNSIGNED, eligibility
from ketasafe.screening.models import Screening, Status

from .helpers import PROTOCOL, completed, consented, published, signed


@pytest.fixture
def blocked(make_patient, make_staff):
    """A patient with a signed eligible screening and consent, and a newer ineligible screening
    (BP-CRISIS) awaiting the prescriber, which blocks treatment until a prescriber decides."""
    staff = {r: make_staff(r) for r in ("nurse", "prescriber", "clinic_admin")}
    patient = make_patient()
    signed(patient, staff["nurse"], staff["prescriber"])
    consented(patient, published(staff["clinic_admin"]), staff["nurse"])
    crisis = completed(patient, staff["nurse"], systolic=200, diastolic=120, heart_rate=88)
    assert crisis.outcome == "ineligible"
    return patient, staff, crisis


def codes(patient):
    return [p.code for p in treatment_allowed(patient, PROTOCOL, timezone.now()).missing]


def test_saving_a_completed_ineligible_screening_keeps_it_blocking(blocked):
    patient, staff, crisis = blocked
    draft = services.do_save_intake(actor=staff["nurse"], screening=crisis, systolic=120, diastolic=80)
    assert draft.pk != crisis.pk and draft.status == Status.DRAFT
    crisis.refresh_from_db()
    assert crisis.status == Status.COMPLETED and crisis.outcome == "ineligible"
    assert crisis.systolic == 200 and crisis.decision is not None
    assert codes(patient) == [SCREENING_INELIGIBLE]
    e = eligibility(patient, PROTOCOL, timezone.now())
    assert e.state == INELIGIBLE_UNSIGNED and e.awaiting == crisis and e.open == draft


def test_the_new_draft_copies_the_intake_and_applies_the_change(blocked):
    _, staff, crisis = blocked
    draft = services.do_save_intake(actor=staff["nurse"], screening=crisis, systolic=120, diastolic=80)
    assert (draft.protocol, draft.indication, draft.heart_rate) == (crisis.protocol, crisis.indication, 88)
    assert (draft.systolic, draft.diastolic) == (120, 80)
    assert draft.decision is None and draft.outcome == ""
    entries = AuditEntry.objects.filter(object_type="screening.Screening", object_id=str(draft.pk)).order_by("id")
    created, changed = [(e.action, json.loads(e.changes)) for e in entries]
    assert created[0] == "create" and created[1]["after"]["copied_from"] == crisis.pk
    assert changed == ("update", {"before": {"systolic": 200, "diastolic": 120},
                                  "after": {"systolic": 120, "diastolic": 80}})


def test_saving_a_completed_screening_unchanged_writes_nothing(blocked):
    _, staff, crisis = blocked
    before = Screening.objects.count(), AuditEntry.objects.count()
    same = services.do_save_intake(actor=staff["nurse"], screening=crisis, systolic=200)
    assert same.pk == crisis.pk and same.status == Status.COMPLETED
    assert (Screening.objects.count(), AuditEntry.objects.count()) == before


def test_the_copy_supersedes_the_completed_screening_once_it_has_run(blocked):
    patient, staff, crisis = blocked
    draft = services.do_save_intake(actor=staff["nurse"], screening=crisis, systolic=120, diastolic=80)
    rerun = services.do_complete_screening(actor=staff["nurse"], screening=draft)
    assert rerun.pk == draft.pk and rerun.outcome == "eligible"
    crisis.refresh_from_db()
    assert crisis.status == Status.SUPERSEDED and crisis.superseded_by == rerun
    assert crisis.outcome == "ineligible"  # the record of what was found stays
    # The contraindication found keeps blocking until a prescriber decides on the re-run.
    assert codes(patient) == [SCREENING_INELIGIBLE]
    services.do_sign_screening(actor=staff["prescriber"], screening=rerun)
    assert codes(patient) == []


def test_re_running_a_completed_screening_starts_a_new_one(blocked):
    patient, staff, crisis = blocked
    decision = crisis.decision
    rerun = services.do_complete_screening(actor=staff["nurse"], screening=crisis, systolic=118, diastolic=76)
    assert rerun.pk != crisis.pk and rerun.status == Status.COMPLETED and rerun.outcome == "eligible"
    crisis.refresh_from_db()
    assert crisis.status == Status.SUPERSEDED and crisis.superseded_by == rerun
    assert crisis.decision == decision and crisis.systolic == 200
    assert codes(patient) == [SCREENING_INELIGIBLE]  # until the prescriber signs the re-run
    services.do_sign_screening(actor=staff["prescriber"], screening=rerun)
    assert codes(patient) == []


def test_a_new_intake_does_not_supersede_a_completed_screening_before_it_runs(blocked):
    patient, staff, crisis = blocked
    services.do_start_intake(actor=staff["nurse"], patient=patient, protocol=PROTOCOL, indication="re-screen")
    crisis.refresh_from_db()
    assert crisis.status == Status.COMPLETED
    assert codes(patient) == [SCREENING_INELIGIBLE]


def test_save_draft_on_a_completed_screening_in_the_browser_keeps_it_blocking(blocked, client_for):
    patient, _, crisis = blocked
    form = {"indication": "TRD", "hepatic_impairment": "none", "drug_screen": "negative",
            "systolic": "124", "diastolic": "78", "heart_rate": "70", "spo2": "98", "save_draft": "1"}
    response = client_for("nurse").post(f"/screening/{crisis.pk}/intake/", form)
    draft = Screening.objects.get(patient=patient, status=Status.DRAFT)
    assert response.status_code == 302 and response["Location"] == f"/screening/{draft.pk}/intake/"
    crisis.refresh_from_db()
    assert crisis.status == Status.COMPLETED and crisis.outcome == "ineligible"
    assert codes(patient) == [SCREENING_INELIGIBLE]
    page = client_for("nurse").get(f"/patients/{patient.pk}/").content.decode()
    assert f"/screening/{crisis.pk}/" in page  # the prescriber can still reach the blocking decision
