"""Publishing a new consent version makes earlier signatures stale; versions are fixed once published."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ketasafe.consent import services
from ketasafe.consent.exceptions import ConsentInputInvalid, ConsentVersionLocked, ConsentVersionNotCurrent
from ketasafe.consent.gate import treatment_allowed
from ketasafe.consent.models import Kind
from ketasafe.screening.tests.helpers import PROTOCOL, consented, png, published, signed


@pytest.fixture
def staff(make_staff):
    return {r: make_staff(r) for r in ("nurse", "prescriber", "clinic_admin")}


def consent_codes(patient, at=None):
    gate = treatment_allowed(patient, PROTOCOL, at or timezone.now())
    return [p.code for p in gate.missing if p.code.startswith("consent")]


def test_publishing_a_new_version_makes_earlier_signatures_stale(make_patient, staff):
    patient = make_patient()
    signed(patient, staff["nurse"], staff["prescriber"])
    consented(patient, published(staff["clinic_admin"]), staff["nurse"])
    assert treatment_allowed(patient, PROTOCOL, timezone.now()).allowed
    v2 = published(staff["clinic_admin"], effective=dt.date(2021, 1, 1), title="Consent v2")
    assert consent_codes(patient) == ["consent_stale"]
    consented(patient, v2, staff["nurse"])
    assert treatment_allowed(patient, PROTOCOL, timezone.now()).allowed


def test_a_version_with_a_future_effective_date_is_stale_only_from_that_day(make_patient, staff):
    patient = make_patient()
    consented(patient, published(staff["clinic_admin"]), staff["nurse"])
    future = timezone.localdate() + dt.timedelta(days=10)
    published(staff["clinic_admin"], effective=future)
    assert consent_codes(patient) == []
    assert consent_codes(patient, timezone.now() + dt.timedelta(days=11)) == ["consent_stale"]


def test_a_draft_version_changes_nothing_and_cannot_be_signed(make_patient, staff):
    patient = make_patient()
    consented(patient, published(staff["clinic_admin"]), staff["nurse"])
    draft = services.do_create_version(actor=staff["clinic_admin"], protocol=PROTOCOL, kind=Kind.TREATMENT,
                                       title="Draft", body="...", effective_date=dt.date(2021, 1, 1))
    assert consent_codes(patient) == []
    with pytest.raises(ConsentVersionNotCurrent):
        consented(patient, draft, staff["nurse"])


def test_published_version_cannot_be_published_again(staff):
    v = published(staff["clinic_admin"])
    with pytest.raises(ConsentVersionLocked):
        services.do_publish_version(actor=staff["clinic_admin"], version=v)


def test_an_old_version_cannot_be_signed_after_a_new_one_is_in_force(make_patient, staff):
    v1 = published(staff["clinic_admin"])
    published(staff["clinic_admin"], effective=dt.date(2021, 1, 1))
    with pytest.raises(ConsentVersionNotCurrent):
        consented(make_patient(), v1, staff["nurse"])


def test_versions_are_numbered_per_document(staff):
    assert [published(staff["clinic_admin"]).version for _ in range(3)] == [1, 2, 3]
    assert published(staff["clinic_admin"], protocol="iv-ketamine-crps").version == 1


def test_rems_document_only_for_esketamine(staff):
    with pytest.raises(ConsentInputInvalid):
        published(staff["clinic_admin"], protocol="iv-ketamine-depression", kind=Kind.REMS_ENROLLMENT)


def test_typed_name_must_match_the_patient_and_rems_needs_a_prescriber(make_patient, staff):
    patient = make_patient()
    v = published(staff["clinic_admin"])
    with pytest.raises(ConsentInputInvalid, match="typed_name"):
        services.do_sign_consent(actor=staff["nurse"], version=v, patient=patient, typed_name="Someone Else",
                                 signature_png=png(), witness=staff["nurse"])
    rems = published(staff["clinic_admin"], "esketamine-trd", Kind.REMS_ENROLLMENT)
    with pytest.raises(ConsentInputInvalid, match="prescriber"):
        consented(patient, rems, staff["nurse"])
    from ketasafe.consent.exceptions import SignerNotAllowed

    with pytest.raises(SignerNotAllowed):
        consented(patient, rems, staff["nurse"], prescriber=staff["nurse"])


def test_clinic_admin_writes_and_publishes_a_version_in_the_app(client_for):
    from ketasafe.consent.models import ConsentVersion

    client = client_for("clinic_admin")
    response = client.post("/consent/documents/new/", {
        "protocol": "esketamine-trd", "kind": "treatment", "title": "Consent", "body": "Text",
        "effective_date": "2026-01-01"})
    assert response.status_code == 302
    version = ConsentVersion.objects.get()
    assert not version.published
    assert client.post(f"/consent/versions/{version.pk}/publish/").status_code == 302
    version.refresh_from_db()
    assert version.published and version.published_by == client.user
    bad = client.post("/consent/documents/new/", {"protocol": "iv-ketamine-crps", "kind": "rems_enrollment",
                                                  "title": "x", "body": "y", "effective_date": "2026-01-01"})
    assert bad.status_code == 400 and b"only for esketamine" in bad.content


def test_nurse_cannot_publish_consent_documents(client_for, make_staff):
    version = services.do_create_version(actor=make_staff("clinic_admin"), protocol=PROTOCOL, kind=Kind.TREATMENT,
                                         title="t", body="b", effective_date=dt.date(2021, 1, 1))
    assert client_for("nurse").post(f"/consent/versions/{version.pk}/publish/").status_code == 403
    version.refresh_from_db()
    assert not version.published
