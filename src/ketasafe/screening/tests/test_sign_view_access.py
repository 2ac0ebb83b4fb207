"""Direct-URL and POST bypass attempts at sign-off by the wrong role are 403 (and audited)."""

from __future__ import annotations

import re

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.screening.models import Status

from .helpers import completed


def page_token(client, screening):
    """The decision token of the sign form the prescriber's page shows."""
    page = client.get(f"/screening/{screening.pk}/").content.decode()
    return re.search(r'name="decision_token" value="([0-9a-f]+)"', page).group(1)


@pytest.fixture
def screening(make_patient, make_staff):
    return completed(make_patient(), make_staff("nurse"))


@pytest.mark.parametrize("role", ["nurse", "front_desk"])
@pytest.mark.parametrize("action", ["sign", "not-treated"])
def test_wrong_role_posting_to_sign_views_gets_403_and_is_audited(client_for, screening, role, action):
    client = client_for(role)
    response = client.post(f"/screening/{screening.pk}/{action}/",
                           {"reason": "Posting straight to the URL."})
    assert response.status_code == 403
    screening.refresh_from_db()
    assert screening.status == Status.COMPLETED and screening.signed_by is None
    assert AuditEntry.objects.filter(action="refused", actor_user=client.user).exists()


@pytest.mark.parametrize("role", ["auditor", "cs_custodian"])
def test_roles_without_patient_access_cannot_even_see_the_screening(client_for, screening, role):
    client = client_for(role)
    assert client.get(f"/screening/{screening.pk}/").status_code == 403
    assert client.post(f"/screening/{screening.pk}/sign/").status_code == 403


def test_clinic_admin_cannot_sign_even_though_they_can_view(client_for, screening):
    client = client_for("clinic_admin")
    assert client.get(f"/screening/{screening.pk}/").status_code == 200
    assert client.post(f"/screening/{screening.pk}/sign/").status_code == 403


def test_sign_page_hides_the_sign_form_from_non_prescribers(client_for, screening):
    page = client_for("nurse").get(f"/screening/{screening.pk}/").content.decode()
    assert "Sign screening" not in page and "Awaiting a prescriber" in page


def test_get_on_the_sign_url_is_not_allowed(client_for, screening):
    assert client_for("prescriber").get(f"/screening/{screening.pk}/sign/").status_code == 405


def test_prescriber_signs_through_the_view(client_for, screening):
    client = client_for("prescriber")
    response = client.post(f"/screening/{screening.pk}/sign/", {"decision_token": page_token(client, screening)})
    assert response.status_code == 302
    screening.refresh_from_db()
    assert screening.status == Status.SIGNED


def test_needs_review_sign_without_justification_is_400_in_the_view(client_for, make_patient, make_staff):
    from ketasafe.patients.models import Problem

    patient = make_patient()
    Problem.objects.create(patient=patient, icd10_code="H40.1", description="glaucoma", status="active")
    s = completed(patient, make_staff("nurse"))
    client = client_for("prescriber")
    token = page_token(client, s)
    response = client.post(f"/screening/{s.pk}/sign/", {"justify_GLAUCOMA": "", "decision_token": token})
    assert response.status_code == 400 and b"justification" in response.content
    response = client.post(f"/screening/{s.pk}/sign/", {"justify_GLAUCOMA": "Ophthalmology cleared, IOP 15.",
                                                        "decision_token": token})
    assert response.status_code == 302


def test_second_signature_through_the_view_is_409(client_for, screening):
    client = client_for("prescriber")
    token = {"decision_token": page_token(client, screening)}
    assert client.post(f"/screening/{screening.pk}/sign/", token).status_code == 302
    response = client.post(f"/screening/{screening.pk}/sign/", token)
    assert response.status_code == 409 and b"already signed" in response.content


@pytest.mark.parametrize("url", ["/screening/rulesets/", "/screening/rulesets/new/1/"])
def test_rule_set_pages_are_for_clinic_configuration_only(client_for, url):
    assert client_for("prescriber").get(url).status_code == 403
    assert client_for("clinic_admin").get(url).status_code == 200
