"""Builders for session tests: orders signed through the service, and sessions walked through
the real state machine with explicit (pinned) times, never by assigning a status."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ketasafe.conftest import TEST_PASSWORD
from ketasafe.protocols import services as protocol_services
from ketasafe.protocols.definitions import SHIPPED_VERSION
from ketasafe.protocols.models import ProtocolVersion
from ketasafe.sessions import services
from ketasafe.sessions.models import Chair, TreatmentSession
from ketasafe.sessions.state import Status

YES_CHECKLIST = {"fasting_confirmed": True, "ride_home_arranged": True, "pregnancy_test": "",
                 "benzodiazepines": False, "nonbenzo_hypnotics": False, "psychostimulants": False,
                 "maois": False, "opioids": False}
GOOD_VITALS = {"systolic": Decimal(122), "diastolic": Decimal(78), "heart_rate": Decimal(72),
               "spo2": Decimal(98)}


class GateStub:
    """Stands in for consent.gate.treatment_allowed (owned by the consent work)."""

    def __init__(self) -> None:
        self.problems: tuple[Any, ...] = ()
        self.calls: list[tuple[Any, str, dt.datetime]] = []

    def deny(self, code: str = "consent_missing", message: str = "no signed consent") -> None:
        from ketasafe.consent.gate import GateProblem

        self.problems = (GateProblem(code, message),)

    def allow(self) -> None:
        self.problems = ()

    def __call__(self, patient: Any, protocol_id: str, at: dt.datetime) -> Any:
        from ketasafe.consent.gate import TreatmentGate

        self.calls.append((patient, protocol_id, at))
        return TreatmentGate(allowed=not self.problems, missing=self.problems)


def version(protocol_id: str) -> ProtocolVersion:
    protocol_services.ensure_shipped_versions()
    return ProtocolVersion.objects.get(protocol_id=protocol_id, label=SHIPPED_VERSION)


def sign_order(patient: Any, prescriber: Any, protocol_id: str, *, sessions: int = 8,
               dose_parameters: dict[str, Any] | None = None, at: dt.datetime,
               course_start: dt.date | None = None) -> Any:
    return protocol_services.do_sign_order(
        actor=prescriber, patient=patient, protocol_version=version(protocol_id),
        sessions_ordered=sessions, dose_parameters=dose_parameters or {}, password=TEST_PASSWORD,
        course_start=course_start or (at - dt.timedelta(days=1)).date(), at=at)


def chair(n: int = 1) -> Chair:
    return Chair.objects.get_or_create(name=f"Chair {n}", defaults={"bed_code": f"KETA^CHAIR^{n}"})[0]


def schedule(order: Any, scheduler: Any, at: dt.datetime, *, chair_n: int = 1,
             prescriber: Any = None) -> TreatmentSession:
    return services.do_schedule(actor=scheduler, order=order, scheduled_at=at, chair=chair(chair_n),
                                prescriber_on_site=prescriber)


def walk(session: TreatmentSession, to: Status, *, nurse: Any, prescriber: Any,
         dose_at: dt.datetime, vitals: dict[str, Decimal] | None = None,
         checklist: dict[str, Any] | None = None) -> TreatmentSession:
    """Advance ``session`` along the happy path up to ``to``; the first dose is at ``dose_at``
    and every other step is timed relative to it."""
    order = [Status.CHECKED_IN, Status.PRE_CHECKS_PASSED, Status.DOSING, Status.MONITORING,
             Status.RECOVERY]
    target = order.index(to)
    services.do_check_in(actor=nurse, session=session, at=dose_at - dt.timedelta(minutes=30))
    if target == 0:
        return session
    services.do_update_checklist(actor=nurse, session=session, values=checklist or YES_CHECKLIST,
                                 prescriber_on_site=prescriber,
                                 at=dose_at - dt.timedelta(minutes=20))
    first_check = "pre-dose" if session.order.protocol_version.protocol_id.startswith("esk") \
        else "pre-infusion"
    services.do_record_check(actor=nurse, session=session, code=first_check,
                             observed_at=dose_at - dt.timedelta(minutes=10),
                             vitals=vitals or GOOD_VITALS, moaas=5,
                             at=dose_at - dt.timedelta(minutes=10))
    services.do_pass_prechecks(actor=nurse, session=session, at=dose_at - dt.timedelta(minutes=5))
    if target == 1:
        return session
    adm = services.do_start_dosing(actor=nurse, session=session, lot_number="LOT-1",
                                   observing_prescriber=prescriber, at=dose_at)
    if target == 2:
        return session
    last = dose_at
    if adm.drug == "esketamine":
        for n in range(2, (adm.devices_planned or 0) + 1):
            last = dose_at + dt.timedelta(minutes=5 * (n - 1))
            services.do_record_device(actor=nurse, session=session, at=last)
    else:
        last = dose_at + dt.timedelta(minutes=adm.duration_min or 0)
    services.do_finish_dosing(actor=nurse, session=session, at=last)
    if target == 3:
        return session
    services.do_record_check(actor=nurse, session=session, code="post-dose",
                             observed_at=dose_at + dt.timedelta(minutes=40),
                             vitals={"systolic": Decimal(138), "diastolic": Decimal(86)}, moaas=4,
                             at=dose_at + dt.timedelta(minutes=41))
    services.do_begin_recovery(actor=nurse, session=session,
                               at=max(last, dose_at + dt.timedelta(minutes=41)))
    return session


def dose_token(session: TreatmentSession, at: dt.datetime | None = None) -> str:
    """The Start-dosing form's dose token, as the session page renders it at ``at``."""
    from django.utils import timezone

    from ketasafe.sessions import checks

    current = checks.current_dose(session, at or timezone.now())
    assert current is not None
    return current.token()


def final_check(session: TreatmentSession, nurse: Any, at: dt.datetime, *,
                systolic: int = 124, diastolic: int = 80, moaas: int = 5) -> None:
    services.do_record_check(actor=nurse, session=session, code="before-discharge",
                             observed_at=at, vitals={"systolic": Decimal(systolic),
                                                     "diastolic": Decimal(diastolic),
                                                     "spo2": Decimal(98)},
                             moaas=moaas, at=at)


GOOD_ALDRETE = [2, 2, 2, 2, 2]
