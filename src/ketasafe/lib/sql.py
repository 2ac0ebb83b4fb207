"""Plain multi-row SQL for the few hot paths where the ORM's per-row cost was measured to
dominate (the MLLP ingest: benchmarks/README.md). Not a second ORM:

- table and column names come from the model's ``_meta`` (quoted by the backend), values are
  always parameters;
- every value whose stored form differs from the Python value (datetimes, decimals, JSON, IP
  addresses) goes through its model field's own ``get_db_prep_save``, so a row stored here is
  the row the ORM would store (tests compare them column by column);
- it runs on Django's connection, inside the caller's ``transaction.atomic()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models

# Fields whose database value is not the Python value as it is; the others (text, integers,
# booleans, foreign-key ids) are passed through unchanged, which is all the ORM does with them.
_PREPARED_TYPES = frozenset({
    "DateTimeField", "DateField", "TimeField", "DecimalField", "JSONField", "GenericIPAddressField",
    "UUIDField", "DurationField"})


class RowWriter:
    """Inserts rows of one model given as value sequences in ``columns`` order (field names;
    a foreign key by its field name, e.g. ``"patient"``, with the id as value)."""

    def __init__(self, model: type[models.Model], columns: Sequence[str]) -> None:
        self.model = model
        self.columns = tuple(columns)
        self.fields: list[models.Field[Any, Any]] = [
            model._meta.get_field(name) for name in self.columns]  # type: ignore[misc]
        self.prepared = tuple(i for i, f in enumerate(self.fields) if f.get_internal_type() in _PREPARED_TYPES)
        self._sql: dict[str, tuple[str, str, str]] = {}

    def _statements(self) -> tuple[str, str, str]:
        """(INSERT ... VALUES prefix, one row's placeholders, RETURNING suffix) for this backend."""
        vendor = connection.vendor
        found = self._sql.get(vendor)
        if found is None:
            quote = connection.ops.quote_name
            columns = ", ".join(quote(f.column or "") for f in self.fields)
            pk = quote(self.model._meta.pk.column or "id") if self.model._meta.pk else "id"
            found = (f"INSERT INTO {quote(self.model._meta.db_table)} ({columns}) VALUES ",  # noqa: S608
                     "(" + ", ".join(["%s"] * len(self.fields)) + ")",
                     f" RETURNING {pk}")
            self._sql[vendor] = found
        return found

    def prepare(self, rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
        """Rows as the database stores them. Prepared values are memoised per call: a batch
        repeats the same timestamps, flags and values many times."""
        fields, prepared = self.fields, self.prepared
        memos: list[dict[Any, Any]] = [{} for _ in fields]
        out = []
        for row in rows:
            values = list(row)
            for col in prepared:
                value = values[col]
                if value is None:
                    continue
                # The type is part of the key: 1, True and 1.0 are equal in Python but not in JSON.
                kind = type(value)
                key = (kind, tuple(value), tuple(map(type, value))) if kind is list else (kind, value)
                memo = memos[col]
                try:
                    values[col] = memo[key]
                except KeyError:
                    values[col] = memo[key] = fields[col].get_db_prep_save(value, connection)
                except TypeError:  # unhashable (a dict, a nested list for JSON): not memoised
                    values[col] = fields[col].get_db_prep_save(value, connection)
            out.append(values)
        return out

    def insert_returning_ids(self, rows: Sequence[Sequence[Any]]) -> list[int]:
        """One ``INSERT ... VALUES (...), (...) RETURNING id`` per chunk; the new ids in row
        order (as ``bulk_create`` relies on; callers that depend on it check it)."""
        if not rows:
            return []
        head, one, returning = self._statements()
        size = max(1, connection.ops.bulk_batch_size(self.fields, rows))
        ids: list[int] = []
        prepared = self.prepare(rows)
        with connection.cursor() as cursor:
            for start in range(0, len(prepared), size):
                chunk = prepared[start:start + size]
                cursor.execute(head + ", ".join([one] * len(chunk)) + returning,
                               [value for row in chunk for value in row])
                ids.extend(row[0] for row in cursor.fetchall())
        if len(ids) != len(rows):  # pragma: no cover - a backend without RETURNING
            raise RuntimeError(f"{self.model._meta.label}: {len(rows)} rows inserted, {len(ids)} ids returned")
        return ids

    def insert_many(self, rows: Sequence[Sequence[Any]]) -> None:
        """All rows with one ``executemany`` (no ids needed)."""
        if not rows:
            return
        head, one, _returning = self._statements()
        with connection.cursor() as cursor:
            cursor.executemany(head + one, self.prepare(rows))


def fetch(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a plain query (names quoted by the caller with ``quote``)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def quote(model: type[models.Model], *names: str) -> tuple[str, ...]:
    """The quoted table name followed by the quoted columns of ``names`` (field names)."""
    q = connection.ops.quote_name
    meta = model._meta
    return (q(meta.db_table), *(q(meta.get_field(n).column or "") for n in names))  # type: ignore[union-attr]


def placeholders(n: int) -> str:
    return ", ".join(["%s"] * n)
