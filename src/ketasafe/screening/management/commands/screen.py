"""`ketasafe screen FILE|-`: screen one intake with rule set default-v1 (contracts/cli.md).

Thin shell around the pure parse_intake_json + screen. JSON on stdout, exit 0; any invalid or
unreadable input is one line on stderr with exit 2.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from ketasafe.lib.commands import ContractCommand
from ketasafe.screening.exceptions import IntakeInvalid
from ketasafe.screening.intake import parse_intake_json
from ketasafe.screening.rules import screen


def _read(path: str) -> bytes | str:
    if path == "-":
        # Bytes when the stream has them, so encoding is decided by parse_intake_json (UTF-8).
        buffer = getattr(sys.stdin, "buffer", None)
        return buffer.read() if buffer is not None else sys.stdin.read()
    return Path(path).read_bytes()


class Command(ContractCommand):
    help = "Screen one intake JSON file (- for standard input) with rule set default-v1."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="intake JSON file, or - for standard input")

    def handle(self, *args: Any, **options: Any) -> None:
        path: str = options["file"]
        try:
            raw = _read(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CommandError(f"{path}: cannot read ({reason})", returncode=2) from exc
        try:
            decision = screen(parse_intake_json(raw))
        except IntakeInvalid as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(json.dumps(decision.as_dict()))
