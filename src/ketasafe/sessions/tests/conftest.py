from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from . import helpers


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> helpers.GateStub:
    """consent.gate.treatment_allowed says yes unless a test calls gate.deny()."""
    stub = helpers.GateStub()
    monkeypatch.setattr("ketasafe.consent.gate.treatment_allowed", stub)
    return stub


@pytest.fixture
def now() -> dt.datetime:
    """The pinned 'now' of a test: whole minutes, so minute arithmetic is exact."""
    return timezone.now().replace(second=0, microsecond=0)


@pytest.fixture
def team(make_staff: Callable[..., Any]) -> dict[str, Any]:
    return {"prescriber": make_staff("prescriber"), "prescriber2": make_staff("prescriber"),
            "nurse": make_staff("nurse"), "nurse2": make_staff("nurse")}


@pytest.fixture
def patient(make_patient: Callable[..., Any]) -> Any:
    return make_patient()


@pytest.fixture
def esk_order(gate: helpers.GateStub, team: dict[str, Any], patient: Any, now: dt.datetime) -> Any:
    return helpers.sign_order(patient, team["prescriber"], "esketamine-trd", at=now - dt.timedelta(days=1))


@pytest.fixture
def iv_order(gate: helpers.GateStub, team: dict[str, Any], patient: Any, now: dt.datetime) -> Any:
    return helpers.sign_order(patient, team["prescriber"], "iv-ketamine-depression",
                              at=now - dt.timedelta(days=1))


@pytest.fixture
def esk_session(esk_order: Any, team: dict[str, Any], now: dt.datetime) -> Any:
    return helpers.schedule(esk_order, team["nurse"], now - dt.timedelta(hours=3),
                            prescriber=team["prescriber"])


@pytest.fixture
def iv_session(iv_order: Any, team: dict[str, Any], now: dt.datetime) -> Any:
    return helpers.schedule(iv_order, team["nurse"], now - dt.timedelta(hours=3),
                            prescriber=team["prescriber"])


@pytest.fixture
def login(client_for: Callable[..., Any]) -> Callable[[Any], Any]:
    """A client logged in as an existing user."""
    from django.test import Client

    def make(user: Any) -> Any:
        client = Client()
        client.force_login(user)
        client.user = user
        return client

    return make
