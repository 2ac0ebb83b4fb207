"""Panels other apps show on the patient page, listed explicitly (no plugin discovery).

Each entry is a function (request, patient) -> (template name, context) or None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from .models import Patient

Panel = Callable[[HttpRequest, Patient], tuple[str, dict[str, Any]] | None]


def panels() -> list[Panel]:
    # Imported here so the patients app does not depend on the apps that build on it.
    from ketasafe.protocols.panels import treatment_panel
    from ketasafe.screening.panels import eligibility_panel
    found: list[Panel] = [eligibility_panel]
    found.append(treatment_panel)
    return found
