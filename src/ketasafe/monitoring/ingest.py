"""HL7 ingest: raw ORU^R01 bytes in, ACK bytes out. The listener is a thin shell around this.

Guarantees (issue 5, STYLE §7):

- ``process_message(raw)`` and ``process_batch(raws)`` never raise. Every message gets an ACK.
- ``AA`` is built only after the transaction holding the message has committed: the monitor
  forgets what it sent once acknowledged. ``AE``/``AR`` for a rejected message, which stores
  nothing. An unexpected error gives ``AE`` with a generic reason (logged), nothing stored.
- A repeat (same MSH-3, MSH-4 and MSH-10) is acknowledged ``AA`` again and stored once; the
  unique constraint on ``InboundMessage`` makes this hold between racing processes as well.
- Each stored message writes its ``InboundMessage``, every OBX as an ``Observation`` (as
  received, mapped through the clinic's code map, flagged) and one audit entry, all in the same
  transaction. Alerts are evaluated by ``transaction.on_commit`` callbacks of that transaction.

Call it outside any transaction (the listener does): inside a caller's ``atomic()`` the
"commit" is only a savepoint and the ACK-after-commit guarantee is the caller's to keep.

``process_batch`` is the group commit: several messages (from several connections) in one
transaction, each in its own savepoint, so one bad message cannot take the others with it and
the expensive commit (an fsync) is paid once for the batch.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ketasafe import audit
from ketasafe.lib.timeutil import clinic_tz
from ketasafe.patients.models import Patient
from ketasafe.sessions.models import Chair, TreatmentSession
from ketasafe.sessions.state import Status

from . import codemap
from .exceptions import MessageRejected
from .hl7.ack import ack_accepted, ack_rejected, build_ack
from .hl7.codes import map_observation
from .hl7.parse import ParsedMessage, parse_oru
from .models import Device, InboundMessage, Observation, Source

log = logging.getLogger("ketasafe.monitoring.ingest")

ACTOR = "system:mllp"
# A session "in progress" on a chair: the patient is in it, before or after the drug.
IN_CHAIR: tuple[str, ...] = tuple(s.value for s in (
    Status.CHECKED_IN, Status.PRE_CHECKS_PASSED, Status.DOSING, Status.MONITORING, Status.RECOVERY))
GENERIC_ERROR = "the message could not be stored because of an internal error; send it again"


@dataclass
class Assignment:
    chair: Chair | None = None
    session: TreatmentSession | None = None
    patient: Patient | None = None
    how: str = "unassigned"  # "session" | "patient" | "unassigned"
    flags: list[str] = field(default_factory=list)


def process_message(raw: bytes) -> bytes:
    """One message in, its ACK out (unframed). See the module docstring for the guarantees."""
    return process_batch([raw])[0]


def process_batch(raws: Sequence[bytes]) -> list[bytes]:
    """ACKs for ``raws`` in the same order, the accepted ones stored in one transaction."""
    try:
        return _process_batch(raws)
    except Exception:  # noqa: BLE001 - the contract: never raise, every message gets an ACK
        log.exception("ingest batch of %d failed", len(raws))
        return [_generic_error(None) for _ in raws]


def _generic_error(msg: ParsedMessage | None) -> bytes:
    try:
        return build_ack(code="AE", control_id=msg.control_id if msg else None, now=timezone.now(),
                         reason=GENERIC_ERROR, error_code="207",
                         sending_app=msg.sending_app if msg else None,
                         sending_facility=msg.sending_facility if msg else None,
                         version=msg.version if msg else None)
    except Exception:  # noqa: BLE001 - last resort, bytes we know are valid
        return b"MSH|^~\\&|KetaSafe||||||ACK|0|P|2.6\rMSA|AE||internal error\r"


def _process_batch(raws: Sequence[bytes]) -> list[bytes]:
    tz = clinic_tz()
    acks: list[bytes | None] = [None] * len(raws)
    parsed: list[tuple[int, ParsedMessage, bytes]] = []
    for i, raw in enumerate(raws):
        try:
            parsed.append((i, parse_oru(raw, default_tz=tz), raw))
        except MessageRejected as exc:
            log.info("rejected %s: %s", exc.ack_code, exc.reason)
            acks[i] = ack_rejected(exc, now=timezone.now())
        except Exception:  # noqa: BLE001 - a parser bug must not stop the listener
            log.exception("parser failed on a message")
            acks[i] = _generic_error(None)
    if parsed:
        outcomes: dict[int, bool] = {}
        try:
            with transaction.atomic():
                revision = codemap.current_revision()
                if revision[0] == 0:
                    codemap.ensure_seeded()
                    revision = codemap.current_revision()
                alert_sessions: dict[int, set[str]] = {}
                lookups = Lookups()
                for i, msg, raw in parsed:
                    try:
                        with transaction.atomic():  # a savepoint: one message, all or nothing
                            _store(msg, raw, revision, alert_sessions, lookups)
                        outcomes[i] = True
                    except IntegrityError:
                        # Lost a race with another writer storing the same message: a repeat.
                        outcomes[i] = _already_stored(msg)
                        if not outcomes[i]:
                            log.exception("integrity error storing %s", msg.control_id)
                    except Exception:  # noqa: BLE001 - rolled back to the savepoint, AE for this one
                        log.exception("could not store message %s", msg.control_id)
                        outcomes[i] = False
                lookups.finish(timezone.now())
                if alert_sessions:
                    from .alerts import evaluate_after_ingest

                    transaction.on_commit(lambda: evaluate_after_ingest(alert_sessions), robust=True)
        except Exception:  # noqa: BLE001 - the commit failed: nothing of the batch is stored
            log.exception("commit of an ingest batch failed")
            for i, _msg, _raw in parsed:
                outcomes[i] = False
        # Past this point the transaction has committed (or everything is answered AE).
        now = timezone.now()
        for i, msg, _raw in parsed:
            acks[i] = ack_accepted(msg, now=now) if outcomes.get(i) else _generic_error(msg)
    return [ack if ack is not None else _generic_error(None) for ack in acks]


def _sender(msg: ParsedMessage) -> str:
    return f"{msg.sending_app}|{msg.sending_facility}"[:200]


def _already_stored(msg: ParsedMessage) -> bool:
    return InboundMessage.objects.filter(sender=_sender(msg), control_id=msg.control_id[:200]).exists()


def _store(msg: ParsedMessage, raw: bytes, revision: Any, alert_sessions: dict[int, set[str]],
           lookups: Lookups) -> None:
    sender, control_id = _sender(msg), msg.control_id[:200]
    now = timezone.now()
    # A repeat fails the unique constraint here; the caller's savepoint undoes this message only
    # and answers AA (stored once). No read-before-write: the constraint is the race-safe check.
    inbound = InboundMessage.objects.create(
        sender=sender, control_id=control_id, received_at=now, raw=raw.decode("utf-8", "replace"),
        bed=(msg.bed or "")[:80], patient_identifier=(msg.patient_id or "")[:80])
    assignment = assign(msg, now, lookups)
    code_map = codemap.code_map_for(codemap.source_of(msg.sending_app), revision)
    rows = []
    unmapped = 0
    kinds: set[str] = set()
    for obs in msg.observations:
        mapped = map_observation(obs, code_map)
        flags = [*obs.flags, *mapped.flags, *assignment.flags]
        is_unmapped = "unmapped" in mapped.flags
        unmapped += is_unmapped
        if mapped.kind and mapped.value is not None:
            kinds.add(mapped.kind)
        rows.append(Observation(
            session=assignment.session, patient=assignment.patient, kind=mapped.kind or "",
            loinc=(mapped.loinc or "")[:20], value=mapped.value, unit=(mapped.ucum_unit or "")[:20],
            observed_at=obs.observed_at or msg.sent_at or now, source=Source.MONITOR, message=inbound,
            raw_code=obs.code[:80], raw_code_system=obs.code_system[:40], raw_code_text=obs.code_text[:120],
            raw_value=obs.raw_value[:200], raw_unit=(obs.units_code or obs.units_text)[:80],
            raw_value_type=obs.value_type[:10], sub_id=obs.sub_id[:40], device_id=(obs.device_id or "")[:120],
            unmapped=is_unmapped, flags=flags))
    Observation.objects.bulk_create(rows)
    audit.record("create", actor=ACTOR, patient=assignment.patient, obj=inbound, after={
        "sender": sender, "control_id": control_id, "observations": len(rows), "unmapped": unmapped,
        "assigned": assignment.how, "session": assignment.session.pk if assignment.session else None,
        "chair": assignment.chair.pk if assignment.chair else None, "bed": msg.bed or "",
        "flags": sorted({*msg.flags, *assignment.flags})})
    if assignment.session is not None and kinds:
        alert_sessions.setdefault(assignment.session.pk, set()).update(kinds)


def _device_candidates(msg: ParsedMessage) -> set[str]:
    ids = {o.device_id for o in msg.observations if o.device_id}
    parts = msg.sending_app.split("^")
    ids.add(msg.sending_app)
    if len(parts) > 1 and parts[1]:
        ids.add(parts[1])  # MSH-3.2: universal id, the EUI-64 of a PCD-01 gateway
    return {i[:120] for i in ids if i}


class Lookups:
    """Chairs, mapped devices and the sessions in progress on chairs, read once per batch (a
    clinic has tens of chairs, not thousands) instead of three queries per message. Valid for
    one transaction only."""

    def __init__(self) -> None:
        self._chairs: dict[str, Chair] | None = None
        self._devices: dict[str, Device] | None = None
        self._sessions: dict[int, TreatmentSession] | None = None
        self.seen_devices: set[int] = set()

    def chair_by_bed(self, bed: str) -> Chair | None:
        if self._chairs is None:
            self._chairs = {c.bed_code: c for c in Chair.objects.all()}
        return self._chairs.get(bed)

    def devices(self, candidates: set[str]) -> list[Device]:
        if self._devices is None:
            self._devices = {d.identifier: d for d in Device.objects.select_related("chair")}
        return [self._devices[c] for c in candidates if c in self._devices]

    def session_on(self, chair: Chair) -> TreatmentSession | None:
        if self._sessions is None:
            self._sessions = {}
            for session in (TreatmentSession.objects.filter(chair__isnull=False, status__in=IN_CHAIR)
                            .select_related("patient").order_by("checked_in_at", "id")):
                self._sessions[session.chair_id] = session  # type: ignore[index]  # latest check-in wins
        return self._sessions.get(chair.pk)

    def finish(self, now: dt.datetime) -> None:
        if self.seen_devices:
            Device.objects.filter(pk__in=self.seen_devices).update(last_seen_at=now)


def assign(msg: ParsedMessage, now: dt.datetime, lookups: Lookups | None = None) -> Assignment:
    """Whose data is this: the session in progress on the chair (PV1-3 bed, else a device mapped
    to a chair), else the patient by PID-3 MRN (and that patient's one session in progress),
    else nobody (stored unassigned, offered to a nurse).

    Safety: if PID-3 names a registered patient other than the one in the chair's session, the
    data is not put on the session (flag ``patient_mismatch``) but on the named patient."""
    own = lookups is None
    lookups = lookups or Lookups()
    result = Assignment()
    if msg.bed:
        result.chair = lookups.chair_by_bed(msg.bed[:80])
    devices = lookups.devices(_device_candidates(msg))
    lookups.seen_devices.update(d.pk for d in devices)
    if result.chair is None:
        result.chair = next((d.chair for d in devices if d.chair is not None), None)
    named = Patient.objects.filter(mrn=msg.patient_id[:32]).first() if msg.patient_id else None
    try:
        if result.chair is not None:
            session = lookups.session_on(result.chair)
            if session is not None:
                if named is not None and named.pk != session.patient_id:
                    result.flags.append("patient_mismatch")
                else:
                    result.session, result.patient, result.how = session, session.patient, "session"
                    return result
        if named is not None:
            result.patient, result.how = named, "patient"
            in_progress = list(TreatmentSession.objects.filter(patient=named, status__in=IN_CHAIR)[:2])
            if len(in_progress) == 1 and "patient_mismatch" not in result.flags:
                result.session, result.how = in_progress[0], "session"
        return result
    finally:
        if own:
            lookups.finish(now)
