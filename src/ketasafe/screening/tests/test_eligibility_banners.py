"""The patient page shows one eligibility banner per protocol, with why."""

from __future__ import annotations

import re

from ketasafe.patients import services as patient_services
from ketasafe.patients.models import Problem
from ketasafe.screening import services

from .helpers import completed, signed


def _states(client, patient):
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    return dict(re.findall(r'data-protocol="([^"]+)" data-state="([^"]+)"', page)), page


def test_banner_per_protocol_shows_each_state_and_reason(client_for, make_patient, make_staff):
    nurse, prescriber = make_staff("nurse"), make_staff("prescriber")
    patient = make_patient()
    signed(patient, nurse, prescriber, protocol="iv-ketamine-depression")
    Problem.objects.create(patient=patient, icd10_code="I67.1", description="aneurysm", status="active")
    bad = completed(patient, nurse, protocol="iv-ketamine-crps")
    services.do_record_not_treated(actor=prescriber, screening=bad, reason="Cerebral aneurysm, not treated.")
    completed(patient, nurse, protocol="esketamine-trd")
    client = client_for("nurse")
    states, page = _states(client, patient)
    # esketamine-trd: its screening found the aneurysm and awaits the prescriber (not "needs screening").
    assert states == {"iv-ketamine-depression": "eligible", "iv-ketamine-crps": "ineligible",
                      "esketamine-trd": "ineligible_unsigned", "esketamine-mdsi": "needs_screening"}
    assert "Cerebral aneurysm, not treated." in page
    assert "Not eligible (awaiting prescriber)" in page
    assert "awaiting prescriber sign-off" in page
    assert "No signed screening for esketamine-mdsi" in page


def test_banner_turns_stale_when_history_changes(client_for, make_patient, make_staff):
    nurse = make_staff("nurse")
    patient = make_patient()
    signed(patient, nurse, make_staff("prescriber"))
    patient_services.do_add_record(actor=nurse, patient=patient, model=Problem, icd10_code="F20.9",
                                   description="Schizophrenia", status="active")
    states, page = _states(client_for("nurse"), patient)
    assert states["iv-ketamine-depression"] == "stale" and "screen again" in page
