"""Signing on the device: typed name, drawn signature, witness password; print view."""

from __future__ import annotations

import re

import pytest

from ketasafe.conftest import TEST_PASSWORD
from ketasafe.consent.models import ConsentSignature, Kind
from ketasafe.screening.tests.helpers import data_url, published


@pytest.fixture
def setup(make_patient, make_staff, client_for):
    client = client_for("nurse")
    patient = make_patient()
    version = published(make_staff("clinic_admin"))
    return client, patient, version


def form(patient, client, **changes):
    data = {"typed_name": patient.full_name, "signature": data_url(),
            "witness_username": client.user.username, "witness_password": TEST_PASSWORD}
    data.update(changes)
    return data


def url(patient, version):
    return f"/consent/patient/{patient.pk}/sign/{version.pk}/"


def test_signed_consent_is_stored_with_witness_and_printable(setup):
    client, patient, version = setup
    response = client.post(url(patient, version), form(patient, client))
    assert response.status_code == 302
    sig = ConsentSignature.objects.get()
    assert sig.witness == client.user and bytes(sig.signature_png).startswith(b"\x89PNG") and sig.signed_at
    page = client.get(response["Location"])
    assert page.status_code == 200 and patient.full_name.encode() in page.content
    assert sig.signature_sha256.encode() in page.content
    image = client.get(f"/consent/signature/{sig.pk}/signature.png")
    assert image["Content-Type"] == "image/png" and image.content == bytes(sig.signature_png)


@pytest.mark.parametrize(("changes", "text"), [
    ({"witness_password": "wrong-password"}, b"username or password is not correct"),
    ({"typed_name": "Somebody Else"}, b"full name as registered"),
    ({"signature": ""}, b"has not drawn a signature"),
    ({"signature": data_url(ink=False)}, b"signature is blank"),
    ({"signature": "data:image/png;base64,!!!"}, b"not valid base64"),
])
def test_bad_signing_input_is_400_with_a_clear_message_and_nothing_saved(setup, changes, text):
    client, patient, version = setup
    response = client.post(url(patient, version), form(patient, client, **changes))
    assert response.status_code == 400 and text in response.content
    assert not ConsentSignature.objects.exists()


def test_witness_must_be_allowed_to_witness(setup, make_staff):
    client, patient, version = setup
    desk = make_staff("front_desk")
    response = client.post(url(patient, version), form(patient, client, witness_username=desk.username))
    assert response.status_code == 400 and b"may not witness consent" in response.content


def test_front_desk_cannot_open_the_signing_page(client_for, setup):
    _, patient, version = setup
    assert client_for("front_desk").get(url(patient, version)).status_code == 403


def test_rems_enrollment_needs_the_prescriber_password(setup, make_staff, client_for):
    client, patient, _ = setup
    prescriber = make_staff("prescriber")
    rems = published(make_staff("clinic_admin"), "esketamine-trd", Kind.REMS_ENROLLMENT)
    response = client.post(url(patient, rems), form(patient, client))
    assert response.status_code == 400 and not ConsentSignature.objects.exists()
    response = client.post(url(patient, rems), form(patient, client, prescriber_username=prescriber.username,
                                                    prescriber_password=TEST_PASSWORD))
    assert response.status_code == 302
    assert ConsentSignature.objects.get().prescriber == prescriber


def test_signing_page_loads_the_pad_script_and_no_inline_script(setup):
    client, patient, version = setup
    page = client.get(url(patient, version)).content.decode()
    assert "ketasafe/signature.js" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # every script tag loads a file


def test_print_view_is_audited_as_print(setup):
    from ketasafe.audit.models import AuditEntry

    client, patient, version = setup
    client.post(url(patient, version), form(patient, client))
    sig = ConsentSignature.objects.get()
    client.get(f"/consent/signature/{sig.pk}/print/")
    assert AuditEntry.objects.filter(action="print", patient_id=patient.pk).exists()
