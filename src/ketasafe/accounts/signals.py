"""Login, failed login and logout are audit events (compliance B.3)."""

import time
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from ketasafe import audit
from ketasafe.accounts.middleware import LOGIN_AT_KEY


@receiver(user_logged_in, dispatch_uid="ketasafe-audit-login")
def _logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        # The session's absolute lifetime counts from here (accounts.middleware.IdleTimeout).
        request.session[LOGIN_AT_KEY] = time.time()
    audit.record("login", actor=user, request=request)


@receiver(user_logged_out, dispatch_uid="ketasafe-audit-logout")
def _logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit.record("logout", actor=user, request=request,
                     detail=getattr(request, "_logout_reason", "") if request else "")


@receiver(user_login_failed, dispatch_uid="ketasafe-audit-login-failed")
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))[:100]
    audit.record("login_failed", request=request, detail=f"username={username}")
