"""`ketasafe demo`: migrate, load the synthetic clinic, run web + MLLP listener + monitors."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand
from django.db import connection

from ketasafe.clinic.demo_data import DEMO_STAFF, is_loaded, read_logins
from ketasafe.clinic.demo_loaders import load_demo


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the demo clinic: synthetic staff, patients, sessions and live monitors (SQLite)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--mllp-port", type=int, default=2575)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--load-only", action="store_true", help="Load the demo data and exit.")
        parser.add_argument("--force", action="store_true",
                            help="Load the demo into a database that is not SQLite (never production).")

    def handle(self, *args: Any, port: int, mllp_port: int, host: str, load_only: bool,
               force: bool = False, **options: Any) -> None:
        # The demo writes staff accounts whose passwords are printed: never into a real clinic's
        # database by accident (DATABASE_URL left pointing at production).
        if connection.vendor != "sqlite" and not force:
            sys.stderr.write(f"demo: refusing to load demo accounts with known passwords into a "
                             f"{connection.vendor} database (DATABASE_URL); use SQLite or --force\n")
            sys.exit(2)
        call_command("migrate", verbosity=0, interactive=False)
        if is_loaded():
            self.stdout.write("Demo clinic already loaded in this data folder.")
        else:
            self.stdout.write("Loading the demo clinic...")
            started = time.monotonic()
            ctx = load_demo()
            self.stdout.write(f"Loaded {len(ctx.patients)} patients in {time.monotonic() - started:.1f} s.")
        self._print_logins(host, port)
        if load_only:
            return
        # Ctrl-C and a supervisor's SIGTERM both stop the web server, then the children: a
        # plain SIGTERM would kill only this process and leave the listener and monitors running.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
        children = self._start_children(host, mllp_port)
        try:
            call_command("serve", host=host, port=port)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    child.kill()

    def _print_logins(self, host: str, port: int) -> None:
        logins = read_logins()
        self.stdout.write(f"\nKetaSafe demo clinic: http://{host}:{port}/\n\nDemo logins (synthetic data only):")
        for username, first, last, roles in DEMO_STAFF:
            self.stdout.write(f"  {', '.join(roles):<14} {username:<12} {logins.get(username, '?'):<22} "
                              f"({first} {last})")
        self.stdout.write("")

    def _start_children(self, host: str, mllp_port: int) -> list[subprocess.Popen[bytes]]:
        """The MLLP listener and the simulated monitors, when those commands exist."""
        available = get_commands()
        children = []
        base = [sys.executable, "-m", "ketasafe.cli"]
        if "mllp_listen" in available:
            # The listener prints its own "MLLP listener on HOST:PORT" once it is bound.
            children.append(subprocess.Popen([*base, "mllp_listen", "--host", host,
                                              "--port", str(mllp_port)]))
            if "monitor_sim" in available:
                time.sleep(1.0)
                children.append(subprocess.Popen([*base, "monitor_sim", "--host", host,
                                                  "--port", str(mllp_port), "--demo"]))
                self.stdout.write("Simulated bedside monitors sending to the listener")
        return children
