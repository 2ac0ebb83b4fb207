"""Re-authentication for signatures: an order signature and a second clinician's confirmation.

A logged-in session is not a signature: the signer types their password again. Through a
request the check goes through Django's ``authenticate`` so django-axes counts failures and locks
the account like a failed login (and the failure is audited as ``login_failed``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.http import HttpRequest

from .errors import ReauthFailed

_FAILED = "The password did not match (or the account is locked): nothing was signed."


def authenticate_staff(username: str, password: str, request: HttpRequest | None = None) -> Any:
    """The active staff user with this username and password; ReauthFailed otherwise.

    Call it outside the transaction of the change it authorises, so a failed attempt is
    counted and audited even though the change is refused.
    """
    if not username or not password:
        raise ReauthFailed(_FAILED)
    if request is not None:
        user = authenticate(request=request, username=username, password=password)
    else:  # services called without a request (commands, tests): the same check, no lockout
        user = get_user_model().objects.filter(username=username).first()
        if user is not None and not user.check_password(password):
            user = None
    if user is None or not user.is_active:
        raise ReauthFailed(_FAILED)
    return user


def verify_password(user: Any, password: str, request: HttpRequest | None = None) -> None:
    """ReauthFailed unless ``password`` is ``user``'s own current password."""
    signer = authenticate_staff(user.get_username(), password, request)
    if signer.pk != user.pk:  # pragma: no cover - authenticate returns the named user
        raise ReauthFailed(_FAILED)
