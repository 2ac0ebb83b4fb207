"""Domain errors of the protocols app (STYLE.md convention 5: turned into a CLI exit, a form error
or an HTTP status only at the edge).

Every message is one line that names the limit or input at fault, because the `ketasafe dose`
contract prints ``str(exc)`` as its single error line (contracts/cli.md).
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Base of every protocol, dose and course error; the edge catches this one class."""

    def __init__(self, message: str) -> None:
        # One line, always: the CLI contract prints this as the single error line.
        super().__init__(" ".join(message.split()))


class DoseInputError(ProtocolError):
    """A dose request is incomplete or malformed: a missing or non-numeric input, an option the
    protocol does not take, or an unknown protocol.

    ``option`` is the CLI option at fault (``"--weight-kg"``), or None when the problem is not
    one option's (an unknown protocol), so a form can attach the error to its field.
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        self.option = option
        super().__init__(message)


class DoseOutOfRange(DoseInputError):
    """A dose input lies outside the protocol's allowed range or set. Nothing is ever clamped."""


class UnknownProtocol(DoseInputError):
    """The protocol id is not one of the shipped protocols."""


class ProtocolLimitError(ProtocolError):
    """A clinic version of a protocol would step outside the shipped hard limits, or a protocol
    definition is internally inconsistent (a default outside its own range).

    ``setting`` names the setting at fault (``"mg_per_kg_max"``).
    """

    def __init__(self, message: str, *, setting: str) -> None:
        self.setting = setting
        super().__init__(message)


class CourseInputError(ProtocolError):
    """Course data handed to the pure course rules is inconsistent (a naive datetime, a session
    before the course started, a session number below 1). This is a caller's bug or bad data,
    not a clinical refusal: refusals are returned as ``CourseViolation`` values."""
