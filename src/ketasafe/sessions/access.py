"""The one access helper of the session pages (STYLE §6): role check, fetch, audit of reads."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from ketasafe import audit
from ketasafe.accounts.access import require_capability

from .models import TreatmentSession


def get_session_for(request: HttpRequest, session_id: int, *, capability: str = "run_sessions",
                    audit_view: bool = False) -> TreatmentSession:
    """The session, if the user's role has ``capability`` (403 otherwise, 404 if missing).
    A page that shows the record audits the read (compliance B.3)."""
    require_capability(request.user, capability)
    session = get_object_or_404(
        TreatmentSession.objects.select_related("patient", "order", "order__protocol_version",
                                                "chair", "prescriber_on_site"),
        pk=session_id)
    if audit_view:
        audit.record("view", request=request, patient=session.patient, obj=session,
                     detail=request.path)
    return session
