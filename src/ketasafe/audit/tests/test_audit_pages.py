"""The auditor's page: list, filter, sort, export; other roles are refused."""

import pytest

from ketasafe import audit

pytestmark = pytest.mark.django_db


def test_auditor_filters_by_patient_and_action(client_for, make_patient) -> None:
    a, b = make_patient(), make_patient()
    audit.record("view", actor="test", patient=a, detail="seen-a")
    audit.record("update", actor="test", patient=b, detail="changed-b")
    client = client_for("auditor")
    page = client.get("/audit/", {"patient": a.mrn, "action": "view"}).content.decode()
    assert "seen-a" in page and "changed-b" not in page


def test_csv_export_is_itself_audited(client_for) -> None:
    audit.record("view", actor="test", detail="row-for-export")
    client = client_for("auditor")
    response = client.get("/audit/export.csv")
    body = b"".join(response.streaming_content).decode()
    assert response["Content-Type"] == "text/csv"
    assert "row-for-export" in body and body.startswith("id,at_utc,actor")
    from ketasafe.audit.models import AuditEntry
    assert AuditEntry.objects.filter(action="export", actor=f"user:{client.user.username}").exists()


@pytest.mark.parametrize("role", ["nurse", "prescriber", "front_desk", "clinic_admin"])
def test_other_roles_cannot_read_the_audit_log(client_for, role) -> None:
    assert client_for(role).get("/audit/").status_code == 403
    assert client_for(role).get("/audit/export.csv").status_code == 403


def test_bad_filter_is_a_400_not_a_500(client_for) -> None:
    assert client_for("auditor").get("/audit/", {"since": "not-a-date"}).status_code == 400


def test_admin_offers_no_change_or_delete(admin_client) -> None:
    entry = audit.record("view", actor="test")
    assert admin_client.get(f"/admin/audit/auditentry/{entry.pk}/delete/").status_code == 403
    assert admin_client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"detail": "x"}).status_code == 403


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("value", ["9999-12-31T23:59", "0001-01-01T00:00"])
def test_far_off_filter_years_are_a_400_not_a_500(client_for, field, value) -> None:
    client = client_for("auditor")
    assert client.get("/audit/", {field: value}).status_code == 400
    response = client.get("/audit/export.csv", {field: value})
    assert response.status_code == 400 and b"not valid" in response.content  # not an empty file


def test_reading_the_audit_log_is_itself_recorded(client_for) -> None:
    from ketasafe.audit.models import AuditEntry

    client = client_for("auditor")
    before = AuditEntry.objects.filter(action="view", object_type="audit.AuditEntry").count()
    assert client.get("/audit/", {"action": "login"}).status_code == 200
    entry = AuditEntry.objects.filter(action="view", object_type="audit.AuditEntry").order_by("-id").first()
    assert entry is not None and before + 1 == AuditEntry.objects.filter(
        action="view", object_type="audit.AuditEntry").count()
    assert "action=login" in entry.detail and entry.actor == f"user:{client.user.username}"


@pytest.mark.parametrize("payload", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_export_cells_cannot_run_as_formulas(client_for, payload) -> None:
    import csv
    import io

    audit.record("view", actor="test", detail=payload)
    response = client_for("auditor").get("/audit/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["detail"] for r in rows if r["detail"].endswith(payload[1:])] == ["'" + payload]


def test_a_superuser_cannot_read_patient_data_through_the_django_admin(admin_client):
    # The admin writes no audit entry; patient data is read on the app's audited pages.
    for url in ("/admin/audit/auditentry/", "/admin/screening/screening/", "/admin/consent/consentsignature/"):
        assert admin_client.get(url).status_code == 403
