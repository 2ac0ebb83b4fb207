"""`record`: the only writer of the audit log.

Call it inside the same `transaction.atomic()` block as the change it records: if the change
rolls back, so does its entry, and an entry never exists for a change that did not happen.

Lock order (PostgreSQL): the first entry of a transaction locks the chain head until commit, so
every writer is serialised from its first entry on. A service therefore takes the row locks it
needs *before* its first entry, and takes them FOR NO KEY UPDATE (``select_for_update(
no_key=True)``, with ``of=("self",)`` beside ``select_related``): foreign keys are checked at
commit with a KEY SHARE lock on the referenced row, which a plain FOR UPDATE would block while
its holder waits for the chain head (a deadlock; tests in sessions/screening
``test_concurrent_*``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils.ipv6 import clean_ipv6_address

from ketasafe.lib import sql
from ketasafe.lib.sql import RowWriter

from . import chain
from .exceptions import AuditChainHeadMissing
from .models import Action, AuditEntry, ChainHead, NewEntry

Actor = AbstractBaseUser | AnonymousUser | str | None


_PLAIN = frozenset({str, int, bool, float, type(None)})


def _jsonable(value: Any) -> Any:
    if type(value) in _PLAIN:  # most values: checked first, the hot path writes many entries
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _client_address(request: HttpRequest | None) -> str | None:
    """REMOTE_ADDR in the form GenericIPAddressField stores it (so the hashed value is the stored
    value): zone index dropped, IPv6 compressed and lower-cased; None if it is not an address."""
    if request is None:
        return None
    raw = request.META.get("REMOTE_ADDR") or ""
    try:
        address = ipaddress.ip_address(raw.split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return clean_ipv6_address(str(address))  # exactly what GenericIPAddressField stores
    return str(address)


def _actor(actor: Actor, request: HttpRequest | None) -> tuple[Any, str]:
    if actor is None and request is not None:
        actor = getattr(request, "user", None)
    if isinstance(actor, str):
        return None, actor if ":" in actor else f"system:{actor}"
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor, f"user:{actor.get_username()}"
    return None, "anonymous"


def _build(
    action: Action | str,
    *,
    actor: Actor = None,
    request: HttpRequest | None = None,
    patient: Any = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: str = "",
    at: dt.datetime | None = None,
) -> NewEntry:
    """An unchained entry (``prev_hash``/``hash`` are computed under the head lock)."""
    from django.utils import timezone

    user, actor_label = _actor(actor, request)
    if obj is not None:
        object_type = object_type or obj._meta.label
        object_id = object_id or obj.pk
    changes: dict[str, Any] = {}
    if before:
        changes["before"] = _jsonable(before)
    if after:
        changes["after"] = _jsonable(after)
    return NewEntry(
        at=(at or timezone.now()).astimezone(dt.UTC),
        actor_user_id=user.pk if user is not None else None,
        actor=actor_label[:150],
        action=str(action),
        patient_id=getattr(patient, "pk", patient),
        object_type=object_type[:80],
        object_id=str(object_id)[:64],
        changes=chain.canonical(changes).decode() if changes else "",
        detail=detail[:500],
        client_address=_client_address(request),
    )


def _lock_head() -> ChainHead:
    """The chain head, row-locked until the caller's transaction ends (created if missing).

    Created only for an empty log: a missing head with entries present means the head was
    removed behind the ORM, and starting again from genesis would hide that.
    """
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    if AuditEntry.objects.exists():
        # A concurrent first writer may have created the head and its entries and committed
        # since we looked (READ COMMITTED): look again before calling the head missing.
        head = ChainHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            raise AuditChainHeadMissing(
                "the audit chain head is missing but audit entries exist: refusing to restart the "
                "chain from genesis (run `ketasafe audit_verify` and restore the head from a backup)")
        return head
    # No entries (a new or flushed database). A racing first writer may create the head at the
    # same time: get_or_create returns theirs (it waits for their commit on PostgreSQL).
    ChainHead.objects.get_or_create(pk=1, defaults={"last_entry_id": None, "last_hash": chain.GENESIS_HASH})
    return ChainHead.objects.select_for_update().get(pk=1)


def record(
    action: Action | str,
    *,
    actor: Actor = None,
    request: HttpRequest | None = None,
    patient: Any = None,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: str = "",
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Append one entry to the chain. Guarantees: hash-linked to the previous entry, serialised
    against concurrent writers by the chain-head row lock, committed or rolled back with the
    caller's transaction."""
    entry = _build(action, actor=actor, request=request, patient=patient, obj=obj,
                   object_type=object_type, object_id=object_id, before=before, after=after,
                   detail=detail, at=at)
    return _stored([entry], _append([entry]))[0]


def record_many_ids(entries: Sequence[Mapping[str, Any]]) -> list[int]:
    """Append several entries at once (monitor ingest); each item holds the keyword arguments of
    ``record`` (``action`` included). Same guarantees as calling ``record`` for each in order (the
    same content and hashes, a chain that ``ketasafe audit_verify`` verifies), at the cost of one
    head lock, one multi-row insert and one head update: the chain is computed in memory under
    the lock. Returns the new ids (no model instances are built)."""
    return [entry_id for entry_id, _prev, _hash in _append([_build(**dict(item)) for item in entries])]


def _stored(built: list[NewEntry], chained: list[tuple[int, str, str]]) -> list[AuditEntry]:
    return [AuditEntry(id=entry_id, at=e.at, actor_user_id=e.actor_user_id, actor=e.actor, action=e.action,
                       patient_id=e.patient_id, object_type=e.object_type, object_id=e.object_id,
                       changes=e.changes, detail=e.detail, client_address=e.client_address,
                       prev_hash=prev, hash=entry_hash)
            for e, (entry_id, prev, entry_hash) in zip(built, chained, strict=True)]


_ROWS = RowWriter(AuditEntry, ("at", "actor_user", "actor", "action", "patient", "object_type", "object_id",
                               "changes", "detail", "client_address", "prev_hash", "hash"))


def _head() -> tuple[int | None, str]:
    """(last entry id, last hash), row-locked where the database has row locks (SQLite
    serialises writers with its database lock). Plain SQL: it is read once per transaction
    that writes to the log, and the ORM query cost more than the rest of a small append."""
    table, pk, last_id, last_hash = sql.quote(ChainHead, "id", "last_entry_id", "last_hash")
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    rows = sql.fetch(f"SELECT {last_id}, {last_hash} FROM {table} WHERE {pk} = 1{lock}")  # noqa: S608
    if rows:
        return rows[0][0], rows[0][1]
    head = _lock_head()  # missing: created for an empty log, refused otherwise
    return head.last_entry_id, head.last_hash


def _append(built: list[NewEntry]) -> list[tuple[int, str, str]]:
    """Chain ``built`` onto the log under the head lock and insert them; (id, prev_hash, hash)
    of each, in order."""
    if not built:
        return []
    with transaction.atomic():
        _last_id, prev = _head()
        rows = []
        hashes = []
        for entry in built:
            entry_hash = chain.entry_hash(prev, entry.hashed_content())
            hashes.append((prev, entry_hash))
            rows.append((entry.at, entry.actor_user_id, entry.actor, entry.action, entry.patient_id,
                         entry.object_type, entry.object_id, entry.changes, entry.detail, entry.client_address,
                         prev, entry_hash))
            prev = entry_hash
        ids = _ROWS.insert_returning_ids(rows)
        # The chain is verified in id order: the ids must follow the chain's order.
        if any(b <= a for a, b in zip(ids, ids[1:], strict=False)):
            raise RuntimeError("audit entries were not numbered in insertion order")
        table, pk, last_id, last_hash = sql.quote(ChainHead, "id", "last_entry_id", "last_hash")
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET {last_id} = %s, {last_hash} = %s WHERE {pk} = 1",  # noqa: S608
                           [ids[-1], prev])
    return [(entry_id, p, h) for entry_id, (p, h) in zip(ids, hashes, strict=True)]


def verify_chain() -> chain.ChainBreak | None:
    head = ChainHead.objects.filter(pk=1).first()
    entries = (
        chain.ChainEntry(e.pk, e.prev_hash, e.hash, e.hashed_content())
        for e in AuditEntry.objects.order_by("id").iterator(chunk_size=2000)
    )
    return chain.verify(
        entries,
        head_id=head.last_entry_id if head else None,
        head_hash=head.last_hash if head else chain.GENESIS_HASH,
    )
