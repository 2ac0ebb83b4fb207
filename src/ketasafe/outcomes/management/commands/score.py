"""`ketasafe score SCALE ANSWER...`: score one completed scale (contracts/cli.md).

Thin shell around the pure scales.score. Answers are parsed here rather than by argparse so that
a bad answer is one line naming the item (cli.md), not a usage dump.
"""

from __future__ import annotations

import json
import re
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import CommandError

from ketasafe.lib.commands import ContractCommand
from ketasafe.outcomes.exceptions import ScaleAnswersInvalid
from ketasafe.outcomes.scales import get_spec, score

_INTEGER = re.compile(r"[+-]?[0-9]+")  # ASCII digits only; "2.0" and "٣" are refused


class Command(ContractCommand):
    help = "Score one completed rating scale from its answers in item order."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("scale", help="phq9, gad7, madrs, qids-sr16, pcl5, cadss, "
                                          "cssrs-screen or aldrete")
        # nargs="*" so a missing answer list gets the same one-line count error as a short one.
        parser.add_argument("answers", nargs="*", metavar="ANSWER")

    def handle(self, *args: Any, **options: Any) -> None:
        scale_id: str = options["scale"]
        raw: list[str] = options["answers"]
        try:
            spec = get_spec(scale_id)
            answers: list[int] = []
            for number, text in enumerate(raw, 1):
                if not _INTEGER.fullmatch(text):
                    raise ScaleAnswersInvalid(spec.id, f"{text!r} is not an integer", item=number)
                answers.append(int(text))
            result = score(spec.id, answers)
        except ScaleAnswersInvalid as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(json.dumps(result.as_dict()))
