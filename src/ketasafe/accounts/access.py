"""The one place that answers "may this user do that?" for views (STYLE §6)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied

F = TypeVar("F", bound=Callable[..., Any])


def has_capability(user: Any, capability: str) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm(f"accounts.{capability}"))


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
