"""`lib.sql.RowWriter`: a row written with plain SQL is the row the ORM writes, column by column
(as the database stores it), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, models

from ketasafe.audit.models import AuditEntry
from ketasafe.lib.sql import RowWriter
from ketasafe.monitoring.models import InboundMessage, Observation

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 1, 10, 15, 30, 123456, tzinfo=dt.UTC)
LOCAL = dt.datetime(2026, 3, 1, 11, 15, 30, 123456, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def stored(model: type[models.Model], pk: int, columns: list[str]) -> tuple[Any, ...]:
    """The row exactly as the database returns it, without the ORM's conversions."""
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        return tuple(cursor.fetchone())


def message(control_id: str) -> InboundMessage:
    return InboundMessage.objects.create(sender="S|F", control_id=control_id, received_at=AT, raw="MSH|...")


OBS = {"kind": "systolic", "loinc": "8480-6", "value": Decimal("132.5"), "unit": "mm[Hg]", "observed_at": LOCAL,
       "source": "monitor", "raw_code": "150021", "raw_code_system": "MDC", "raw_code_text": "MDC_PRESS_BLD_NONINV_SYS",
       "raw_value": "132.5", "raw_unit": "266016", "raw_value_type": "NM", "sub_id": "1.0.1.1",
       "device_id": "0012A3FFFE000001", "unmapped": True, "flags": ["unit_assumed", "future_timestamp"],
       "created_at": AT}


def test_an_observation_written_with_plain_sql_is_stored_as_the_orm_stores_it() -> None:
    columns = [*OBS, "message"]
    by_orm = Observation(**OBS, message=message("A"))
    by_orm.save()
    Observation.objects.filter(pk=by_orm.pk).update(created_at=AT)  # auto_now_add overrode it
    writer = RowWriter(Observation, columns)
    writer.insert_many([[*OBS.values(), message("B").pk]])
    plain = Observation.objects.exclude(pk=by_orm.pk).get()
    compared = [c for c in columns if c != "message"]
    assert stored(Observation, plain.pk, compared) == stored(Observation, by_orm.pk, compared)
    assert plain.value == Decimal("132.5") and plain.flags == ["unit_assumed", "future_timestamp"]
    assert plain.observed_at == AT


def test_empty_and_null_values_are_stored_as_the_orm_stores_them() -> None:
    values = {**OBS, "value": None, "flags": [], "unmapped": False, "kind": "", "unit": ""}
    by_orm = Observation(**values)
    by_orm.save()
    Observation.objects.filter(pk=by_orm.pk).update(created_at=AT)
    RowWriter(Observation, list(values)).insert_many([list(values.values())])
    plain = Observation.objects.exclude(pk=by_orm.pk).get()
    assert stored(Observation, plain.pk, list(values)) == stored(Observation, by_orm.pk, list(values))


def test_audit_rows_with_addresses_are_stored_as_the_orm_stores_them() -> None:
    row = {"at": AT, "actor": "user:nurse", "action": "view", "object_type": "patients.Patient", "object_id": "7",
           "changes": '{"after":{"a":1}}', "detail": "d", "client_address": "2001:db8::1", "prev_hash": "0" * 64}
    by_orm = AuditEntry(**row, hash="a" * 64)
    by_orm.save()
    columns = [*row, "hash"]
    (plain_id,) = RowWriter(AuditEntry, columns).insert_returning_ids([[*row.values(), "b" * 64]])
    compared = [c for c in columns if c != "hash"]
    assert stored(AuditEntry, plain_id, compared) == stored(AuditEntry, by_orm.pk, compared)


def test_ids_come_back_in_row_order_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    writer = RowWriter(InboundMessage, ["sender", "control_id", "received_at", "raw", "bed", "patient_identifier"])
    monkeypatch.setattr(connection.ops, "bulk_batch_size", lambda fields, objs: 3)
    ids = writer.insert_returning_ids([["S", f"C{i}", AT, "raw", "", ""] for i in range(8)])
    assert len(ids) == 8
    assert [InboundMessage.objects.get(pk=i).control_id for i in ids] == [f"C{i}" for i in range(8)]


def test_nothing_to_insert_runs_no_query(django_assert_num_queries: Any) -> None:
    writer = RowWriter(InboundMessage, ["sender", "control_id", "received_at", "raw"])
    with django_assert_num_queries(0):
        assert writer.insert_returning_ids([]) == []
        writer.insert_many([])


def test_values_equal_in_python_but_not_in_the_database_are_not_confused_within_one_call() -> None:
    # The per-call memo of prepared values must not store [True] or [1.0] as [1].
    flags = [[1], [True], [1.0], ["a"], [], [1]]
    rows = [[*{**OBS, "flags": f}.values()] for f in flags]
    RowWriter(Observation, list(OBS)).insert_many(rows)
    assert [o.flags for o in Observation.objects.order_by("id")] == flags
    assert [type(o.flags[0]) for o in Observation.objects.order_by("id") if o.flags] == [int, bool, float, str, int]
