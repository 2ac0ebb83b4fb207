from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect


class LoginRequiredEverywhere(LoginRequiredMiddleware):
    """Every page needs a login unless its view is marked @login_not_required.

    An HTMX request gets an HX-Redirect header so the whole page goes to login, not a fragment.
    """

    def handle_no_permission(self, request: HttpRequest, view_func: Any) -> HttpResponse:  # type: ignore[override]
        if getattr(request, "htmx", False):
            response = HttpResponse(status=401)
            response["HX-Redirect"] = settings.LOGIN_URL if settings.LOGIN_URL.startswith("/") else "/login/"
            return response
        return super().handle_no_permission(request, view_func)


POLL_HEADER = "HTTP_X_KETASAFE_POLL"
LOGIN_AT_KEY = "login_at"  # set at login (accounts.signals), checked by IdleTimeout


class IdleTimeout:
    """Log out a session idle for IDLE_TIMEOUT_SECONDS (compliance B.5).

    Automatic refreshes (HTMX polls marked with the X-KetaSafe-Poll header) are not activity:
    a screen left open must still lock.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            last = request.session.get("last_activity", now)
            # The absolute lifetime counts from login: saving the session on each request renews
            # its cookie expiry, so SESSION_COOKIE_AGE alone would be a sliding window.
            login_at = request.session.setdefault(LOGIN_AT_KEY, now)
            if now - login_at > settings.SESSION_COOKIE_AGE:
                return self._log_out(request, "session lifetime",
                                     "Your session reached its maximum length: please log in again.")
            if now - last > settings.IDLE_TIMEOUT_SECONDS:
                return self._log_out(request, "idle timeout",
                                     "You were logged out after a period of inactivity.")
            if not request.META.get(POLL_HEADER):
                request.session["last_activity"] = now
        return self.get_response(request)

    @staticmethod
    def _log_out(request: HttpRequest, reason: str, message: str) -> HttpResponse:
        request._logout_reason = reason  # type: ignore[attr-defined]
        auth.logout(request)
        messages.info(request, message)
        if getattr(request, "htmx", False):
            response = HttpResponse(status=401)
            response["HX-Redirect"] = "/login/"
            return response
        return redirect(f"/login/?next={request.path}")
