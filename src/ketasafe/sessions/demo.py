"""The demo clinic's chairs, signed orders and a day of sessions (clinic/demo_loaders.py).

Chairs: "Chair 1" .. "Chair 6", whose monitors send PV1-3 as ``KETA^CHAIR^<n>`` (HL7 PL type:
point of care ``KETA``, room ``CHAIR``, bed ``<n>``). The monitor simulator uses these codes.

Every order and session goes through the real services (signatures, pre-checks, the state
machine). One caveat, for history only: the demo's screenings and consents are recorded when the
demo loads, and the consent gate ignores records made after the time it is asked about, so a
session backdated to earlier today would fail TREATMENT-ALLOWED. While building that history the
gate is therefore asked "is this patient allowed now?" (at load time) instead of at the backdated
time; every other gate runs at the backdated time as usual.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.utils import timezone

from ketasafe.clinic.demo_data import DemoContext
from ketasafe.protocols import services as protocol_services
from ketasafe.protocols.definitions import SHIPPED_VERSION
from ketasafe.protocols.models import ProtocolVersion, TreatmentOrder

from . import services
from .models import Chair, TreatmentSession
from .state import Status

BED_CODE = "KETA^CHAIR^{n}"
CHECKLIST = {"fasting_confirmed": True, "ride_home_arranged": True, "pregnancy_test": "negative",
             "benzodiazepines": False, "nonbenzo_hypnotics": False, "psychostimulants": False,
             "maois": False, "opioids": False}


def chair_bed_code(n: int) -> str:
    return BED_CODE.format(n=n)


def ensure_chairs() -> list[Chair]:
    return [Chair.objects.get_or_create(name=f"Chair {n}", defaults={"bed_code": chair_bed_code(n)})[0]
            for n in range(1, 7)]


@contextmanager
def _gate_at_load_time(load_time: dt.datetime) -> Iterator[None]:
    from ketasafe.consent import gate

    real = gate.treatment_allowed

    def at_load(patient: Any, protocol_id: str, at: dt.datetime) -> Any:
        return real(patient, protocol_id, max(at, load_time))

    gate.treatment_allowed = at_load
    try:
        yield
    finally:
        gate.treatment_allowed = real


def _eligible(ctx: DemoContext, now: dt.datetime) -> list[tuple[Any, str]]:
    from ketasafe.consent import gate

    found = []
    for patient in ctx.patients:
        for protocol_id in ("esketamine-trd", "esketamine-mdsi", "iv-ketamine-depression",
                            "iv-ketamine-crps"):
            try:
                allowed = gate.treatment_allowed(patient, protocol_id, now).allowed
            except ImportError:
                return []
            if allowed:
                found.append((patient, protocol_id))
                break
    return found


def _vitals(systolic: int, diastolic: int) -> dict[str, Decimal]:
    return {"systolic": Decimal(systolic), "diastolic": Decimal(diastolic),
            "heart_rate": Decimal(74), "spo2": Decimal(98)}


def _walk(session: TreatmentSession, to: Status, dose_at: dt.datetime, ctx: DemoContext,
          *, nurse: Any, prescriber: Any) -> None:
    steps = [Status.CHECKED_IN, Status.PRE_CHECKS_PASSED, Status.DOSING, Status.MONITORING,
             Status.RECOVERY, Status.DISCHARGED]
    target = steps.index(to)
    minutes = dt.timedelta(minutes=1)
    services.do_check_in(actor=nurse, session=session, at=dose_at - 30 * minutes)
    if target == 0:
        return
    services.do_update_checklist(actor=nurse, session=session, values=CHECKLIST,
                                 prescriber_on_site=prescriber, at=dose_at - 25 * minutes)
    code = "pre-dose" if session.order.protocol_version.protocol_id.startswith("esk") else "pre-infusion"
    services.do_record_check(actor=nurse, session=session, code=code, vitals=_vitals(128, 82),
                             moaas=5, observed_at=dose_at - 15 * minutes, at=dose_at - 15 * minutes)
    services.do_pass_prechecks(actor=nurse, session=session, at=dose_at - 5 * minutes)
    if target == 1:
        return
    adm = services.do_start_dosing(actor=nurse, session=session, lot_number="DEMO-LOT-2611",
                                   observing_prescriber=prescriber, at=dose_at)
    if adm.drug == "ketamine":
        services.do_record_check(actor=nurse, session=session, code="during-10", moaas=4,
                                 vitals=_vitals(136, 86), observed_at=dose_at + 10 * minutes,
                                 at=dose_at + 10 * minutes)
    if target == 2:
        return
    last = dose_at
    if adm.drug == "esketamine":
        for n in range(2, (adm.devices_planned or 0) + 1):
            last = dose_at + 5 * (n - 1) * minutes
            services.do_record_device(actor=nurse, session=session, at=last)
    else:
        for n in (2, 3):
            services.do_record_check(actor=nurse, session=session, code=f"during-{10 * n}", moaas=4,
                                     vitals=_vitals(138, 86), at=dose_at + 10 * n * minutes)
        last = dose_at + (adm.duration_min or 40) * minutes
    services.do_finish_dosing(actor=nurse, session=session, at=last)
    if target == 3:
        return
    services.do_record_check(actor=nurse, session=session, code="post-dose", moaas=4,
                             vitals=_vitals(142, 88), dissociation_scale="cadss6",
                             dissociation_answers=[1, 1, 0, 1, 0, 0],
                             observed_at=dose_at + 40 * minutes, at=dose_at + 41 * minutes)
    services.do_begin_recovery(actor=nurse, session=session, at=dose_at + 100 * minutes)
    if target == 4:
        return
    done = dose_at + 125 * minutes
    services.do_record_check(actor=nurse, session=session, code="before-discharge", moaas=5,
                             vitals=_vitals(126, 80), observed_at=done - 3 * minutes, at=done)
    services.do_discharge(actor=nurse, session=session, aldrete_answers=[2, 2, 2, 2, 2],
                          responsible_adult_present=True, driving_instructions_given=True,
                          ready_to_leave_min=90, at=done)


def load(ctx: DemoContext) -> None:
    chairs = ensure_chairs()
    if TreatmentOrder.objects.filter(patient__mrn__startswith="DEMO-").exists():
        return
    protocol_services.ensure_shipped_versions()
    now = timezone.now()  # after the consent records: the gate ignores later ones
    eligible = _eligible(ctx, now)
    prescribers = [ctx.staff["prescriber"], ctx.staff["prescriber2"]]
    nurses = [ctx.staff["nurse"], ctx.staff["nurse2"]]
    orders: dict[str, list[TreatmentOrder]] = {"esketamine": [], "iv": []}
    hour = dt.timedelta(hours=1)
    for n, (patient, protocol_id) in enumerate(eligible[:14]):
        prescriber = prescribers[n % 2]
        is_esk = protocol_id.startswith("esketamine")
        version = ProtocolVersion.objects.get(protocol_id=protocol_id, label=SHIPPED_VERSION)
        order = protocol_services.do_sign_order(
            actor=prescriber, patient=patient, protocol_version=version,
            sessions_ordered=8 if is_esk else 6, password=ctx.passwords.get(prescriber.username, ""),
            dose_parameters={"dose_mg": 84} if protocol_id == "esketamine-trd" else {},
            course_start=ctx.today - dt.timedelta(days=10 if is_esk else 0), at=now,
            notes="Demo course.")
        orders["esketamine" if is_esk else "iv"].append(order)

    minute = dt.timedelta(minutes=1)
    scheduler = ctx.staff["frontdesk"]

    def book(order: TreatmentOrder, at: dt.datetime, chair: int, prescriber: Any) -> TreatmentSession:
        return services.do_schedule(actor=scheduler, order=order, scheduled_at=at,
                                    chair=chairs[chair - 1], prescriber_on_site=prescriber)

    esk, iv = list(orders["esketamine"]), list(orders["iv"])
    p1, p2 = prescribers
    n1, n2 = nurses
    later: list[TreatmentOrder] = []
    with _gate_at_load_time(now):
        # Esketamine history with REMS forms due (8 days ago: overdue; 4 days ago: due), then
        # the same course's third session in monitoring now (its 40-minute check is due).
        if esk:
            first = esk.pop(0)
            for days in (8, 4):
                at = now - dt.timedelta(days=days, hours=1)
                _walk(book(first, at, 6, p1), Status.DISCHARGED, at, ctx, nurse=n1, prescriber=p1)
            _walk(book(first, now - 55 * minute, 1, p1), Status.MONITORING, now - 45 * minute, ctx,
                  nurse=n1, prescriber=p1)
        if esk:  # a second esketamine course: last session 3 days ago, form submitted
            second = esk.pop(0)
            at = now - dt.timedelta(days=3, hours=2)
            session = book(second, at, 6, p2)
            _walk(session, Status.DISCHARGED, at, ctx, nurse=n2, prescriber=p2)
            services.do_mark_pmf_submitted(actor=n2, session=session, reference="REMS-DEMO-1",
                                           at=now - dt.timedelta(days=2))
            later.append(second)
        rest = iv + esk
        if rest:  # an infusion running now
            order = rest.pop(0)
            _walk(book(order, now - 30 * minute, 2, p2), Status.DOSING, now - 18 * minute, ctx,
                  nurse=n2, prescriber=p2)
        if rest:  # checked in, pre-checks to do
            order = rest.pop(0)
            services.do_check_in(actor=n2, session=book(order, now - 10 * minute, 3, p2),
                                 at=now - 5 * minute)
        if rest:  # discharged this morning
            order = rest.pop(0)
            _walk(book(order, now - 4 * hour, 5, p1), Status.DISCHARGED, now - 4 * hour, ctx,
                  nurse=n1, prescriber=p1)
    # Later today: scheduled, ready for check-in.
    for k, order in enumerate((rest + later)[:5]):
        book(order, now + (k + 1) * hour, 4 + k % 3, prescribers[k % 2])
