"""Read-only records built from a session: the REMS Patient Monitoring Form fields (facts 1.9),
the list of forms due within 7 days of the session, and the session page's vitals table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from ketasafe.clinic.models import ClinicSettings
from ketasafe.monitoring.models import Observation, VitalKind
from ketasafe.monitoring.services import vitals_series

from .checks import REMS_QUESTIONS, checklist_of, clinic_date
from .models import AdverseEvent, AdverseEventType, Drug, MonitoringCheck, TreatmentSession
from .state import TERMINAL, Status

PMF_DAYS = 7  # facts 1.9: submit within 7 days of the session


def _bp_pairs(session: TreatmentSession) -> list[tuple[dt.datetime, float, float]]:
    by_time: dict[dt.datetime, dict[str, float]] = {}
    for obs in vitals_series(session, (VitalKind.SYSTOLIC, VitalKind.DIASTOLIC)):
        by_time.setdefault(obs.observed_at, {})[obs.kind] = float(obs.value or 0)
    return [(at, v[VitalKind.SYSTOLIC], v[VitalKind.DIASTOLIC])
            for at, v in sorted(by_time.items()) if len(v) == 2]


# --- vitals table ---------------------------------------------------------------------------

VITALS_SHOWN = 12  # rows the session page shows before "show all"
_TABLE_KINDS = (VitalKind.SYSTOLIC, VitalKind.DIASTOLIC, VitalKind.HEART_RATE, VitalKind.PULSE_RATE,
                VitalKind.SPO2, VitalKind.RESP_RATE)


@dataclass(frozen=True)
class VitalsRow:
    """One reading time (a minute): each value as shown ("" when not measured that minute)."""

    at: dt.datetime
    bp: str
    hr: str
    spo2: str
    rr: str
    source: str  # "monitor", "manual" or "manual + monitor"


def _num(value: Decimal | None) -> str:
    return "" if value is None else f"{value.normalize():f}"


def vitals_table(observations: Iterable[tuple[dt.datetime, str, Decimal | None, str]]) -> list[VitalsRow]:
    """Group (observed_at, kind, value, source) by the minute, newest minute first. Within a
    minute the latest value of a kind wins (input in time order); heart rate falls back to pulse
    rate. Pure: no database, no clock. Minutes are cut in UTC, the same as in any whole-minute zone."""
    minutes: dict[dt.datetime, tuple[dict[str, Decimal], set[str]]] = {}
    for at, kind, value, source in observations:
        if value is None:
            continue
        values, sources = minutes.setdefault(at.replace(second=0, microsecond=0), ({}, set()))
        values[kind] = value
        sources.add(source)
    rows = []
    for at in sorted(minutes, reverse=True):
        v, sources = minutes[at]
        sys_, dia = v.get(VitalKind.SYSTOLIC), v.get(VitalKind.DIASTOLIC)
        bp = f"{_num(sys_) or '?'}/{_num(dia) or '?'}" if sys_ is not None or dia is not None else ""
        rows.append(VitalsRow(at=at, bp=bp, hr=_num(v.get(VitalKind.HEART_RATE, v.get(VitalKind.PULSE_RATE))),
                              spo2=_num(v.get(VitalKind.SPO2)), rr=_num(v.get(VitalKind.RESP_RATE)),
                              source=" + ".join(sorted(sources))))
    return rows


def vitals_rows(session: TreatmentSession) -> list[VitalsRow]:
    """The session's vitals table. One query over (time, kind, value, source) tuples of the kinds
    shown (the session/kind/time index), whatever the number of observations."""
    qs = (Observation.objects.filter(session=session, kind__in=_TABLE_KINDS).exclude(value=None)
          .order_by("observed_at", "id").values_list("observed_at", "kind", "value", "source"))
    return vitals_table(qs)


def _show_bp(pair: tuple[dt.datetime, float, float] | None) -> str:
    return f"{pair[1]:g}/{pair[2]:g}" if pair else "not recorded"


def _yes_no(value: bool | None) -> str:
    return "unanswered" if value is None else ("Yes" if value else "No")


def pmf_deadline(session: TreatmentSession) -> dt.date | None:
    if session.dosing_started_at is None:
        return None
    return clinic_date(session.dosing_started_at) + dt.timedelta(days=PMF_DAYS)


def pmf_fields(session: TreatmentSession) -> list[tuple[str, str]]:
    """The PMF fields (facts 1.9) filled from the session, as (label, value) rows in form order.
    Fields the session cannot know (the monitoring provider's phone) come from the clinic."""
    adm = getattr(session, "administration", None)
    clinic = ClinicSettings.current()
    patient = session.patient
    checklist = checklist_of(session)
    pairs = _bp_pairs(session)
    start = session.dosing_started_at
    before = [p for p in pairs if start is None or p[0] <= start]
    after = [p for p in pairs if start is not None and p[0] > start]
    post = MonitoringCheck.objects.filter(session=session, code="post-dose").first()
    at_40 = None
    if post is not None:
        at_40 = next((p for p in pairs if p[0] == post.observed_at), None)
    if at_40 is None and start is not None and after:
        target = start + dt.timedelta(minutes=40)
        at_40 = min(after, key=lambda p: abs((p[0] - target).total_seconds()))
    end = session.discharged_at or session.ended_at
    duration = int((end - start).total_seconds() // 60) if end and start else None
    prechecks = {r["code"]: r for r in session.precheck_results}
    bp_ok_before = all(prechecks.get(c, {}).get("passed", False) for c in ("BP-CRISIS", "BP-HIGH"))
    discharge = getattr(session, "discharge", None)
    bp_ok_end = None
    if discharge is not None:
        bp_ok_end = next((r["passed"] for r in discharge.results
                          if r["code"] == "BP-BEFORE-DISCHARGE"), None)
    checks = list(MonitoringCheck.objects.filter(session=session))
    sedation = any(c.moaas is not None and c.moaas < 5 for c in checks
                   if start is None or c.observed_at >= start)
    dissociation = any((c.dissociation_total or 0) > 0 for c in checks)
    events = list(session.adverse_events.all())
    resp = any(e.type in (AdverseEventType.RESPIRATORY_DEPRESSION, AdverseEventType.DESATURATION)
               for e in events)
    nurse = adm.administering_nurse if adm else None
    dose = adm.dose_mg if adm else None
    shown = format(dose.normalize(), "f") if dose is not None else ""
    dose_text = "not given" if dose is None else (
        f"{shown} mg" if dose in (56, 84) else f"other: {shown} mg")
    rows = [
        ("Patient name", patient.full_name),
        ("Date of birth", patient.birth_date.isoformat()),
        ("Sex", patient.sex),
        ("First treatment", "Yes" if session.session_number == 1 else "No"),
        ("Patient enrolled in the REMS",
         "Yes" if prechecks.get("TREATMENT-ALLOWED", {}).get("passed") else "not confirmed"),
    ]
    rows += [(f"Concomitant: {label}", _yes_no(getattr(checklist, name)))
             for name, label in REMS_QUESTIONS.items()]
    rows += [
        ("Monitoring healthcare provider",
         (nurse.get_full_name() or nurse.get_username()) if nurse else "—"),
        ("Provider email", nurse.email if nurse and nurse.email else clinic.email or "—"),
        ("Provider phone", clinic.phone or "—"),
        ("Healthcare setting", clinic.name),
        ("Setting address", clinic.address or "—"),
        ("Treatment date", clinic_date(start).isoformat() if start else "—"),
        ("Dose given", dose_text),
        ("Lot number", adm.lot_number if adm else "—"),
        ("Treatment duration (first device to end of monitoring, min)",
         str(duration) if duration is not None else "—"),
        ("Ready to leave without the 2-hour minimum (min from start)",
         str(discharge.ready_to_leave_min) if discharge and discharge.ready_to_leave_min is not None
         else "—"),
        ("Vital signs acceptable before administration", "Yes" if bp_ok_before else "No"),
        ("Vital signs acceptable before the session ended",
         "—" if bp_ok_end is None else ("Yes" if bp_ok_end else "No")),
        ("BP before administration", _show_bp(before[-1] if before else None)),
        ("BP 40 minutes after administration", _show_bp(at_40)),
        ("BP before the session ended", _show_bp(pairs[-1] if after else None)),
        ("Sedation", "Yes" if sedation else "No"),
        ("Dissociation", "Yes" if dissociation else "No"),
        ("Respiratory depression", "Yes" if resp else "No"),
        ("How the session ended", session.end_kind or session.status),
    ]
    return rows


def forms_due() -> QuerySet[TreatmentSession]:
    """Esketamine sessions that have ended with drug given and no PMF recorded as submitted."""
    return (TreatmentSession.objects
            .filter(administration__drug=Drug.ESKETAMINE, status__in=[s.value for s in TERMINAL],
                    pmf_submitted_at=None)
            .exclude(status=Status.CANCELLED)
            .select_related("patient", "administration").order_by("dosing_started_at"))


def events_needing_note() -> QuerySet[AdverseEvent]:
    """Grade 3+ adverse events still without the prescriber's note (any session, also ended
    ones: an event recorded after discharge blocks nothing, so it must be listed)."""
    return (AdverseEvent.objects.filter(grade__gte=3, prescriber_note="")
            .select_related("session__patient", "recorded_by").order_by("occurred_at", "id"))
