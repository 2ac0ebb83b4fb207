"""Domain errors of the screening app (STYLE.md convention 5)."""

from __future__ import annotations


class IntakeInvalid(ValueError):
    """An intake that must be refused. ``str()`` is one line: ``"<field>: <message>"``, e.g.
    ``"patient.weight_kg: 400 is outside 20-350"`` (contracts/screening-rules-v1.md, Input)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = " ".join(field.split())
        # Collapse whitespace: the CLI prints this as its single error line (cli.md).
        self.message = " ".join(message.split())
        super().__init__(f"{self.field}: {self.message}")


class RuleSetInvalid(ValueError):
    """A derived rule set that would break a safety invariant (unknown key, value outside its
    hard range, a lowered severity, a reused version name)."""
