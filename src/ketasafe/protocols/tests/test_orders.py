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



def previewed(page):
    """The dose digest a preview page carries in its form (what "Sign order" posts back)."""
    import re

    found = re.search(r'name="previewed" value="([0-9a-f]{64})"', page.content.decode())
    assert found, "the page shows no previewed dose"
    return found.group(1)

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
    form["previewed"] = previewed(preview)
    refused = client.post(url, {**form, "action": "sign"})
    assert refused.status_code == 403 and not TreatmentOrder.objects.exists()
    signed = client.post(url, {**form, "action": "sign", "password": TEST_PASSWORD})
    assert signed.status_code == 302
    order = TreatmentOrder.objects.get()
    detail = client.get(f"/protocols/orders/{order.pk}/")
    assert detail.status_code == 200 and "40.0" in detail.content.decode()
    change_url = f"/protocols/orders/{order.pk}/change/{patient.pk}/"
    # Signing a changed dose without seeing it is refused; previewed, it signs.
    unseen = client.post(change_url, {**form, "mg_per_kg": "0.6", "action": "sign", "password": TEST_PASSWORD})
    assert unseen.status_code == 409 and "sign again" in unseen.content.decode()
    assert TreatmentOrder.objects.count() == 1
    change = client.post(change_url, {**form, "mg_per_kg": "0.6", "previewed": previewed(unseen), "action": "sign",
                                      "password": TEST_PASSWORD})
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


# --- one open course per patient ---------------------------------------------------------


def test_a_second_course_is_refused_while_one_is_open(gate, team, patient):
    """Two open courses could dose the patient twice in one day: change or cancel first."""
    first = _sign(patient, team["prescriber"], protocol="esketamine-trd")
    for protocol in ("esketamine-trd", "iv-ketamine-depression"):
        with pytest.raises(OrderRefused, match=f"open course: order {first.pk} v1"):
            _sign(patient, team["prescriber"], protocol=protocol)
    assert TreatmentOrder.objects.count() == 1
    # Changing the open course is a new version of it, not a second course.
    v2 = _sign(patient, team["prescriber"], protocol="esketamine-trd", supersedes=first,
               sessions_ordered=10)
    services.do_cancel_order(actor=team["prescriber"], order=v2, reason="switching to IV",
                             password=TEST_PASSWORD)
    assert _sign(patient, team["prescriber"]).status == OrderStatus.SIGNED


def test_a_completed_course_does_not_block_a_new_one_but_cannot_be_reopened_beside_it(
        gate, team, patient, now):
    from ketasafe.sessions.state import Status
    from ketasafe.sessions.tests import helpers

    done = _sign(patient, team["prescriber"], protocol="esketamine-trd", sessions_ordered=1,
                 course_start=(now - dt.timedelta(days=3)).date(), at=now - dt.timedelta(days=2))
    session = helpers.schedule(done, team["nurse"], now - dt.timedelta(days=2),
                               prescriber=team["prescriber"])
    helpers.walk(session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"],
                 dose_at=now - dt.timedelta(days=2))
    with pytest.raises(OrderRefused, match="open course"):  # its session is still running
        _sign(patient, team["prescriber"], protocol="esketamine-trd")
    from ketasafe.sessions import services as session_services

    session_services.do_end(actor=team["nurse"], session=session, kind="abort", reason="test",
                            at=now - dt.timedelta(days=2) + dt.timedelta(minutes=5))
    new = _sign(patient, team["prescriber"], protocol="esketamine-trd")
    with pytest.raises(OrderRefused, match=f"open course: order {new.pk}"):
        _sign(patient, team["prescriber"], protocol="esketamine-trd", supersedes=done,
              sessions_ordered=4)


def test_refused_signings_are_audited_as_refused(gate, team, patient):
    from ketasafe.audit.models import AuditEntry

    _sign(patient, team["prescriber"])
    with pytest.raises(OrderRefused):
        _sign(patient, team["prescriber"])
    with pytest.raises(OrderRefused):
        _sign(patient, team["nurse"])
    refused = AuditEntry.objects.filter(action="refused", object_type="protocols.TreatmentOrder")
    assert refused.count() == 2
    assert {e.patient_id for e in refused} == {patient.pk}
    assert any("open course" in e.detail for e in refused)


def test_signing_uses_the_clinic_date_for_the_dated_weight(gate, team, make_patient, settings):
    """At 03:00 UTC on 10 March it is still 9 March in New York: a weight dated 10 March is
    not yet measured in the clinic's terms."""
    settings.CLINIC_TIME_ZONE = "America/New_York"
    at = dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)
    patient = make_patient(weight_kg=None)
    patient.measurements.create(measured_on=dt.date(2026, 3, 10), weight_kg=80,
                                recorded_by=team["nurse"])
    with pytest.raises(OrderRefused, match="--weight-kg is required"):
        _sign(patient, team["prescriber"], at=at)
    patient.measurements.create(measured_on=dt.date(2026, 3, 9), weight_kg=70,
                                recorded_by=team["nurse"])
    order = _sign(patient, team["prescriber"], at=at)
    assert order.signed_dose_preview["weight_measured_on"] == "2026-03-09"
    assert order.course_start == dt.date(2026, 3, 9)


def test_order_page_refuses_when_treatment_not_allowed(gate, team, patient):
    from django.test import Client

    gate.deny()
    client = Client()
    client.force_login(team["prescriber"])
    form = {"protocol_version": version("esketamine-trd").pk, "sessions_ordered": 8}
    shown = client.post(f"/protocols/orders/new/{patient.pk}/", {**form, "action": "preview"})
    response = client.post(f"/protocols/orders/new/{patient.pk}/", {
        **form, "previewed": previewed(shown), "action": "sign", "password": TEST_PASSWORD})
    assert response.status_code == 409 and "no signed consent" in response.content.decode()
    assert not TreatmentOrder.objects.exists()
