"""Domain errors of the screening services (STYLE §5).

Kept apart from `exceptions.py`, which belongs to the pure rules module, so the two can be written
independently. Each carries one line for staff; views turn them into a 4xx or a form error.
"""

from __future__ import annotations


class ScreeningError(Exception):
    """Base class: something the screening services refuse to do."""

    status_code = 409  # a conflict with the record's state, unless a subclass says otherwise


class ScreeningRefused(ScreeningError):
    """A refusal that must be audited as "refused" (sign-off rules, issue 3)."""


class NotAllowedToSign(ScreeningRefused):
    status_code = 403


class AlreadySigned(ScreeningRefused):
    pass


class IneligibleCannotBeSigned(ScreeningRefused):
    pass


class JustificationMissing(ScreeningRefused):
    status_code = 400

    def __init__(self, rule_ids: list[str]) -> None:
        self.rule_ids = rule_ids
        super().__init__("A written justification is required for each warning: "
                         + ", ".join(rule_ids) + ".")


class ScreeningNotCompleted(ScreeningRefused):
    pass


class InputsChangedSinceScreening(ScreeningRefused):
    pass


class ReasonRequired(ScreeningRefused):
    status_code = 400


class ScreeningChanged(ScreeningRefused):
    """The screening changed after the prescriber opened it (a newer screening ran and superseded
    it, or it was decided): the decision on the page is not the one that would be signed."""


class ScreeningTooOld(ScreeningRefused):
    """The assessment is already older than the clinic's validity period: it would be born expired."""


class ScreeningNotEditable(ScreeningError):
    """A signed, not-treated or superseded screening cannot be changed."""


class RuleSetVersionLocked(ScreeningError):
    """Rule set versions are written once and never changed (issue 3)."""
