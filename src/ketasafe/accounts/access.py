"""The one place that answers "may this user do that?" for views (STYLE §6)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied

F = TypeVar("F", bound=Callable[..., Any])


def capabilities_of(user: Any) -> frozenset[str]:
    """The capabilities the user's role groups grant (cached on the user object).

    Deliberately not ``user.has_perm``: that is always true for a superuser, which would let one
    account hold every role and defeat the two-person rules. Capabilities come from roles only
    (never from is_superuser, never from permissions given to the user directly).
    """
    cached: frozenset[str] | None = getattr(user, "_ketasafe_capabilities", None)
    if cached is None:
        from django.contrib.auth.models import Permission

        from .roles import ROLE_NAMES

        cached = frozenset(Permission.objects.filter(
            content_type__app_label="accounts", group__user=user, group__name__in=ROLE_NAMES,
        ).values_list("codename", flat=True))
        user._ketasafe_capabilities = cached
    return cached


def has_capability(user: Any, capability: str) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    return capability in capabilities_of(user)


def require_capability(user: Any, *capabilities: str) -> None:
    missing = [c for c in capabilities if not has_capability(user, c)]
    if missing:
        raise PermissionDenied(f"Your role does not allow this ({', '.join(missing)}).")


def capability_required(*capabilities: str) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
            require_capability(request.user, *capabilities)
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
