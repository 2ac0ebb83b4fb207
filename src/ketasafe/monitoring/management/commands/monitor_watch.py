"""`ketasafe monitor_watch`: escalate unacknowledged alerts and detect stale feeds.

`ketasafe mllp_listen` already runs this every few seconds; run it separately only when the
listener runs elsewhere or with --watch-interval 0. Several watchers at once are safe."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from ketasafe.monitoring.alerts import run_watch


class Command(BaseCommand):
    help = ("Judge readings whose alert evaluation did not run; escalate alerts not acknowledged "
            "within 2 minutes; raise stale-feed alerts.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--interval", type=float, default=5.0)
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args: Any, interval: float, once: bool, **options: Any) -> None:
        while True:
            close_old_connections()
            result = run_watch()
            if once:
                self.stdout.write(f"judged_late={result['judged_late']} escalated={result['escalated']} "
                                  f"stale={result['stale']}")
                return
            time.sleep(interval)
