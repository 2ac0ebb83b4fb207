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
with ``parse_oru_fast`` (differential-tested against the python-hl7 ``parse_oru``) and mapped
before the transaction; in it, one plain-SQL read per kind of lookup (repeats, patients,
chairs, devices, sessions in progress), one multi-row insert per table and one audit-chain
lock (``store_parsed``, ``lib/sql.py``: values prepared by the model fields, so the rows are
the ORM's). If that fails, each message is stored in its own savepoint, so one bad message
cannot take the others with it; a transaction that can no longer commit answers nothing AA.
``benchmarks/README.md`` has the measurements behind this shape.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ketasafe.audit import services as audit_services
from ketasafe.lib import sql
from ketasafe.lib.sql import RowWriter
from ketasafe.lib.timeutil import clinic_tz
from ketasafe.patients.models import Patient
from ketasafe.sessions import state
from ketasafe.sessions.models import Chair, TreatmentSession

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
# sessions.state.IN_CHAIR as the values the plain-SQL lookups bind.
IN_CHAIR: tuple[str, ...] = tuple(sorted(s.value for s in state.IN_CHAIR))
GENERIC_ERROR = "the message could not be stored because of an internal error; send it again"


@dataclass(frozen=True, slots=True)
class SessionRef:
    """What assignment needs of a session in progress (read with plain SQL per batch)."""

    pk: int
    patient_id: int
    chair_id: int | None


@dataclass
class Assignment:
    chair_id: int | None = None
    session: SessionRef | None = None
    patient_id: int | None = None
    how: str = "unassigned"  # "session" | "patient" | "unassigned"
    flags: list[str] = field(default_factory=list)
    # The session in progress on the chair when PID-3 names another registered patient.
    conflict_session: SessionRef | None = None
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
            parsed.append((i, _storable(parse_oru_fast(raw, default_tz=tz), raw), raw))
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
    message: tuple[Any, ...]  # InboundMessage row in MESSAGE_COLUMNS order
    control_id: str
    observations: list[list[Any]]  # Observation rows in OBS_COLUMNS order, message_id unset
    audit: dict[str, Any]  # keyword arguments of audit.record (object_id set after insert)
    session_id: int | None
    kinds: set[str]
    conflict_session_id: int | None = None
    conflict_mrn: str = ""
    devices: list[int] = field(default_factory=list)
    message_id: int | None = None  # set by the insert


def store_parsed(parsed: Sequence[tuple[int, ParsedMessage, bytes]]) -> dict[int, bool]:
    """Store parsed messages in one transaction; returns index -> stored (or already stored).

    The fast path writes the whole batch with one query for repeats, one multi-row insert per
    table and one audit-chain lock. If that insert fails (a repeat stored by a racing writer,
    or anything else), the batch savepoint rolls back and each message is stored in its own
    savepoint, so one bad message never costs the others (all or nothing per message)."""
    outcomes: dict[int, bool] = {}
    # What does not depend on the database's current state is computed before the write
    # transaction (code mapping, rows, flags), so the transaction holds the write lock for
    # the part that needs it only.
    now = timezone.now()
    revision = codemap.current_revision()
    if revision[0] == 0:
        with transaction.atomic():
            codemap.ensure_seeded()
        revision = codemap.current_revision()
    first_of: dict[tuple[str, str], int] = {}
    repeats: list[tuple[int, int]] = []  # (index, index of the same message earlier in the batch)
    mapped: list[_Mapped] = []
    for i, msg, raw in parsed:
        key = (_sender(msg), msg.control_id[:200])
        if key in first_of:
            repeats.append((i, first_of[key]))
            continue
        try:
            mapped.append(_map(i, msg, raw, key, revision, now))
            first_of[key] = i
        except Exception:  # noqa: BLE001 - AE for this one, nothing of it written
            log.exception("could not store message %s", msg.control_id)
            outcomes[i] = False
    try:
        with transaction.atomic():
            lookups = Lookups()
            lookups.load_patients({m.msg.patient_id[:32] for m in mapped if m.msg.patient_id})
            stored = _stored_keys({m.key for m in mapped})
            prepared: list[_Prepared] = []
            for m in mapped:
                if m.key in stored:
                    outcomes[m.index] = True  # a repeat: acknowledged again, stored once
                    continue
                try:
                    prepared.append(_prepare(m, lookups))
                except Exception:  # noqa: BLE001 - AE for this one, nothing of it written
                    log.exception("could not store message %s", m.msg.control_id)
                    outcomes[m.index] = False
            done = _insert_all(prepared, parsed)
            outcomes.update({p.index: ok for p, ok in done})
            for i, first in repeats:
                outcomes[i] = outcomes.get(first, False)
            alert_sessions: dict[int, set[str]] = {}
            new_messages: dict[int, set[int]] = {}
            conflicts: dict[int, set[str]] = {}
            for p, ok in done:
                if not ok or p.message_id is None:
                    continue  # answered AE (or a racing writer's copy): nothing of it is ours
                lookups.seen_devices.update(p.devices)
                if p.session_id is not None and p.kinds:
                    alert_sessions.setdefault(p.session_id, set()).update(p.kinds)
                    new_messages.setdefault(p.session_id, set()).add(p.message_id)
                if p.conflict_session_id is not None:
                    conflicts.setdefault(p.conflict_session_id, set()).add(p.conflict_mrn)
            lookups.finish(now)
            if alert_sessions or conflicts:
                from .alerts import evaluate_after_ingest

                transaction.on_commit(lambda: evaluate_after_ingest(alert_sessions, new_messages, conflicts),
                                      robust=True)
            if transaction.get_rollback():
                # A savepoint could not be rolled back (e.g. the connection was lost): the
                # block would end in a silent rollback, and stored-looking messages would be AA.
                raise RuntimeError("the batch's transaction is marked for rollback")
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
        p.message_id = None
        if transaction.get_rollback():  # the transaction is lost: nothing more can be stored
            done.append((p, False))
            continue
        try:
            with transaction.atomic():
                _insert([p])
            done.append((p, True))
        except IntegrityError:
            # Lost a race with another writer storing the same message: a repeat.
            ok = _already_stored(by_index[p.index])
            if not ok:
                log.exception("integrity error storing %s", p.control_id)
            done.append((p, ok))
        except Exception:  # noqa: BLE001 - rolled back to the savepoint, AE for this one
            log.exception("could not store message %s", p.control_id)
            done.append((p, False))
    return done


# Rows written by the hot path, in these column orders (plain multi-row SQL, values prepared by
# the model fields: lib/sql.py; the ORM's per-row cost was most of a message's, benchmarks/README.md).
MESSAGE_COLUMNS = ("sender", "control_id", "received_at", "raw", "bed", "patient_identifier")
OBS_COLUMNS = ("session", "patient", "kind", "loinc", "value", "unit", "observed_at", "source", "message",
               "raw_code", "raw_code_system", "raw_code_text", "raw_value", "raw_unit", "raw_value_type",
               "sub_id", "device_id", "unmapped", "flags", "created_at")
_SESSION, _PATIENT, _MESSAGE, _FLAGS = (OBS_COLUMNS.index(c) for c in ("session", "patient", "message", "flags"))
_MESSAGES = RowWriter(InboundMessage, MESSAGE_COLUMNS)
_OBSERVATIONS = RowWriter(Observation, OBS_COLUMNS)


def _insert(prepared: list[_Prepared]) -> None:
    """InboundMessage rows (one multi-row INSERT ... RETURNING id), all their Observation rows
    (one executemany) and one audit entry per message (``audit.record_many_ids``: one
    chain-head lock, one multi-row insert)."""
    ids = _MESSAGES.insert_returning_ids([p.message for p in prepared])
    rows = []
    entries = []
    for p, message_id in zip(prepared, ids, strict=True):
        p.message_id = message_id
        for obs in p.observations:
            obs[_MESSAGE] = message_id
            rows.append(obs)
        p.audit["object_id"] = message_id
        entries.append(p.audit)
    _OBSERVATIONS.insert_many(rows)
    audit_services.record_many_ids(entries)


def _stored_keys(keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (sender, control id) are already stored: one query for the batch, shaped as
    ``(sender = s AND control_id IN (...)) OR ...`` so that it is answered from the
    ``inbound_once (sender, control_id)`` index (a bare ``control_id IN`` reads the whole
    index). Only an early answer for repeats: the unique constraint stays the authority."""
    if not keys:
        return set()
    by_sender: dict[str, list[str]] = {}
    for sender, control_id in sorted(keys):
        by_sender.setdefault(sender, []).append(control_id)
    table, sender_col, control_col = sql.quote(InboundMessage, "sender", "control_id")
    terms, params = [], []
    for sender, controls in by_sender.items():
        terms.append(f"({sender_col} = %s AND {control_col} IN ({sql.placeholders(len(controls))}))")
        params += [sender, *controls]
    found = sql.fetch(f"SELECT {sender_col}, {control_col} FROM {table} WHERE {' OR '.join(terms)}",  # noqa: S608
                      params)
    return {(row[0], row[1]) for row in found}


KEY_LENGTH = 200  # InboundMessage.sender / control_id: what tells one message from a repeat


def _storable(msg: ParsedMessage, raw: bytes) -> ParsedMessage:
    """Refused (AE, nothing stored) what cannot be stored as it is, the same on every database:
    - a sender or MSH-10 longer than is stored: a shortened key could answer a new message as
      a repeat, AA and never stored;
    - NUL bytes: HL7 v2 text never contains them, and PostgreSQL text cannot hold them (the
      whole batch's commit failed)."""
    problem = None
    if len(msg.control_id) > KEY_LENGTH or len(f"{msg.sending_app}|{msg.sending_facility}") > KEY_LENGTH:
        problem = (f"MSH-10 or MSH-3/MSH-4 is longer than {KEY_LENGTH} characters: the message cannot be "
                   "told apart from another; send it with a shorter control id")
    elif b"\x00" in raw:
        problem = "the message contains NUL bytes (0x00), which HL7 text never does; nothing was stored"
    if problem:
        raise MessageRejected("AE", problem, msg.control_id[:KEY_LENGTH], error_code="102",
                              location=("MSH", 1, 10) if "MSH-10" in problem else None,
                              sending_app=msg.sending_app, sending_facility=msg.sending_facility,
                              version=msg.version)
    return msg


def _sender(msg: ParsedMessage) -> str:
    return f"{msg.sending_app}|{msg.sending_facility}"[:200]


def _already_stored(msg: ParsedMessage) -> bool:
    return InboundMessage.objects.filter(sender=_sender(msg), control_id=msg.control_id[:200]).exists()


@dataclass
class _Mapped:
    """A message with its observations mapped, before anything is known of whose it is."""

    index: int
    msg: ParsedMessage
    key: tuple[str, str]
    message: tuple[Any, ...]  # InboundMessage row in MESSAGE_COLUMNS order
    rows: list[list[Any]]  # Observation rows in OBS_COLUMNS order: session, patient, message unset
    row_flags: list[tuple[list[str], bool]]  # each row's flags so far, and whether stamped in the future
    msg_flags: set[str]
    kinds: set[str]
    unmapped: int


def _map(index: int, msg: ParsedMessage, raw: bytes, key: tuple[str, str], revision: Any,
         now: dt.datetime) -> _Mapped:
    sender, control_id = key
    message = (sender, control_id, now, raw.decode("utf-8", "replace"), (msg.bed or "")[:80],
               (msg.patient_id or "")[:80])
    code_map = codemap.code_map_for(codemap.source_of(msg.sending_app), revision)
    rows = []
    row_flags = []
    unmapped = 0
    kinds: set[str] = set()
    msg_flags: set[str] = set(msg.flags)
    for obs in msg.observations:
        mapped = map_observation(obs, code_map)
        flags: list[str] = [*obs.flags, *mapped.flags]
        observed_at = obs.observed_at or msg.sent_at or now
        future = observed_at > now + FUTURE_SKEW
        if future:
            msg_flags.add(FUTURE_TIMESTAMP)  # kept as sent; never allowed to hide later readings
        is_unmapped = "unmapped" in mapped.flags
        unmapped += is_unmapped
        if mapped.kind and mapped.value is not None:
            kinds.add(mapped.kind)
        # OBS_COLUMNS order; the Observation model's max lengths applied as before.
        rows.append([
            None, None, mapped.kind or "", (mapped.loinc or "")[:20], mapped.value,
            (mapped.ucum_unit or "")[:20], observed_at, Source.MONITOR.value, None,
            obs.code[:80], obs.code_system[:40], obs.code_text[:120], obs.raw_value[:200],
            (obs.units_code or obs.units_text)[:80], obs.value_type[:10], obs.sub_id[:40],
            (obs.device_id or "")[:120], is_unmapped, flags, now])
        row_flags.append((flags, future))
    return _Mapped(index, msg, key, message, rows, row_flags, msg_flags, kinds, unmapped)


def _prepare(m: _Mapped, lookups: Lookups) -> _Prepared:
    """The rows of a mapped message, tied to whose data it is (in the write transaction)."""
    msg = m.msg
    assignment = assign(msg, m.message[2], lookups)
    session_id = assignment.session.pk if assignment.session else None
    patient_id = assignment.patient_id
    for row, (flags, future) in zip(m.rows, m.row_flags, strict=True):
        row[_SESSION], row[_PATIENT] = session_id, patient_id
        # Stored in this order: the observation's, the mapping's, the assignment's, the clock's.
        row[_FLAGS] = [*flags, *assignment.flags, *([FUTURE_TIMESTAMP] if future else [])]
    sender, control_id = m.key
    audit_entry = {
        "action": "create", "actor": ACTOR, "patient": patient_id, "object_type": "monitoring.InboundMessage",
        "after": {
            "sender": sender, "control_id": control_id, "observations": len(m.rows), "unmapped": m.unmapped,
            "assigned": assignment.how, "session": session_id,
            "chair": assignment.chair_id, "bed": msg.bed or "",
            "flags": sorted({*m.msg_flags, *assignment.flags})}}
    conflict = assignment.conflict_session
    return _Prepared(m.index, m.message, control_id, m.rows, audit_entry, session_id, m.kinds,
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
    """Chairs, mapped devices, the sessions in progress and the patients a batch names, read
    once per batch with plain SQL (a clinic has tens of chairs, not thousands; the ORM's cost
    per query was a large part of a batch's) instead of queries per message. Always read in
    the batch's own transaction, never cached across batches: a check-in or a new device
    mapping applies to the next batch. Valid for one transaction only."""

    def __init__(self) -> None:
        self._chairs: dict[str, int] | None = None
        self._devices: dict[str, tuple[int, int | None]] | None = None
        self._on_chair: dict[int, SessionRef] | None = None
        self._of_patient: dict[int, list[SessionRef]] = {}
        self._patients: dict[str, int] | None = None
        self.seen_devices: set[int] = set()

    def load_patients(self, mrns: set[str]) -> None:
        """Read the patients named by a batch (PID-3) at once."""
        found: dict[str, int] = {}
        if mrns:
            table, pk, mrn = sql.quote(Patient, "id", "mrn")
            listed = sorted(mrns)
            found = {row[1]: row[0] for row in sql.fetch(
                f"SELECT {pk}, {mrn} FROM {table} WHERE {mrn} IN ({sql.placeholders(len(listed))})",  # noqa: S608
                listed)}
        self._patients = found

    def patient(self, mrn: str) -> int | None:
        if self._patients is None:
            self.load_patients({mrn})
        assert self._patients is not None
        return self._patients.get(mrn)

    def _load_sessions(self) -> None:
        table, pk, patient, chair, status, checked_in = sql.quote(
            TreatmentSession, "id", "patient", "chair", "status", "checked_in_at")
        rows = sql.fetch(f"SELECT {pk}, {patient}, {chair} FROM {table} "  # noqa: S608
                         f"WHERE {status} IN ({sql.placeholders(len(IN_CHAIR))}) ORDER BY {checked_in}, {pk}",
                         IN_CHAIR)
        on_chair: dict[int, SessionRef] = {}
        of_patient: dict[int, list[SessionRef]] = {}
        for session_id, patient_id, chair_id in rows:
            ref = SessionRef(session_id, patient_id, chair_id)
            if chair_id is not None:
                on_chair[chair_id] = ref  # latest check-in wins
            of_patient.setdefault(patient_id, []).append(ref)
        for refs in of_patient.values():
            refs.sort(key=lambda ref: ref.pk)
        # Set only once read: a failed read must not look like "no sessions" to later messages.
        self._on_chair, self._of_patient = on_chair, of_patient

    def sessions_of(self, patient_id: int) -> list[SessionRef]:
        if self._on_chair is None:
            self._load_sessions()
        return self._of_patient.get(patient_id, [])[:2]

    def chair_by_bed(self, bed: str) -> int | None:
        if self._chairs is None:
            table, pk, bed_code = sql.quote(Chair, "id", "bed_code")
            self._chairs = {row[1]: row[0] for row in sql.fetch(f"SELECT {pk}, {bed_code} FROM {table}")}  # noqa: S608
        return self._chairs.get(bed)

    def devices(self, candidates: set[str]) -> list[tuple[int, int | None]]:
        """(device id, chair id) of the mapped devices among ``candidates``."""
        if self._devices is None:
            table, pk, identifier, chair = sql.quote(Device, "id", "identifier", "chair")
            self._devices = {row[1]: (row[0], row[2]) for row in sql.fetch(
                f"SELECT {pk}, {identifier}, {chair} FROM {table}")}  # noqa: S608
        return [self._devices[c] for c in sorted(candidates) if c in self._devices]

    def session_on(self, chair_id: int) -> SessionRef | None:
        if self._on_chair is None:
            self._load_sessions()
        assert self._on_chair is not None
        return self._on_chair.get(chair_id)

    def finish(self, now: dt.datetime) -> None:
        if self.seen_devices:
            ids = sorted(self.seen_devices)
            table, pk, last_seen = sql.quote(Device, "id", "last_seen_at")
            field = Device._meta.get_field("last_seen_at")
            with connection.cursor() as cursor:
                cursor.execute(f"UPDATE {table} SET {last_seen} = %s "  # noqa: S608
                               f"WHERE {pk} IN ({sql.placeholders(len(ids))})",
                               [field.get_db_prep_save(now, connection), *ids])


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
        result.chair_id = lookups.chair_by_bed(msg.bed[:80])
    devices = lookups.devices(_device_candidates(msg))
    result.devices = [device_id for device_id, _chair in devices]
    if result.chair_id is None:
        result.chair_id = next((chair for _d, chair in devices if chair is not None), None)
    named = lookups.patient(msg.patient_id[:32]) if msg.patient_id else None
    if result.chair_id is not None:
        session = lookups.session_on(result.chair_id)
        if session is not None:
            if named is not None and named != session.patient_id:
                result.flags.append("patient_mismatch")
                result.conflict_session = session
            else:
                result.session, result.patient_id, result.how = session, session.patient_id, "session"
                return result
    if named is not None:
        result.patient_id, result.how = named, "patient"
        in_progress = lookups.sessions_of(named)
        if len(in_progress) == 1 and "patient_mismatch" not in result.flags:
            result.session, result.how = in_progress[0], "session"
        elif len(in_progress) > 1:
            result.flags.append("several_sessions_in_progress")
        elif not in_progress:
            result.flags.append("no_session_in_progress")
    return result
