"""Orders: a prescriber signs with their password, for an allowed patient, with a computed dose;
a change is a new version."""

from __future__ import annotations

import datetime as dt

import pytest

from ketasafe.conftest import TEST_PASSWORD
from ketasafe.protocols import services
from ketasafe.protocols.errors import OrderRefused, ReauthFailed, TreatmentNotAllowed
from ketasafe.protocols.models import OrderStatus, TreatmentOrder
from ketasafe.sessions.tests.helpers import version

pytestmark = pytest.mark.django_db


def _sign(patient, actor, *, password=TEST_PASSWORD, protocol="iv-ketamine-depression", **kw):
    args = {"sessions_ordered": 6, "dose_parameters": {}}
    args.update(kw)
    return services.do_sign_order(actor=actor, patient=patient, protocol_version=version(protocol),
                                  password=password, **args)


def test_prescriber_signs_with_password_and_the_dose_is_computed(gate, team, patient):
    order = _sign(patient, team["prescriber"], dose_parameters={"mg_per_kg": "0.5"})
    assert order.status == OrderStatus.SIGNED and order.version == 1
    assert order.signed_dose_preview["session_1"]["dose_mg"] == 40.0  # 80 kg x 0.5 mg/kg
    assert order.signature_method == "password"


def test_wrong_password_signs_nothing(gate, team, patient):
    with pytest.raises(ReauthFailed):
        _sign(patient, team["prescriber"], password="not it")
    with pytest.raises(ReauthFailed):
        _sign(patient, team["prescriber"], password="")
    assert not TreatmentOrder.objects.exists()


def test_a_nurse_cannot_sign(gate, team, patient):
    with pytest.raises(OrderRefused, match="Only a prescriber"):
        _sign(patient, team["nurse"])


def test_treatment_not_allowed_refuses_the_order(gate, team, patient):
    gate.deny("screening_missing", "no signed screening")
    with pytest.raises(TreatmentNotAllowed, match="no signed screening"):
        _sign(patient, team["prescriber"])
    assert not TreatmentOrder.objects.exists()


@pytest.mark.parametrize("params,option", [
    ({"mg_per_kg": "0.9"}, "--mg-per-kg"),
    ({"concentration_mg_per_ml": "25"}, "--concentration-mg-per-ml"),
])
def test_dose_out_of_range_is_refused_naming_the_limit(gate, team, patient, params, option):
    with pytest.raises(OrderRefused) as exc:
        _sign(patient, team["prescriber"], dose_parameters=params)
    assert option in str(exc.value) and exc.value.field == option


def test_iv_order_needs_a_dated_weight(gate, team, make_patient):
    with pytest.raises(OrderRefused, match="--weight-kg is required"):
        _sign(make_patient(weight_kg=None), team["prescriber"])


def test_esketamine_order_uses_56_then_the_ordered_dose(gate, team, patient):
    order = _sign(patient, team["prescriber"], protocol="esketamine-trd",
                  dose_parameters={"dose_mg": 84})
    assert order.signed_dose_preview["session_1"]["dose_mg"] == 56.0
    assert order.signed_dose_preview["later_sessions"]["devices"] == 3
    with pytest.raises(OrderRefused, match="not an allowed dose"):
        _sign(patient, team["prescriber"], protocol="esketamine-trd", dose_parameters={"dose_mg": 70})


def test_changing_an_order_makes_a_new_version(gate, team, patient):
    v1 = _sign(patient, team["prescriber"], course_start=dt.date(2026, 1, 5))
    v2 = _sign(patient, team["prescriber2"], supersedes=v1, sessions_ordered=8,
               dose_parameters={"mg_per_kg": "0.6"}, course_start=dt.date(2027, 1, 1))
    v1.refresh_from_db()
    assert v1.status == OrderStatus.SUPERSEDED and v2.status == OrderStatus.SIGNED
    assert (v2.version, v2.supersedes, v2.root, v2.course_start) == (2, v1, v1, dt.date(2026, 1, 5))
    assert services.current_version(v1) == v2
    with pytest.raises(OrderRefused, match="superseded"):
        _sign(patient, team["prescriber"], supersedes=v1)
    with pytest.raises(OrderRefused, match="kind of treatment"):
        _sign(patient, team["prescriber"], supersedes=v2, protocol="esketamine-trd")


def test_order_page_previews_then_signs_only_with_password(gate, team, patient, client_for):
    from django.test import Client

    client = Client()
    client.force_login(team["prescriber"])
    url = f"/protocols/orders/new/{patient.pk}/"
    assert client.get(url).status_code == 200
    form = {"protocol_version": version("iv-ketamine-depression").pk, "sessions_ordered": 6,
            "course_start": "2026-11-01", "mg_per_kg": "0.5"}
    preview = client.post(url, {**form, "action": "preview"})
    assert preview.status_code == 200 and "dose-preview" in preview.content.decode()
    assert not TreatmentOrder.objects.exists()
    refused = client.post(url, {**form, "action": "sign"})
    assert refused.status_code == 403 and not TreatmentOrder.objects.exists()
    signed = client.post(url, {**form, "action": "sign", "password": TEST_PASSWORD})
    assert signed.status_code == 302
    order = TreatmentOrder.objects.get()
    detail = client.get(f"/protocols/orders/{order.pk}/")
    assert detail.status_code == 200 and "40.0" in detail.content.decode()
    change = client.post(f"/protocols/orders/{order.pk}/change/{patient.pk}/",
                         {**form, "mg_per_kg": "0.6", "action": "sign", "password": TEST_PASSWORD})
    assert change.status_code == 302
    assert TreatmentOrder.objects.get(status=OrderStatus.SIGNED).version == 2
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "treatment-panel" in page


def test_nurse_cannot_open_the_order_page(gate, patient, client_for):
    client = client_for("nurse")
    assert client.get(f"/protocols/orders/new/{patient.pk}/").status_code == 403
    assert client.post(f"/protocols/orders/new/{patient.pk}/", {"action": "sign"}).status_code == 403


def test_cancel_needs_reason_and_password(gate, team, patient):
    order = _sign(patient, team["prescriber"])
    with pytest.raises(ReauthFailed):
        services.do_cancel_order(actor=team["prescriber"], order=order, reason="moved", password="x")
    services.do_cancel_order(actor=team["prescriber"], order=order, reason="moved away",
                             password=TEST_PASSWORD)
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED and services.current_version(order) is None
