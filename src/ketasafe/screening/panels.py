"""The eligibility panel on the patient page: one banner per protocol, with why (issue 3)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from ketasafe.consent.status import rems_enrollment, treatment_consent
from ketasafe.patients.models import Patient

from .eligibility import eligibility_by_protocol
from .models import Screening


def eligibility_panel(request: HttpRequest, patient: Patient) -> tuple[str, dict[str, Any]]:
    now = timezone.now()
    rows = []
    for elig in eligibility_by_protocol(patient, now):
        rows.append({"e": elig, "consent": treatment_consent(patient, elig.protocol, now),
                     "rems": rems_enrollment(patient, elig.protocol, now)})
    history = Screening.objects.filter(patient=patient).select_related("signed_by")[:20]
    return "screening/_panel.html", {"rows": rows, "history": history, "patient": patient}
