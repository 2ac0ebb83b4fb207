"""Editing a patient while another transaction writes an audit entry naming them (a page view),
each on its own connection: neither meets a deadlock on PostgreSQL. Changing the MRN (a unique
key) takes the row FOR UPDATE, which the other entry's commit-time key check waits for while it
holds the audit chain; the edit therefore writes its entry before it updates the row."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction

from ketasafe.lib.tests.threads import in_threads, slow_audit
from ketasafe.patients import services
from ketasafe.patients.models import Patient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(("field", "value"), [("mrn", "T-9999"), ("given_name", "Renamed")])
def test_a_patient_edit_and_a_page_view_at_once_both_finish(make_patient, make_staff, monkeypatch, field, value):
    from ketasafe import audit

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite locks the whole database)")
    desk, nurse = make_staff("front_desk"), make_staff("nurse")
    patient = make_patient()
    editing = slow_audit(monkeypatch, seconds=0.6, threads=lambda name: name == "edit")

    def view() -> Any:  # what get_patient_for writes on every patient page
        editing.wait(10)
        with transaction.atomic():
            return audit.record("view", actor=nurse, patient=patient, obj=patient, detail="/patients/x/")

    results = in_threads({"edit": lambda: services.do_update_patient(actor=desk, patient=patient, **{field: value}),
                          "view": view})
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    assert getattr(Patient.objects.get(pk=patient.pk), field) == value
