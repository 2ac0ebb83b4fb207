"""Withdrawal takes effect at once, is audited, and happens only once."""

from __future__ import annotations

import pytest
from django.utils import timezone

from ketasafe.audit.models import AuditEntry
from ketasafe.consent import services
from ketasafe.consent.exceptions import AlreadyWithdrawn
from ketasafe.consent.gate import treatment_allowed
from ketasafe.consent.models import Kind
from ketasafe.screening.tests.helpers import PROTOCOL, consented, published, signed


def test_withdrawal_blocks_treatment_at_once_and_is_audited(make_patient, make_staff):
    nurse, prescriber, admin = make_staff("nurse"), make_staff("prescriber"), make_staff("clinic_admin")
    patient = make_patient()
    signed(patient, nurse, prescriber)
    sig = consented(patient, published(admin), nurse)
    assert treatment_allowed(patient, PROTOCOL, timezone.now()).allowed
    services.do_withdraw(actor=nurse, signature=sig, reason="Patient changed their mind.")
    gate = treatment_allowed(patient, PROTOCOL, timezone.now())
    assert not gate.allowed and [p.code for p in gate.missing] == ["consent_withdrawn"]
    entry = AuditEntry.objects.get(object_type="consent.ConsentSignature", object_id=str(sig.pk), action="update")
    assert entry.detail == "consent withdrawn" and entry.patient_id == patient.pk
    with pytest.raises(AlreadyWithdrawn):
        services.do_withdraw(actor=nurse, signature=sig)


def test_signing_again_after_withdrawal_restores_consent(make_patient, make_staff):
    nurse, admin = make_staff("nurse"), make_staff("clinic_admin")
    patient = make_patient()
    version = published(admin)
    services.do_withdraw(actor=nurse, signature=consented(patient, version, nurse))
    consented(patient, version, nurse)
    codes = [p.code for p in treatment_allowed(patient, PROTOCOL, timezone.now()).missing]
    assert [c for c in codes if c.startswith("consent_")] == []  # not withdrawn, missing or stale
    assert codes == ["screening_missing"]  # the only thing left is the (never done) screening


def test_withdrawn_rems_enrollment_means_not_enrolled(make_patient, make_staff):
    nurse, prescriber, admin = make_staff("nurse"), make_staff("prescriber"), make_staff("clinic_admin")
    patient = make_patient()
    sig = consented(patient, published(admin, "esketamine-trd", Kind.REMS_ENROLLMENT), nurse, prescriber)
    services.do_withdraw(actor=nurse, signature=sig)
    codes = [p.code for p in treatment_allowed(patient, "esketamine-trd", timezone.now()).missing]
    assert "rems_enrollment_missing" in codes


def test_withdraw_view_is_for_witnessing_roles(client_for, make_patient, make_staff):
    nurse = make_staff("nurse")
    sig = consented(make_patient(), published(make_staff("clinic_admin")), nurse)
    assert client_for("front_desk").post(f"/consent/signature/{sig.pk}/withdraw/").status_code == 403
    response = client_for("nurse").post(f"/consent/signature/{sig.pk}/withdraw/", {"reason": "phoned in"})
    assert response.status_code == 302
    sig.refresh_from_db()
    assert sig.withdrawn_at is not None and sig.withdrawal_reason == "phoned in"


def test_withdrawing_an_older_signature_withdraws_the_consent_not_only_that_row(make_patient, make_staff):
    nurse, prescriber, admin = make_staff("nurse"), make_staff("prescriber"), make_staff("clinic_admin")
    patient = make_patient()
    signed(patient, nurse, prescriber)
    version = published(admin)
    older = consented(patient, version, nurse)
    consented(patient, version, nurse)  # signed twice; the gate reads the newest
    services.do_withdraw(actor=nurse, signature=older)
    gate = treatment_allowed(patient, PROTOCOL, timezone.now())
    assert not gate.allowed and [p.code for p in gate.missing] == ["consent_withdrawn"]


def test_the_signing_service_checks_its_actor_and_the_image(make_patient, make_staff):
    from django.core.exceptions import PermissionDenied

    from ketasafe.consent.exceptions import ConsentInputInvalid
    from ketasafe.consent.models import ConsentSignature
    from ketasafe.screening.tests.helpers import png

    nurse, front, admin = make_staff("nurse"), make_staff("front_desk"), make_staff("clinic_admin")
    patient = make_patient()
    version = published(admin)
    with pytest.raises(PermissionDenied):
        services.do_sign_consent(actor=front, version=version, patient=patient, typed_name=patient.full_name,
                                 signature_png=png(), witness=nurse)
    with pytest.raises(ConsentInputInvalid):
        services.do_sign_consent(actor=nurse, version=version, patient=patient, typed_name=patient.full_name,
                                 signature_png=b"x", witness=nurse)
    assert not ConsentSignature.objects.exists()
