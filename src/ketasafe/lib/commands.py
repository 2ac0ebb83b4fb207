"""Base for the commands of the public contract (contracts/cli.md): errors are ONE line on
standard error, exit status 2 — argument errors included (argparse would print usage too)."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser


class ContractCommand(BaseCommand):
    # Pure commands: no database, so no system or migration checks to slow or block them.
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)

        def one_line_error(message: str) -> NoReturn:
            sys.stderr.write(f"{subcommand}: {message}\n")
            sys.exit(2)

        parser.error = one_line_error  # type: ignore[method-assign]
        return parser
