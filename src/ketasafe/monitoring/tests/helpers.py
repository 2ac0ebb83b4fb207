"""Builders for the monitoring tests: chairs and sessions in a state, HL7 messages, ACK fields."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from django.utils import timezone

from ketasafe.monitoring.simulator import Vitals, build_oru

# ../shared/conformance relative to the project root; the samples are not copied into the tree.
SAMPLES = Path(__file__).resolve().parents[4].parent / "shared" / "conformance" / "hl7"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def ack_fields(ack: bytes) -> list[str]:
    """MSA fields of an ACK: ["MSA", code, control id, text...]."""
    msa = next(seg for seg in ack.decode().split("\r") if seg.startswith("MSA|"))
    return msa.split("|")


def ack_code(ack: bytes) -> str:
    return ack_fields(ack)[1]


def make_chair(name: str = "Chair 1", bed_code: str = "KETA^^CHAIR1") -> Any:
    from ketasafe.sessions.models import Chair

    return Chair.objects.create(name=name, bed_code=bed_code)


def make_session(patient: Any, *, chair: Any = None, status: str = "dosing", prescriber: Any = None,
                 dosing_started_at: dt.datetime | None = None, protocol_version: Any = None) -> Any:
    """A session put straight into ``status`` (test set-up, not the state machine)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from ketasafe.protocols.models import ProtocolVersion, TreatmentOrder
    from ketasafe.sessions.models import TreatmentSession

    if prescriber is None:
        prescriber = get_user_model().objects.create_user(username=f"rx-{patient.mrn}", first_name="Pre",
                                                          last_name="Scriber")
        prescriber.groups.add(Group.objects.get(name="prescriber"))
    version = protocol_version or ProtocolVersion.objects.get_or_create(
        protocol_id="esketamine-trd", label="ketasafe-v1", defaults={"changes": {}})[0]
    now = timezone.now()
    order = TreatmentOrder.objects.create(patient=patient, protocol_version=version, course_start=now.date(),
                                          sessions_ordered=8, dose_parameters={"dose_mg": 56},
                                          signed_by=prescriber, signed_at=now)
    if dosing_started_at is None and status in ("dosing", "monitoring", "recovery"):
        dosing_started_at = now - dt.timedelta(minutes=20)
    return TreatmentSession.objects.create(
        patient=patient, order=order, session_number=1, chair=chair, scheduled_at=now - dt.timedelta(hours=1),
        status=status, prescriber_on_site=prescriber, checked_in_at=now - dt.timedelta(minutes=40),
        dosing_started_at=dosing_started_at)


def oru(control_id: str = "C1", *, bed: str = "KETA^^CHAIR1", mrn: str = "", at: dt.datetime | None = None,
        systolic: int = 124, diastolic: int = 78, heart_rate: int = 72, spo2: int = 97, resp_rate: int = 14,
        device: str = "0012A3FFFE000001", sender: str = "KSIM") -> bytes:
    return build_oru(control_id=control_id, at=at or timezone.now(), bed=bed, mrn=mrn, device=device,
                     sender=sender, vitals=Vitals(systolic, diastolic, heart_rate, spo2, resp_rate))
