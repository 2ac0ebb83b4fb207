"""Fixtures shared by every app's tests: staff of each role, patients, logged-in clients.

Factories, not a shared fixture database (STYLE §10).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

TEST_PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def make_staff(db: Any) -> Callable[..., Any]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    counter = {"n": 0}

    def make(role: str, username: str | None = None, **extra: Any) -> Any:
        counter["n"] += 1
        user = get_user_model().objects.create_user(
            username=username or f"{role}{counter['n']}", password=TEST_PASSWORD,
            first_name=role.title(), last_name=f"Tester{counter['n']}", **extra)
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def make_patient(db: Any) -> Callable[..., Any]:
    from ketasafe.patients.models import Patient

    counter = {"n": 0}

    def make(weight_kg: Decimal | None = Decimal("80.0"), **fields: Any) -> Any:
        from django.utils import timezone

        counter["n"] += 1
        defaults: dict[str, Any] = {
            "mrn": f"T-{counter['n']:04d}", "given_name": "Pat", "family_name": f"Ient{counter['n']}",
            "birth_date": dt.date(1980, 5, 1), "sex": "male",
            "clinical_changed_at": timezone.now() - dt.timedelta(days=30),
        }
        defaults.update(fields)
        patient = Patient.objects.create(**defaults)
        if weight_kg is not None:
            from django.contrib.auth import get_user_model

            recorder = get_user_model().objects.filter(is_active=True).first() or \
                get_user_model().objects.create_user(username=f"recorder{counter['n']}")
            patient.measurements.create(measured_on=dt.date.today() - dt.timedelta(days=1),  # noqa: DTZ011
                                        weight_kg=weight_kg, recorded_by=recorder)
        return patient

    return make


@pytest.fixture
def client_for(make_staff: Callable[..., Any]) -> Callable[..., Any]:
    """A test client logged in as a new staff member of the given role: client_for("nurse")."""
    from django.test import Client

    def make(role: str, **kwargs: Any) -> Any:
        user = make_staff(role, **kwargs)
        client = Client()
        client.force_login(user)
        client.user = user  # type: ignore[attr-defined]  # who the client is, for assertions
        return client

    return make


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Playwright page in Debian's headless chromium (its own browser download is offline)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run
    # inside one unless told that this test thread is not async code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(10_000)
        yield page
        browser.close()


def browser_login(page: Any, live_server_url: str, username: str, password: str) -> None:
    page.goto(f"{live_server_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
