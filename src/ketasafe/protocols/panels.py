"""The patient page's panel of treatment orders and sessions (patients/panels.py lists it)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ketasafe.accounts.access import has_capability


def treatment_panel(request: HttpRequest, patient: Any) -> tuple[str, dict[str, Any]] | None:
    from ketasafe.sessions.models import TreatmentSession

    from .models import TreatmentOrder

    return "protocols/_patient_panel.html", {
        "patient_id": patient.pk,
        "orders": TreatmentOrder.objects.filter(patient=patient).select_related("protocol_version"),
        "sessions": TreatmentSession.objects.filter(patient=patient).order_by("-scheduled_at")[:20],
        "can_order": has_capability(request.user, "order_treatment"),
    }
