"""`ketasafe dose PROTOCOL [options]`: compute one session's dose (contracts/cli.md, `dose`).

Thin shell around the pure ``compute_dose``. Options arrive as text and become Decimals from that
text (never float), so a non-number is one line naming the option, exit 2, not a usage dump.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from ketasafe.lib.commands import ContractCommand
from ketasafe.protocols.dosing import compute_dose, option_name, to_decimal
from ketasafe.protocols.exceptions import ProtocolError

_NUMBER_OPTIONS = (
    "weight_kg",
    "mg_per_kg",
    "mg_per_kg_per_h",
    "concentration_mg_per_ml",
    "final_volume_ml",
    "duration_min",
    "session",
    "dose_mg",
)


class Command(ContractCommand):
    help = "Compute a dose under a shipped protocol's limits and print it as JSON."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "protocol",
            help="esketamine-trd, esketamine-mdsi, iv-ketamine-depression or iv-ketamine-crps",
        )
        for param in _NUMBER_OPTIONS:
            parser.add_argument(option_name(param), dest=param, metavar="N")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            numbers = {param: to_decimal(param, options[param]) for param in _NUMBER_OPTIONS}
            result = compute_dose(options["protocol"], **numbers)
        except ProtocolError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(json.dumps(result.as_dict()))
