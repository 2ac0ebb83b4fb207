"""Two screenings of one patient run at once, or a screening runs while the previous one is
signed, each on its own database connection: one goes first and the other sees what it did
(a clear refusal, or a screening that supersedes), never a deadlock or a database error.
PostgreSQL is where this can go wrong (row locks taken in different orders); SQLite queues
writers, so there the tests pin the same outcomes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from ketasafe.lib.tests.threads import at_once, in_threads, slow_audit
from ketasafe.screening import services
from ketasafe.screening.models import RuleSetVersion, Screening, Status
from ketasafe.screening.refusals import ScreeningNotCompleted, ScreeningNotEditable

from .helpers import PROTOCOL, completed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def slow_audit_in_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The calls overlap every time instead of only when the threads happen to interleave."""
    slow_audit(monkeypatch)


@pytest.fixture
def staff(make_staff: Callable[..., Any]) -> dict[str, Any]:
    return {"nurse": make_staff("nurse"), "nurse2": make_staff("nurse"),
            "prescriber": make_staff("prescriber"), "admin": make_staff("clinic_admin")}


@pytest.fixture
def awaiting_and_draft(make_patient: Callable[..., Any], staff: dict[str, Any]) -> tuple[Screening, Screening]:
    """A completed screening awaiting sign-off, and a newer draft of the same patient and
    protocol (a draft does not supersede a completed screening until it runs)."""
    patient = make_patient()
    older = completed(patient, staff["nurse"])
    draft = services.do_start_intake(actor=staff["nurse2"], patient=patient, protocol=PROTOCOL,
                                     indication="treatment-resistant depression")
    assert Screening.objects.get(pk=older.pk).status == Status.COMPLETED
    return older, draft


def _open(patient_id: int) -> list[Screening]:
    return list(Screening.objects.filter(patient_id=patient_id, protocol=PROTOCOL,
                                         status__in=[Status.DRAFT, Status.COMPLETED]))


def test_running_the_draft_and_rerunning_the_older_screening_at_once_runs_one(awaiting_and_draft, staff):
    older, draft = awaiting_and_draft
    results = at_once(
        lambda: services.do_complete_screening(actor=staff["nurse"], screening=older, systolic=150),
        lambda: services.do_complete_screening(actor=staff["nurse2"], screening=draft))
    ran = [r for r in results if isinstance(r, Screening)]
    refused = [r for r in results if isinstance(r, ScreeningNotEditable)]
    assert len(ran) == 1 and len(refused) == 1, results
    assert "This screening is closed; start a new one." in str(refused[0])
    # The one that ran superseded everything else that was open: one screening counts.
    assert [s.pk for s in _open(older.patient_id)] == [ran[0].pk]
    assert Screening.objects.get(pk=ran[0].pk).status == Status.COMPLETED
    assert Screening.objects.get(pk=older.pk).status == Status.SUPERSEDED


def test_signing_the_older_screening_while_the_draft_runs_is_serialised(awaiting_and_draft, staff):
    older, draft = awaiting_and_draft
    def sign_a_moment_later() -> Screening:
        # The run usually takes its first lock first: the order that used to deadlock.
        time.sleep(0.1)
        return services.do_sign_screening(actor=staff["prescriber"], screening=older)

    results = at_once(sign_a_moment_later,
                       lambda: services.do_complete_screening(actor=staff["nurse2"], screening=draft))
    signed, ran = results
    assert isinstance(ran, Screening) and ran.pk == draft.pk, results
    older.refresh_from_db()
    draft.refresh_from_db()
    assert draft.status == Status.COMPLETED
    if isinstance(signed, Screening):  # signed first: the newer run leaves a signed one alone
        assert older.status == Status.SIGNED and older.signed_by == staff["prescriber"]
    else:  # ran first: the older one was superseded before the prescriber's lock
        assert isinstance(signed, ScreeningNotCompleted), results
        assert f"superseded by screening {draft.pk}" in str(signed)
        assert older.status == Status.SUPERSEDED and older.signed_at is None


def test_a_screening_from_the_api_while_a_draft_runs_is_serialised(awaiting_and_draft, staff):
    from ketasafe.lib.timeutil import clinic_today

    older, draft = awaiting_and_draft
    patient = older.patient
    body = {"protocol": PROTOCOL, "assessed_on": clinic_today().isoformat(),
            "patient": {"birth_date": patient.birth_date.isoformat(), "sex": patient.sex,
                        "weight_kg": float(patient.latest_measurement(on=clinic_today()).weight_kg)}}
    results = at_once(
        lambda: services.do_screen_from_api(actor=staff["nurse"], patient=patient, data=body),
        lambda: services.do_complete_screening(actor=staff["nurse2"], screening=draft))
    from_api, ran = results
    assert isinstance(from_api, Screening), results
    # Whichever went second superseded the other (or found its draft superseded already).
    assert isinstance(ran, Screening | ScreeningNotEditable), results
    assert [s.pk for s in _open(patient.pk)] in ([from_api.pk], [draft.pk])
    assert Screening.objects.get(pk=older.pk).status == Status.SUPERSEDED


def test_first_use_of_a_new_rule_set_by_two_patients_at_once_does_not_deadlock(make_patient, staff):
    """Marking a rule set version used locks its row; a re-run (whose copy writes the audit
    first) and a draft's run must take that lock and the audit log's in the same order."""
    admin = staff["admin"]
    one, two = make_patient(), make_patient()
    rerun = completed(one, staff["nurse"])
    draft = services.do_start_intake(actor=staff["nurse2"], patient=two, protocol=PROTOCOL,
                                     indication="treatment-resistant depression")
    fresh = services.do_create_ruleset_version(actor=admin, base=services.active_ruleset(),
                                               version="clinic-2")
    services.do_activate_ruleset(actor=admin, ruleset=fresh)
    assert not RuleSetVersion.objects.get(pk=fresh.pk).used
    results = at_once(
        lambda: services.do_complete_screening(actor=staff["nurse"], screening=rerun, systolic=150),
        lambda: services.do_complete_screening(actor=staff["nurse2"], screening=draft))
    assert all(isinstance(r, Screening) and r.rules_version == "clinic-2" for r in results), results
    assert RuleSetVersion.objects.get(pk=fresh.pk).used


def test_a_screening_run_and_a_patient_page_view_at_once_do_not_deadlock(make_patient, make_staff, monkeypatch):
    """A run locks the patient's row first; a page view writes an audit entry naming the patient,
    checked at commit with a KEY SHARE lock on that row, while it holds the audit chain. The
    patient lock is FOR NO KEY UPDATE, which that check does not wait for."""
    from ketasafe import audit

    nurse = make_staff("nurse")
    patient = make_patient()
    draft = services.do_start_intake(actor=nurse, patient=patient, protocol=PROTOCOL,
                                     indication="treatment-resistant depression")
    # The run holds the patient row; its first audit entry comes a moment later.
    patient_locked = slow_audit(monkeypatch, seconds=0.6, threads=lambda name: name == "run")

    def view() -> Any:  # what get_patient_for does on every patient page (its own transaction)
        patient_locked.wait(10)
        with transaction.atomic():
            return audit.record("view", actor=nurse, patient=patient, obj=patient, detail="/patients/x/")

    results = in_threads({"run": lambda: services.do_complete_screening(actor=nurse, screening=draft),
                          "view": view})
    assert not any(isinstance(r, BaseException) for r in results.values()), results
