"""Protocol versions: the four shipped ones exist; a clinic version stays inside hard limits."""

from __future__ import annotations

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.protocols import services
from ketasafe.protocols.definitions import SHIPPED_VERSION
from ketasafe.protocols.exceptions import ProtocolLimitError
from ketasafe.protocols.models import ProtocolVersion

pytestmark = pytest.mark.django_db


def test_the_four_shipped_protocols_are_rows_after_migrate():
    rows = ProtocolVersion.objects.filter(label=SHIPPED_VERSION)
    assert sorted(rows.values_list("protocol_id", flat=True)) == [
        "esketamine-mdsi", "esketamine-trd", "iv-ketamine-crps", "iv-ketamine-depression"]
    assert all(services.definition_for(r).version_label == SHIPPED_VERSION for r in rows)


def test_clinic_version_within_limits_is_created_and_audited(make_staff):
    admin = make_staff("clinic_admin")
    version = services.do_create_protocol_version(
        actor=admin, protocol_id="iv-ketamine-depression", label="clinic-2026-01",
        changes=services.parse_changes("mg_per_kg_max = 0.6\nmin_interval_hours = 72  # weekly-ish"))
    definition = services.definition_for(version)
    assert str(definition.iv.dose_per_kg_max) == "0.6"
    assert definition.course.min_interval_hours == 72
    assert AuditEntry.objects.filter(object_type="protocols.ProtocolVersion", action="create").exists()


@pytest.mark.parametrize("text,setting", [
    ("mg_per_kg_max = 0.9", "mg_per_kg_max"),
    ("max_dose_mg = 112", "max_dose_mg"),
    ("min_monitoring_min = 90", "min_monitoring_min"),
])
def test_clinic_version_beyond_a_hard_limit_is_refused_naming_it(make_staff, text, setting):
    protocol = "iv-ketamine-depression" if "kg" in text else "esketamine-trd"
    with pytest.raises(ProtocolLimitError) as exc:
        services.do_create_protocol_version(actor=make_staff("clinic_admin"), protocol_id=protocol,
                                            label="bad", changes=services.parse_changes(text))
    assert exc.value.setting == setting
    assert not ProtocolVersion.objects.filter(label="bad").exists()


def test_protocol_pages_need_configure_clinic(client_for):
    admin = client_for("clinic_admin")
    assert admin.get("/protocols/").status_code == 200
    response = admin.post("/protocols/versions/new/", {
        "protocol_id": "esketamine-trd", "label": "wider", "changes": "min_monitoring_min = 60"})
    assert response.status_code == 400 and "min_monitoring_min" in response.content.decode()
    response = admin.post("/protocols/versions/new/", {
        "protocol_id": "esketamine-trd", "label": "longer", "changes": "min_monitoring_min = 150"})
    assert response.status_code == 302
    assert ProtocolVersion.objects.filter(label="longer").exists()
    for role in ("nurse", "prescriber"):
        assert client_for(role).get("/protocols/").status_code == 403
        assert client_for(role).post("/protocols/versions/new/", {}).status_code == 403


def test_garbage_changes_are_a_form_error(client_for):
    response = client_for("clinic_admin").post("/protocols/versions/new/", {
        "protocol_id": "esketamine-trd", "label": "x", "changes": "this is not a setting"})
    assert response.status_code == 400
