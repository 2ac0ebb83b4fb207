"""Domain errors of the consent app (STYLE §5). Views turn them into a 4xx or a form error."""

from __future__ import annotations


class ConsentError(Exception):
    status_code = 409


class ConsentVersionNotCurrent(ConsentError):
    """Only the current published version of a document can be signed."""


class ConsentVersionLocked(ConsentError):
    """A published version never changes; write a new version."""


class SignerNotAllowed(ConsentError):
    status_code = 403


class AlreadyWithdrawn(ConsentError):
    pass


class ConsentInputInvalid(ConsentError):
    status_code = 400

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
