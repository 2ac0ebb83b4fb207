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
transaction, so the expensive commit (an fsync) is paid once for the batch. Messages are read
with ``parse_oru_fast`` (differential-tested against the python-hl7 ``parse_oru``) and written
with one multi-row insert per table and one audit-chain lock (``store_parsed``); if that
fails, each message is stored in its own savepoint, so one bad message cannot take the others
with it. ``benchmarks/README.md`` has the measurements behind this shape.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from ketasafe.audit import services as audit_services
from ketasafe.lib.timeutil import clinic_tz
from ketasafe.patients.models import Patient
from ketasafe.sessions.models import Chair, TreatmentSession
from ketasafe.sessions.state import Status

from . import codemap
from .alerts import FUTURE_SKEW, FUTURE_TIMESTAMP
from .exceptions import MessageRejected
from .hl7.ack import ack_accepted, ack_rejected, build_ack
from .hl7.codes import map_observation
from .hl7.fastparse import parse_oru_fast
from .hl7.parse import ParsedMessage
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
    # The session in progress on the chair when PID-3 names another registered patient.
    conflict_session: TreatmentSession | None = None
    devices: list[int] = field(default_factory=list)  # Device ids that sent it (marked seen once stored)


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
            parsed.append((i, parse_oru_fast(raw, default_tz=tz), raw))
        except MessageRejected as exc:
            log.info("rejected %s: %s", exc.ack_code, exc.reason)
            acks[i] = ack_rejected(exc, now=timezone.now())
        except Exception:  # noqa: BLE001 - a parser bug must not stop the listener
            log.exception("parser failed on a message")
            acks[i] = _generic_error(None)
    if parsed:
        outcomes = store_parsed(parsed)
        # Past this point the transaction has committed (or everything is answered AE).
        now = timezone.now()
        for i, msg, _raw in parsed:
            acks[i] = ack_accepted(msg, now=now) if outcomes.get(i) else _generic_error(msg)
    return [ack if ack is not None else _generic_error(None) for ack in acks]


@dataclass
class _Prepared:
    """One message ready to insert: everything computed before the first write."""

    index: int
    inbound: InboundMessage
    observations: list[list[Any]]  # Observation rows in OBS_COLUMNS order, message_id unset
    audit: dict[str, Any]  # keyword arguments of audit.record (object_id set after insert)
    patient: Patient | None
    session_id: int | None
    kinds: set[str]
    conflict_session_id: int | None = None
    conflict_mrn: str = ""
    devices: list[int] = field(default_factory=list)


def store_parsed(parsed: Sequence[tuple[int, ParsedMessage, bytes]]) -> dict[int, bool]:
    """Store parsed messages in one transaction; returns index -> stored (or already stored).

    The fast path writes the whole batch with one query for repeats, one multi-row insert per
    table and one audit-chain lock. If that insert fails (a repeat stored by a racing writer,
    or anything else), the batch savepoint rolls back and each message is stored in its own
    savepoint, so one bad message never costs the others (all or nothing per message)."""
    outcomes: dict[int, bool] = {}
    try:
        with transaction.atomic():
            revision = codemap.current_revision()
            if revision[0] == 0:
                codemap.ensure_seeded()
                revision = codemap.current_revision()
            now = timezone.now()
            lookups = Lookups()
            lookups.load_patients({m.patient_id[:32] for _i, m, _r in parsed if m.patient_id})
            stored = _stored_keys({(_sender(m), m.control_id[:200]) for _i, m, _r in parsed})
            first_of: dict[tuple[str, str], int] = {}
            repeats: list[tuple[int, int]] = []  # (index, index of the same message earlier in the batch)
            prepared: list[_Prepared] = []
            for i, msg, raw in parsed:
                key = (_sender(msg), msg.control_id[:200])
                if key in stored:
                    outcomes[i] = True  # a repeat: acknowledged again, stored once
                    continue
                if key in first_of:
                    repeats.append((i, first_of[key]))
                    continue
                try:
                    prepared.append(_prepare(i, msg, raw, key, revision, lookups, now))
                    first_of[key] = i
                except Exception:  # noqa: BLE001 - AE for this one, nothing of it written
                    log.exception("could not store message %s", msg.control_id)
                    outcomes[i] = False
            done = _insert_all(prepared, parsed)
            outcomes.update({p.index: ok for p, ok in done})
            for i, first in repeats:
                outcomes[i] = outcomes.get(first, False)
            alert_sessions: dict[int, set[str]] = {}
            new_messages: dict[int, set[int]] = {}
            conflicts: dict[int, set[str]] = {}
            for p, ok in done:
                if not ok or p.inbound.pk is None:
                    continue  # answered AE (or a racing writer's copy): nothing of it is ours
                lookups.seen_devices.update(p.devices)
                if p.session_id is not None and p.kinds:
                    alert_sessions.setdefault(p.session_id, set()).update(p.kinds)
                    new_messages.setdefault(p.session_id, set()).add(p.inbound.pk)
                if p.conflict_session_id is not None:
                    conflicts.setdefault(p.conflict_session_id, set()).add(p.conflict_mrn)
            lookups.finish(now)
            if alert_sessions or conflicts:
                from .alerts import evaluate_after_ingest

                transaction.on_commit(lambda: evaluate_after_ingest(alert_sessions, new_messages, conflicts),
                                      robust=True)
    except Exception:  # noqa: BLE001 - the commit failed: nothing of the batch is stored
        log.exception("commit of an ingest batch failed")
        return {i: False for i, _m, _r in parsed}
    return outcomes


def _insert_all(prepared: list[_Prepared], parsed: Sequence[tuple[int, ParsedMessage, bytes]]
                ) -> list[tuple[_Prepared, bool]]:
    if not prepared:
        return []
    try:
        with transaction.atomic():  # a savepoint: the whole batch at once
            _insert(prepared)
        return [(p, True) for p in prepared]
    except Exception:  # noqa: BLE001 - find the culprit: one savepoint per message
        log.info("multi-row insert of %d messages failed; storing them one by one", len(prepared),
                 exc_info=True)
    by_index = {i: msg for i, msg, _raw in parsed}
    done = []
    for p in prepared:
        p.inbound.pk = None
        try:
            with transaction.atomic():
                _insert([p])
            done.append((p, True))
        except IntegrityError:
            # Lost a race with another writer storing the same message: a repeat.
            ok = _already_stored(by_index[p.index])
            if not ok:
                log.exception("integrity error storing %s", p.inbound.control_id)
            done.append((p, ok))
        except Exception:  # noqa: BLE001 - rolled back to the savepoint, AE for this one
            log.exception("could not store message %s", p.inbound.control_id)
            done.append((p, False))
    return done


# Observation columns written by the multi-row insert, in row order.
OBS_COLUMNS = ("session", "patient", "kind", "loinc", "value", "unit", "observed_at", "source", "message",
               "raw_code", "raw_code_system", "raw_code_text", "raw_value", "raw_unit", "raw_value_type",
               "sub_id", "device_id", "unmapped", "flags", "created_at")
_VALUE, _OBSERVED_AT, _MESSAGE, _FLAGS, _CREATED_AT = (OBS_COLUMNS.index(c) for c in (
    "value", "observed_at", "message", "flags", "created_at"))


def _insert(prepared: list[_Prepared]) -> None:
    """InboundMessage rows (one multi-row INSERT ... RETURNING id), all their Observation rows
    (one executemany: the ORM's per-value preparation was half the cost of a message) and one
    audit entry per message (``audit.record_many``: one chain-head lock)."""
    InboundMessage.objects.bulk_create([p.inbound for p in prepared])
    if any(p.inbound.pk is None for p in prepared):  # pragma: no cover - SQLite < 3.35
        raise RuntimeError("the database did not return the new message ids")
    fields = [cast("models.Field[Any, Any]", Observation._meta.get_field(name)) for name in OBS_COLUMNS]
    memo: dict[tuple[int, Any], Any] = {}

    def prep(col: int, value: Any) -> Any:
        if value is None:
            return None
        key = (col, tuple(value) if isinstance(value, list) else value)
        found = memo.get(key)
        if found is None:
            found = memo[key] = fields[col].get_db_prep_save(value, connection)
        return found

    rows = []
    for p in prepared:
        for obs in p.observations:
            row = list(obs)
            row[_MESSAGE] = p.inbound.pk
            for col in (_VALUE, _OBSERVED_AT, _FLAGS, _CREATED_AT):
                row[col] = prep(col, row[col])
            rows.append(row)
    if rows:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column or "") for f in fields)
        # Names come from the model's _meta, values are parameters.
        sql = (f"INSERT INTO {quote(Observation._meta.db_table)} ({columns}) "  # noqa: S608
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
    entries = []
    for p in prepared:
        p.audit["object_id"] = p.inbound.pk
        entries.append(p.audit)
    audit_services.record_many(entries)


def _stored_keys(keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (sender, control id) are already stored: one query for the batch. Only an early
    answer for repeats: the unique constraint stays the authority under races."""
    found = InboundMessage.objects.filter(control_id__in={c for _s, c in keys}).values_list("sender", "control_id")
    return {key for key in found if key in keys}


def _sender(msg: ParsedMessage) -> str:
    return f"{msg.sending_app}|{msg.sending_facility}"[:200]


def _already_stored(msg: ParsedMessage) -> bool:
    return InboundMessage.objects.filter(sender=_sender(msg), control_id=msg.control_id[:200]).exists()


def _prepare(index: int, msg: ParsedMessage, raw: bytes, key: tuple[str, str], revision: Any,
             lookups: Lookups, now: dt.datetime) -> _Prepared:
    sender, control_id = key
    inbound = InboundMessage(
        sender=sender, control_id=control_id, received_at=now, raw=raw.decode("utf-8", "replace"),
        bed=(msg.bed or "")[:80], patient_identifier=(msg.patient_id or "")[:80])
    assignment = assign(msg, now, lookups)
    code_map = codemap.code_map_for(codemap.source_of(msg.sending_app), revision)
    session_id = assignment.session.pk if assignment.session else None
    patient_id = assignment.patient.pk if assignment.patient else None
    rows = []
    unmapped = 0
    kinds: set[str] = set()
    msg_flags: set[str] = set(msg.flags)
    for obs in msg.observations:
        mapped = map_observation(obs, code_map)
        flags = [*obs.flags, *mapped.flags, *assignment.flags]
        observed_at = obs.observed_at or msg.sent_at or now
        if observed_at > now + FUTURE_SKEW:
            flags.append(FUTURE_TIMESTAMP)  # kept as sent; never allowed to hide later readings
            msg_flags.add(FUTURE_TIMESTAMP)
        is_unmapped = "unmapped" in mapped.flags
        unmapped += is_unmapped
        if mapped.kind and mapped.value is not None:
            kinds.add(mapped.kind)
        # OBS_COLUMNS order; the Observation model's max lengths applied as before.
        rows.append([
            session_id, patient_id, mapped.kind or "", (mapped.loinc or "")[:20], mapped.value,
            (mapped.ucum_unit or "")[:20], observed_at, Source.MONITOR.value, None,
            obs.code[:80], obs.code_system[:40], obs.code_text[:120], obs.raw_value[:200],
            (obs.units_code or obs.units_text)[:80], obs.value_type[:10], obs.sub_id[:40],
            (obs.device_id or "")[:120], is_unmapped, flags, now])
    audit_entry = {
        "action": "create", "actor": ACTOR, "patient": assignment.patient, "object_type": "monitoring.InboundMessage",
        "after": {
            "sender": sender, "control_id": control_id, "observations": len(rows), "unmapped": unmapped,
            "assigned": assignment.how, "session": session_id,
            "chair": assignment.chair.pk if assignment.chair else None, "bed": msg.bed or "",
            "flags": sorted({*msg_flags, *assignment.flags})}}
    conflict = assignment.conflict_session
    return _Prepared(index, inbound, rows, audit_entry, assignment.patient, session_id, kinds,
                     conflict_session_id=conflict.pk if conflict is not None else None,
                     conflict_mrn=(msg.patient_id or "")[:32], devices=assignment.devices)


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
        self._patients: dict[str, Patient] | None = None
        self._patient_sessions: dict[int, list[TreatmentSession]] = {}
        self.seen_devices: set[int] = set()

    def load_patients(self, mrns: set[str]) -> None:
        """Read the patients named by a batch (PID-3) and their sessions in progress at once."""
        self._patients = {p.mrn: p for p in Patient.objects.filter(mrn__in=mrns)} if mrns else {}
        if self._patients:
            for session in TreatmentSession.objects.filter(patient__in=list(self._patients.values()),
                                                           status__in=IN_CHAIR).order_by("id"):
                self._patient_sessions.setdefault(session.patient_id, []).append(session)

    def patient(self, mrn: str) -> Patient | None:
        if self._patients is None:
            return Patient.objects.filter(mrn=mrn).first()
        return self._patients.get(mrn)

    def sessions_of(self, patient: Patient) -> list[TreatmentSession]:
        if self._patients is None:
            return list(TreatmentSession.objects.filter(patient=patient, status__in=IN_CHAIR)[:2])
        return self._patient_sessions.get(patient.pk, [])[:2]

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
    data is not put on the session (flag ``patient_mismatch``) but on the named patient, and
    ``conflict_session`` names the chair's session (it gets a ``DATA_CONFLICT`` alert). Data on
    a patient without exactly one session in progress is flagged and listed as unassigned."""
    lookups = lookups or Lookups()
    result = Assignment()
    if msg.bed:
        result.chair = lookups.chair_by_bed(msg.bed[:80])
    devices = lookups.devices(_device_candidates(msg))
    result.devices = [d.pk for d in devices]
    if result.chair is None:
        result.chair = next((d.chair for d in devices if d.chair is not None), None)
    named = lookups.patient(msg.patient_id[:32]) if msg.patient_id else None
    if result.chair is not None:
        session = lookups.session_on(result.chair)
        if session is not None:
            if named is not None and named.pk != session.patient_id:
                result.flags.append("patient_mismatch")
                result.conflict_session = session
            else:
                result.session, result.patient, result.how = session, session.patient, "session"
                return result
    if named is not None:
        result.patient, result.how = named, "patient"
        in_progress = lookups.sessions_of(named)
        if len(in_progress) == 1 and "patient_mismatch" not in result.flags:
            result.session, result.how = in_progress[0], "session"
        elif len(in_progress) > 1:
            result.flags.append("several_sessions_in_progress")
        elif not in_progress:
            result.flags.append("no_session_in_progress")
    return result
