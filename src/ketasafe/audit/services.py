"""`record`: the only writer of the audit log.

Call it inside the same `transaction.atomic()` block as the change it records: if the change
rolls back, so does its entry, and an entry never exists for a change that did not happen.
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

from . import chain
from .exceptions import AuditChainHeadMissing
from .models import Action, AuditEntry, ChainHead

Actor = AbstractBaseUser | AnonymousUser | str | None


def _jsonable(value: Any) -> Any:
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
) -> AuditEntry:
    """An unsaved, unchained entry (``prev_hash``/``hash`` are set by the caller under the lock)."""
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
    return AuditEntry(
        at=(at or timezone.now()).astimezone(dt.UTC),
        actor_user=user,
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
    if head is None and AuditEntry.objects.exists():
        # A concurrent first writer may have created the head and its entries and committed
        # since we looked (READ COMMITTED): look again before calling the head missing.
        head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None and AuditEntry.objects.exists():
        raise AuditChainHeadMissing(
            "the audit chain head is missing but audit entries exist: refusing to restart the "
            "chain from genesis (run `ketasafe audit_verify` and restore the head from a backup)")
    if head is None:  # a new (or flushed) database; get_or_create is safe against a race
        ChainHead.objects.get_or_create(pk=1, defaults={"last_entry_id": None,
                                                        "last_hash": chain.GENESIS_HASH})
        head = ChainHead.objects.select_for_update().get(pk=1)
    return head


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
    return _append([entry])[0]


def record_many(entries: Sequence[Mapping[str, Any]]) -> list[AuditEntry]:
    """Append several entries at once; each item holds the keyword arguments of ``record``
    (``action`` included). Same guarantees as calling ``record`` for each in order (the same
    content and hashes, a chain that ``ketasafe audit_verify`` verifies), at the cost of one
    head lock, one multi-row insert and one head update: the chain is computed in memory under
    the lock. For hot paths that write many entries in one transaction (monitor ingest)."""
    return _append([_build(**dict(item)) for item in entries])


def _append(built: list[AuditEntry]) -> list[AuditEntry]:
    """Chain ``built`` (unsaved entries) onto the log under the head lock and insert them."""
    if not built:
        return []
    with transaction.atomic():
        head = _lock_head()
        prev = head.last_hash
        for entry in built:
            entry.prev_hash = prev
            entry.hash = prev = chain.entry_hash(prev, entry.hashed_content())
        if connection.features.can_return_rows_from_bulk_insert:
            AuditEntry.objects.bulk_create(built)
            ids = [entry.pk for entry in built]
            # The chain is verified in id order: the ids must follow the chain's order.
            if any(b <= a for a, b in zip(ids, ids[1:], strict=False)):
                raise RuntimeError("audit entries were not numbered in insertion order")
        else:  # pragma: no cover - SQLite < 3.35; one INSERT each, still one lock
            for entry in built:
                entry.save()
        ChainHead.objects.filter(pk=1).update(last_entry_id=built[-1].pk, last_hash=prev)
    return built


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
