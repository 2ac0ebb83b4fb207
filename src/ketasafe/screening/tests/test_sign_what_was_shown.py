"""A prescriber signs the decision they read: if the screening ran again after their page was
rendered (another tab), the sign-off is refused with a clear message, 409, and audited. Running a
completed screening again makes a new screening that supersedes it (a completed one is a record)."""

from __future__ import annotations

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.screening import services
from ketasafe.screening.models import Status
from ketasafe.screening.refusals import ScreeningChanged

from .helpers import completed
from .test_sign_view_access import page_token


@pytest.fixture
def setting(make_patient, make_staff, client_for):
    nurse = make_staff("nurse")
    screening = completed(make_patient(), nurse)
    assert screening.outcome == "eligible"
    return screening, nurse, client_for("prescriber")


def _rerun_in_another_tab(screening, nurse, **fields):
    return services.do_complete_screening(actor=nurse, screening=screening, **fields)


def test_signing_a_page_whose_screening_ran_again_is_refused_and_audited(setting):
    screening, nurse, client = setting
    token = page_token(client, screening)
    newer = _rerun_in_another_tab(screening, nurse, systolic=160, diastolic=95)  # needs_review (BP-HIGH)
    response = client.post(f"/screening/{screening.pk}/sign/", {"decision_token": token})
    assert response.status_code == 409
    page = response.content.decode()
    assert "changed since you opened it" in page
    assert f'href="/screening/{newer.pk}/"' in page  # the refused page leads to the newer screening
    screening.refresh_from_db()
    assert screening.status == Status.SUPERSEDED and screening.signed_at is None
    assert AuditEntry.objects.filter(action="refused", actor_user=client.user,
                                     detail__contains="ScreeningChanged").exists()
    # The newer screening's page shows its decision with its own token: signing that works.
    fresh = page_token(client, newer)
    assert fresh != token
    response = client.post(f"/screening/{newer.pk}/sign/", {
        "decision_token": fresh, "justify_BP-HIGH": "Rechecked after rest: 138/85, proceed."})
    assert response.status_code == 302
    newer.refresh_from_db()
    assert newer.status == Status.SIGNED and newer.justifications


def test_recording_not_treated_on_a_changed_screening_is_refused(setting):
    screening, nurse, client = setting
    token = page_token(client, screening)
    _rerun_in_another_tab(screening, nurse, systolic=120, diastolic=80)  # same outcome, a new run
    response = client.post(f"/screening/{screening.pk}/not-treated/",
                           {"decision_token": token, "reason": "Patient prefers to wait a month."})
    assert response.status_code == 409 and "changed since you opened it" in response.content.decode()
    screening.refresh_from_db()
    assert screening.status == Status.SUPERSEDED and not screening.not_treated_reason
    assert AuditEntry.objects.filter(action="refused", detail__contains="ScreeningChanged").exists()


def test_a_draft_copied_from_the_screening_does_not_change_what_is_signed(setting):
    # Saving changed answers starts a new draft; the decision the prescriber read is untouched.
    screening, nurse, client = setting
    token = page_token(client, screening)
    draft = services.do_save_intake(actor=nurse, screening=screening, systolic=130, diastolic=85)
    assert draft.pk != screening.pk
    response = client.post(f"/screening/{screening.pk}/sign/", {"decision_token": token})
    assert response.status_code == 302
    screening.refresh_from_db()
    assert screening.status == Status.SIGNED and screening.systolic is None


def test_a_sign_off_post_without_a_token_signs_nothing(setting):
    screening, _, client = setting
    assert client.post(f"/screening/{screening.pk}/sign/").status_code == 409
    screening.refresh_from_db()
    assert screening.status == Status.COMPLETED


def test_the_service_refuses_a_token_that_does_not_match_the_locked_row(setting, make_staff):
    screening, nurse, _ = setting
    token = services.decision_token(screening)
    _rerun_in_another_tab(screening, nurse)
    with pytest.raises(ScreeningChanged):
        services.do_sign_screening(actor=make_staff("prescriber"), screening=screening, expected_token=token)
