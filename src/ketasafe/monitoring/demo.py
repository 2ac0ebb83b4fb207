"""The demo clinic's monitoring part (clinic/demo_loaders.py, after the sessions loader):
the shipped code map, one simulated monitor per chair mapped to it, and a monitor history for
the sessions in progress (stored through the real ingest path) so their charts are not empty.
``ketasafe monitor_sim --demo`` then sends live data to the same chairs."""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

from ketasafe.clinic.demo_data import DemoContext
from ketasafe.sessions.models import Chair, TreatmentSession

from . import codemap
from .ingest import IN_CHAIR, process_message
from .models import Device, InboundMessage
from .simulator import build_oru, device_id, vitals_at

HISTORY_EVERY = dt.timedelta(minutes=2)


def load(ctx: DemoContext) -> None:
    codemap.ensure_seeded()
    chairs = list(Chair.objects.filter(active=True).order_by("name"))
    for n, chair in enumerate(chairs, start=1):
        Device.objects.get_or_create(identifier=device_id(n),
                                     defaults={"chair": chair, "label": f"Simulated monitor {n}"})
    if InboundMessage.objects.filter(sender__startswith="KSIM").exists():
        return  # history already loaded in this data folder
    now = timezone.now()
    rng = random.Random(ctx.rng.random())
    sessions = (TreatmentSession.objects.filter(chair__in=chairs, status__in=IN_CHAIR)
                .select_related("chair", "patient"))
    for session in sessions:
        in_chair = session.chair
        assert in_chair is not None  # filtered on chair__in
        n = chairs.index(in_chair) + 1
        start = session.checked_in_at or now - dt.timedelta(minutes=30)
        dosing = session.dosing_started_at
        at, i = start, 0
        while at < now - dt.timedelta(seconds=30):
            minute = (at - dosing).total_seconds() / 60 if dosing else -10
            vitals = vitals_at("normal", max(minute, 0) if dosing else -30, rng)
            raw = build_oru(control_id=f"DEMO-{session.pk}-{i}", at=at, vitals=vitals, bed=in_chair.bed_code,
                            mrn=session.patient.mrn, device=device_id(n))
            process_message(raw)
            at, i = at + HISTORY_EVERY, i + 1
