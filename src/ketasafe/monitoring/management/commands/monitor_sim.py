"""`ketasafe monitor_sim`: simulated bedside monitors sending PCD-01 ORU^R01 to a listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from ketasafe.monitoring.simulator import COURSES, SimChair, device_id, run_chair

# Where each course starts in --demo, so the interesting part comes within a minute or two:
# the hypertensive peak is at minute 40, the desaturation at minute 25 (one minute per message).
DEMO_START = {"normal": 0, "hypertensive": 12, "desaturation": 8}


def demo_chairs() -> list[SimChair]:
    """The clinic's active chairs with their bed codes; the patient in the chair's session in
    progress gives PID-3 (as a monitor admitted to the patient would send)."""
    from ketasafe.monitoring.ingest import IN_CHAIR
    from ketasafe.monitoring.models import Device
    from ketasafe.sessions.models import Chair, TreatmentSession

    chairs = []
    found = []
    for chair in Chair.objects.filter(active=True).order_by("name"):
        session = (TreatmentSession.objects.filter(chair=chair, status__in=IN_CHAIR).select_related("patient")
                   .order_by("-checked_in_at", "-id").first())
        found.append((chair, session))
    # Monitors of free chairs stay quiet (their data would only pile up as unassigned), unless
    # no chair is occupied at all: then every chair sends so that the listener has work.
    occupied = [(c, s) for c, s in found if s is not None] or found
    for n, (chair, session) in enumerate(occupied, start=1):
        course = COURSES[(n - 1) % len(COURSES)]
        start = DEMO_START[course]
        if session is not None and session.dosing_started_at and course == "normal":
            start = int((timezone.now() - session.dosing_started_at).total_seconds() // 60)
        device = Device.objects.filter(chair=chair).values_list("identifier", flat=True).first()
        chairs.append(SimChair(bed=chair.bed_code, course=course, mrn=session.patient.mrn if session else "",
                               device=device or device_id(n), start_minute=max(0, start)))
    return chairs


class Command(BaseCommand):
    help = "Play realistic IHE PCD-01 vital-sign streams to an MLLP listener, one connection per chair."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=settings.MLLP_HOST)
        parser.add_argument("--port", type=int, default=settings.MLLP_PORT)
        parser.add_argument("--demo", action="store_true",
                            help="use the clinic's chairs and patients, a fast clock, run forever")
        parser.add_argument("--chairs", type=int, default=3, help="simulated chairs without --demo")
        parser.add_argument("--interval", type=float, default=None,
                            help="real seconds between messages per chair (60 by default, 2 with --demo)")
        parser.add_argument("--count", type=int, default=None, help="messages per chair, then stop")

    def handle(self, *args: Any, host: str, port: int, demo: bool, chairs: int, interval: float | None,
               count: int | None, **options: Any) -> None:
        logging.getLogger("ketasafe.monitoring.simulator").setLevel(logging.WARNING)
        interval = interval if interval is not None else (2.0 if demo else 60.0)
        sim = demo_chairs() if demo else []
        if not sim:
            sim = [SimChair(bed=f"SIM^^CHAIR{n}", course=COURSES[(n - 1) % len(COURSES)], device=device_id(n))
                   for n in range(1, chairs + 1)]
        for chair in sim:
            self.stdout.write(f"  {chair.bed:<20} {chair.course:<13} {chair.mrn or '(no PID-3)'}")
        self.stdout.write(f"Sending to {host}:{port}, one message per chair every {interval:g} s")
        from django.db import connection

        connection.close()  # nothing more from the database: do not hold a connection
        with contextlib.suppress(KeyboardInterrupt):
            acked = asyncio.run(self._run(host, port, sim, interval, count))
            self.stdout.write(f"acknowledged={acked}")

    async def _run(self, host: str, port: int, sim: list[SimChair], interval: float, count: int | None) -> int:
        work = asyncio.gather(*(run_chair(host, port, chair, interval=interval, count=count, seed=n)
                                for n, chair in enumerate(sim)))
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, work.cancel)  # `ketasafe demo` stops us this way
        try:
            return sum(await work)
        except asyncio.CancelledError:
            return 0
