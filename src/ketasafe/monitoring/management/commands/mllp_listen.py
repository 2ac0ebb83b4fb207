"""`ketasafe mllp_listen`: receive HL7 v2 ORU^R01 from bedside monitors over MLLP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db.backends.signals import connection_created

from ketasafe.monitoring import listener

log = logging.getLogger("ketasafe.monitoring.listener")


def _durable_sqlite(sender: Any, connection: Any, **kwargs: Any) -> None:
    """An ACK promises the data survives. WAL with synchronous=NORMAL (the web app's setting)
    survives a killed process but can lose the last commits on power loss; the listener commits
    with synchronous=FULL. Group commit pays that fsync once per batch."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=FULL")


class Command(BaseCommand):
    help = "Listen for HL7 v2 ORU^R01 from bedside monitors over MLLP; ACK only after commit."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=settings.MLLP_HOST)
        parser.add_argument("--port", type=int, default=settings.MLLP_PORT, help="0 picks a free port")
        parser.add_argument("--idle-timeout", type=float, default=listener.DEFAULT_IDLE_TIMEOUT,
                            help="close a connection silent for this many seconds")
        parser.add_argument("--batch-max", type=int, default=listener.DEFAULT_BATCH_MAX,
                            help="most messages committed together (1 = no group commit)")
        parser.add_argument("--watch-interval", type=float, default=5.0,
                            help="seconds between escalation / stale-feed checks (0 = off)")

    def handle(self, *args: Any, host: str, port: int, idle_timeout: float, batch_max: int,
               watch_interval: float, **options: Any) -> None:
        connection_created.connect(_durable_sqlite)
        from django.db import connection

        connection.close()  # the next connection gets the pragma
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._serve(host, port, idle_timeout, batch_max, watch_interval))

    async def _serve(self, host: str, port: int, idle_timeout: float, batch_max: int,
                     watch_interval: float) -> None:
        from ketasafe.monitoring.ingest import process_batch

        writer = listener.BatchWriter(process_batch, batch_max=batch_max)
        writer.start()
        server = listener.MllpServer(writer, idle_timeout=idle_timeout)
        bound_host, bound_port = await server.start(host, port)
        # Tests and the benchmark read this line to learn the port when --port 0.
        self.stdout.write(f"MLLP listener on {bound_host}:{bound_port}")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        watch = None
        if watch_interval > 0:
            watch = asyncio.create_task(listener.watch_loop(watch_interval, listener.run_watch_in_thread))
        try:
            await stop.wait()
        finally:
            if watch:
                watch.cancel()
            await server.close()
            # Batches already taken are committed and answered before the thread ends.
            await asyncio.to_thread(writer.stop)
