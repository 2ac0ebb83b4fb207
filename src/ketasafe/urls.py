from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import include, path

from ketasafe.accounts import views as account_views
from ketasafe.clinic import views as clinic_views

urlpatterns = [
    path("", account_views.home, name="home"),
    path("login/", account_views.login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", account_views.OwnPasswordChangeView.as_view(), name="password_change"),
    path("staff/", include("ketasafe.accounts.urls")),
    path("patients/", include("ketasafe.patients.urls")),
    path("audit/", include("ketasafe.audit.urls")),
    path("screening/", include("ketasafe.screening.urls")),
    path("consent/", include("ketasafe.consent.urls")),
    path("protocols/", include("ketasafe.protocols.urls")),
    path("sessions/", include("ketasafe.sessions.urls")),
    path("monitoring/", include("ketasafe.monitoring.urls")),
    path("setup/", clinic_views.clinic_setup, name="clinic_setup"),
    path("admin/", admin.site.urls),
]


def _error(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    return render(request, "error.html", {"title": title, "message": message}, status=status)


def bad_request(request: HttpRequest, exception: Any = None) -> HttpResponse:
    return _error(request, 400, "Bad request", "The request could not be understood. Nothing was changed.")


def permission_denied(request: HttpRequest, exception: Any = None) -> HttpResponse:
    detail = str(exception) if exception and str(exception) else "Your role does not allow this."
    return _error(request, 403, "Not allowed", detail)


def not_found(request: HttpRequest, exception: Any = None) -> HttpResponse:
    return _error(request, 404, "Not found", "There is nothing at this address. It may have been mistyped.")


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(request, 500, "Something went wrong",
                  "The error was logged. Nothing was half-saved: try again or tell the clinic admin.")


handler400 = bad_request
handler403 = permission_denied
handler404 = not_found
handler500 = server_error
