"""Domain errors of treatment sessions (STYLE §5). Views turn them into a message and a 4xx;
every refusal says exactly why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ketasafe.protocols.errors import ReauthFailed

if TYPE_CHECKING:
    from .rules import CheckResult

__all__ = ["ChairBusy", "GateRefused", "InvalidTransition", "OverrideRefused", "ReauthFailed",
           "SessionRefused", "StaleSession", "StepRefused"]


class SessionRefused(Exception):
    """Base: a session action was refused; nothing was changed."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidTransition(SessionRefused):
    """The state table does not allow this move from the session's current status."""


class StaleSession(SessionRefused):
    """The form was built from an older version of the session (someone else acted first)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or "This session changed since the page was loaded (someone "
                         "else acted on it). Nothing was saved: check the page and try again.")


class GateRefused(SessionRefused):
    """A safety gate (pre-checks, dosing, discharge) has blocking failures, listed in results."""

    def __init__(self, message: str, results: Sequence[CheckResult]) -> None:
        self.results = list(results)
        detail = "; ".join(f"{r.code}: {r.message}" for r in self.results if r.blocking)
        super().__init__(f"{message} {detail}".strip())


class OverrideRefused(SessionRefused):
    """An override that is not allowed: a hard check, a passing check, no reason, the wrong role
    or the same person confirming."""


class StepRefused(SessionRefused):
    """A step's own rule (device interval, infusion state, chair in use, missing reason...)."""


class ChairBusy(StepRefused):
    pass
