"""Domain errors of orders and signatures (the Django side of the protocols app).

The pure protocol, dose and course errors are in ``exceptions.py``; these are raised by
``services.py`` and turned into a form error or a 4xx only at the edge (STYLE §5).
"""

from __future__ import annotations


class OrderRefused(ValueError):
    """An order cannot be signed or changed as asked. ``field`` names the form field at fault,
    when there is one, so a view can attach the message to it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class TreatmentNotAllowed(OrderRefused):
    """``consent.gate.treatment_allowed`` said no; ``problems`` are its GateProblems."""

    def __init__(self, message: str, problems: tuple[object, ...] = ()) -> None:
        self.problems = problems
        super().__init__(message)


class ReauthFailed(ValueError):
    """A signature or a second clinician's confirmation did not re-authenticate: wrong password,
    unknown or inactive user, or a locked-out account. The message never says which."""
