"""The code map as the clinic edited it: database rows -> the pure ``hl7.codes`` map, cached.

Contract: ``code_map_for(source)`` returns the clinic-wide rows overlaid with the rows of that
source (the first component of MSH-3). The cache is per process (the listener and the web app
are separate processes), so it is checked against the table's (row count, newest update) once
per call of ``current_revision`` — one small aggregate query per ingest batch — and rebuilt when
an admin has edited a row anywhere. ``do_save_code_map_entry`` is the one write path.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Max
from django.http import HttpRequest

from ketasafe import audit

from .hl7 import codes
from .models import CodeMapEntry

_lock = threading.Lock()
_cache: dict[str, Any] = {"revision": None, "rows": [], "maps": {}}


def source_of(sending_app: str) -> str:
    """The code-map source of a sender: MSH-3 namespace id (first component), e.g. ``AcmeInc``."""
    return sending_app.split("^", 1)[0].strip()


def ensure_seeded() -> int:
    """Fill an empty table from the shipped ``DEFAULT_CODE_MAP``. Returns rows created (0 if the
    table already had rows: an admin's edits are never overwritten)."""
    if CodeMapEntry.objects.exists():
        return 0
    rows = []
    for (system, code), entry in codes.DEFAULT_CODE_MAP.items():
        low, high = entry.plausible or (None, None)
        rows.append(CodeMapEntry(
            source="", system=system, code=code, loinc=entry.loinc, display=entry.display,
            ucum_unit=entry.ucum_unit, kind=entry.kind or "", extra_loinc=",".join(entry.extra_loinc),
            assume_unit_if_missing=entry.assume_unit_if_missing, plausible_low=low, plausible_high=high,
            reference=entry.source[:2000]))
    CodeMapEntry.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _entry(row: CodeMapEntry) -> codes.CodeMapEntry:
    plausible = None
    if row.plausible_low is not None and row.plausible_high is not None:
        plausible = (Decimal(row.plausible_low), Decimal(row.plausible_high))
    return codes.CodeMapEntry(
        loinc=row.loinc, display=row.display, ucum_unit=row.ucum_unit,
        kind=row.kind or None,  # type: ignore[arg-type]
        source=row.reference or "clinic code map",
        extra_loinc=tuple(x.strip() for x in row.extra_loinc.split(",") if x.strip()),
        assume_unit_if_missing=row.assume_unit_if_missing, plausible=plausible)


def current_revision() -> tuple[int, Any]:
    agg = CodeMapEntry.objects.aggregate(n=Count("id"), last=Max("updated_at"))
    return (agg["n"], agg["last"])


def code_map_for(source: str, revision: tuple[int, Any] | None = None) -> codes.CodeMap:
    """The effective map for one sender. Pass ``revision`` (from ``current_revision``) to reuse
    one check for a whole batch; without it the table is checked now."""
    revision = revision if revision is not None else current_revision()
    with _lock:
        if _cache["revision"] != revision:
            if revision[0] == 0:
                rows: list[CodeMapEntry] = []
            else:
                rows = list(CodeMapEntry.objects.all())
            _cache.update(revision=revision, rows=rows, maps={})
        maps: dict[str, codes.CodeMap] = _cache["maps"]
        found = maps.get(source)
        if found is None:
            rows = _cache["rows"]
            if not rows:
                # An empty table (a new database before seeding): the shipped map.
                found = codes.DEFAULT_CODE_MAP
            else:
                merged: dict[tuple[str, str], codes.CodeMapEntry | None] = {}
                layers = ("", source) if source else ("",)
                for layer in layers:  # the sender's own rows override the clinic-wide ones
                    for row in rows:
                        if row.source == layer:
                            merged[codes.code_key(row.system, row.code)] = _entry(row) if row.active else None
                found = {key: entry for key, entry in merged.items() if entry is not None}
            maps[source] = found
        return found


def invalidate() -> None:
    with _lock:
        _cache.update(revision=None, rows=[], maps={})


@transaction.atomic
def do_save_code_map_entry(*, actor: Any, values: dict[str, Any], instance: CodeMapEntry | None = None,
                           request: HttpRequest | None = None) -> CodeMapEntry:
    """Create or change one code-map row, audited. Other processes see it at their next batch."""
    before = None
    if instance is None:
        instance = CodeMapEntry()
    else:
        before = {f: getattr(instance, f) for f in values}
    for name, value in values.items():
        setattr(instance, name, value)
    instance.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    instance.full_clean()
    instance.save()
    audit.record("update" if before else "create", actor=actor, request=request, obj=instance,
                 before=before, after=values, detail="code map entry")
    transaction.on_commit(invalidate)
    return instance
