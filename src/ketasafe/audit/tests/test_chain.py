"""The hash chain logic itself, without a database."""

import json

from hypothesis import given
from hypothesis import strategies as st

from ketasafe.audit import chain
from ketasafe.audit.chain import GENESIS_HASH, ChainEntry, entry_hash, verify


def build(contents: list[dict[str, object]]) -> list[ChainEntry]:
    entries, prev = [], GENESIS_HASH
    for i, content in enumerate(contents, start=1):
        h = entry_hash(prev, content)
        entries.append(ChainEntry(i, prev, h, content))
        prev = h
    return entries


def test_intact_chain_verifies() -> None:
    entries = build([{"a": 1}, {"a": 2}, {"a": 3}])
    assert verify(entries, head_id=3, head_hash=entries[-1].hash) is None


def test_empty_chain_verifies() -> None:
    assert verify([], head_id=None, head_hash=GENESIS_HASH) is None


def test_edited_content_names_that_entry() -> None:
    entries = build([{"a": 1}, {"a": 2}, {"a": 3}])
    entries[1] = ChainEntry(2, entries[1].prev_hash, entries[1].hash, {"a": 99})
    broken = verify(entries, head_id=3, head_hash=entries[-1].hash)
    assert broken is not None and broken.entry_id == 2


def test_deleted_middle_entry_names_the_next_one() -> None:
    entries = build([{"a": 1}, {"a": 2}, {"a": 3}])
    broken = verify([entries[0], entries[2]], head_id=3, head_hash=entries[-1].hash)
    assert broken is not None and broken.entry_id == 3


def test_deleted_newest_entry_is_caught_by_the_head() -> None:
    entries = build([{"a": 1}, {"a": 2}, {"a": 3}])
    broken = verify(entries[:2], head_id=3, head_hash=entries[-1].hash)
    assert broken is not None and broken.entry_id == 3


def test_rehashed_edit_still_breaks_the_next_link() -> None:
    entries = build([{"a": 1}, {"a": 2}, {"a": 3}])
    forged = ChainEntry(2, entries[1].prev_hash, entry_hash(entries[1].prev_hash, {"a": 99}), {"a": 99})
    broken = verify([entries[0], forged, entries[2]], head_id=3, head_hash=entries[-1].hash)
    assert broken is not None and broken.entry_id == 3


def test_key_order_does_not_change_the_hash() -> None:
    assert entry_hash(GENESIS_HASH, {"a": 1, "b": 2}) == entry_hash(GENESIS_HASH, {"b": 2, "a": 1})


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@given(st.dictionaries(st.text(max_size=10), _json, max_size=6))
def test_canonical_bytes_are_json_dumps_sorted_compact_utf8(content: dict[str, object]) -> None:
    # The stored hashes were computed with json.dumps; the shared encoder must give the same bytes.
    expected = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert chain.canonical(content) == expected
