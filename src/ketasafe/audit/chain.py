"""The audit hash chain (compliance B.4), pure: no Django.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's own canonical
content. Editing any field of any entry, deleting an entry or reordering entries changes a
hash that a later entry (or the chain head) vouches for, so `verify` finds the first bad entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

GENESIS_HASH = "0" * 64


# json.dumps with these options builds this encoder on every call; one instance, same bytes.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(content: Mapping[str, object]) -> bytes:
    """Sorted keys, no spaces, UTF-8: one byte string per content, whatever the database did."""
    return _ENCODER.encode(content).encode()


def entry_hash(prev_hash: str, content: Mapping[str, object]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(content)).hexdigest()


@dataclass(frozen=True)
class ChainEntry:
    id: int
    prev_hash: str
    hash: str
    content: Mapping[str, object]


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    reason: str


def verify(entries: Iterable[ChainEntry], *, head_id: int | None, head_hash: str) -> ChainBreak | None:
    """Return the first break in entries (ordered by id), or None when the chain is intact.

    head_id/head_hash are what the chain head row says the last entry is; they catch the
    deletion of the newest entries, which no later entry could vouch for.
    """
    expected_prev = GENESIS_HASH
    last_id: int | None = None
    for entry in entries:
        if entry.prev_hash != expected_prev:
            return ChainBreak(entry.id, "its previous-hash does not match the entry before it "
                              "(an entry before it was changed or deleted)")
        if entry_hash(entry.prev_hash, entry.content) != entry.hash:
            return ChainBreak(entry.id, "its content does not match its hash (the entry was edited)")
        expected_prev = entry.hash
        last_id = entry.id
    if last_id != head_id or expected_prev != head_hash:
        missing_after = last_id if last_id is not None else 0
        return ChainBreak(head_id or 0, f"the chain head names entry {head_id} but the log ends at "
                          f"entry {missing_after} (newest entries deleted or changed)")
    return None
