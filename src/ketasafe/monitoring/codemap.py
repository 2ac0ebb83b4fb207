"""The code map as the clinic edited it: database rows -> the pure ``hl7.codes`` map, cached.

Contract: ``code_map_for(source)`` returns the clinic-wide rows overlaid with the rows of that
source (the first component of MSH-3). The cache is per process (the listener and the web app
are separate processes), so it is checked against the table's (row count, newest update) once
per call of ``current_revision`` — one small aggregate query per ingest batch — and rebuilt when
an admin has edited a row anywhere. ``do_save_code_map_entry`` is the one write path.
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from ketasafe import audit
from ketasafe.lib import sql

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
    """(rows, newest update) of the table: changes whenever an admin edits, adds or removes a
    row. Plain SQL: it runs once per ingest batch (the ORM aggregate cost ~10x more). Only ever
    compared with itself (the newest update as the driver returns it)."""
    table, pk, updated = sql.quote(CodeMapEntry, "id", "updated_at")
    count, last = sql.fetch(f"SELECT COUNT({pk}), MAX({updated}) FROM {table}")[0]  # noqa: S608
    return (count, last)


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


# The unit each kind is stored in: alert thresholds and charts assume these (hl7.codes converts
# [degF] and [lb_av] to them). A code-map row names the unit values are converted *to*.
KIND_UNITS: dict[str, str] = {
    "systolic": "mm[Hg]", "diastolic": "mm[Hg]", "map": "mm[Hg]", "heart_rate": "/min", "pulse_rate": "/min",
    "resp_rate": "/min", "spo2": "%", "temperature": "Cel", "weight": "kg"}
# The shipped transmission sanity range of each kind (hl7.codes): the widest of its codes.
def _shipped_plausible() -> dict[str, tuple[Decimal, Decimal]]:
    ranges: dict[str, tuple[Decimal, Decimal]] = {}
    for entry in codes.DEFAULT_CODE_MAP.values():
        if entry.kind and entry.plausible:
            low, high = ranges.get(entry.kind, entry.plausible)
            ranges[entry.kind] = (min(low, entry.plausible[0]), max(high, entry.plausible[1]))
    return ranges


SHIPPED_PLAUSIBLE = _shipped_plausible()
KNOWN_UNITS = frozenset({*codes.UNIT_CODES.values(), *(t for _f, t in codes.CONVERSIONS), *KIND_UNITS.values()})
_LOINC = re.compile(r"^([0-9]{1,7})-([0-9])$")


def loinc_is_valid(code: str) -> bool:
    """A LOINC code: digits, a hyphen and the check digit of LOINC's mod 10 algorithm (the
    digits in odd positions from the right doubled, the digits of the products summed with
    the other digits; the check digit brings the sum to a multiple of ten)."""
    match = _LOINC.match(code.strip())
    if not match:
        return False
    total = 0
    for position, char in enumerate(reversed(match.group(1)), start=1):
        digit = int(char)
        if position % 2:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10 == int(match.group(2))


def entry_errors(values: dict[str, Any]) -> dict[str, str]:
    """What is wrong with a code-map row (field -> message); empty if nothing. A typo here
    silently stops a vital from alerting, so the LOINC code, the unit and the plausible range
    are checked before anything is saved."""
    errors: dict[str, str] = {}
    loinc = (values.get("loinc") or "").strip()
    if not loinc_is_valid(loinc):
        errors["loinc"] = f"{loinc or 'empty'} is not a LOINC code (digits, '-', check digit; e.g. 8480-6)."
    extra = [x.strip() for x in (values.get("extra_loinc") or "").split(",") if x.strip()]
    bad = [x for x in extra if not loinc_is_valid(x)]
    if bad:
        errors["extra_loinc"] = f"Not LOINC codes: {', '.join(bad)}."
    unit = (values.get("ucum_unit") or "").strip()
    kind = values.get("kind") or ""
    if unit and unit not in KNOWN_UNITS:
        errors["ucum_unit"] = (f"{unit} is not a UCUM unit KetaSafe converts (one of "
                               f"{', '.join(sorted(KNOWN_UNITS))}; e.g. mm[Hg], not mmHg).")
    elif kind and unit != KIND_UNITS.get(kind, unit):
        errors["ucum_unit"] = f"A {kind} value is stored in {KIND_UNITS[kind]}, not {unit or 'no unit'}."
    if kind:
        low, high = values.get("plausible_low"), values.get("plausible_high")
        if low is None or high is None:
            errors["plausible_low"] = "A vital sign needs a plausible range (low and high)."
        elif Decimal(low) >= Decimal(high):
            errors["plausible_low"] = "Must be below the plausible high."
        elif kind in SHIPPED_PLAUSIBLE:
            # A reading outside the range is stored without a value and raises no alert: a
            # narrower range than the shipped one could silence a real alarm (SBP 230).
            shipped_low, shipped_high = SHIPPED_PLAUSIBLE[kind]
            if Decimal(low) > shipped_low or Decimal(high) < shipped_high:
                errors["plausible_low"] = (f"The plausible range of a {kind} value may only be widened: it must "
                                           f"contain {shipped_low}-{shipped_high} (values outside it raise no alert).")
    return errors


@transaction.atomic
def do_save_code_map_entry(*, actor: Any, values: dict[str, Any], instance: CodeMapEntry | None = None,
                           request: HttpRequest | None = None) -> CodeMapEntry:
    """Create or change one code-map row, audited. Other processes see it at their next batch.

    The shipped map is seeded first: on a new database the first row an admin adds must not
    become the whole map (every other code would be stored unmapped and raise no alert)."""
    ensure_seeded()
    before = None
    if instance is None:
        # A new row for a code the seeding just shipped changes that row instead.
        key = {f: values.get(f, "") for f in ("source", "system", "code")}
        instance = CodeMapEntry.objects.filter(**key).first() if all(key[f] for f in ("system", "code")) else None
    if instance is None:
        instance = CodeMapEntry()
    else:
        # The row as stored (a bound ModelForm has already written the new values onto its
        # instance): what the audit entry calls "before".
        instance = CodeMapEntry.objects.select_for_update(no_key=True).get(pk=instance.pk)
        before = {f: getattr(instance, f) for f in values}
    errors = entry_errors({name: getattr(instance, name) for name in (
        "loinc", "extra_loinc", "ucum_unit", "kind", "plausible_low", "plausible_high")} | values)
    if errors:
        raise ValidationError(errors)
    for name, value in values.items():
        setattr(instance, name, value)
    instance.updated_by = actor if getattr(actor, "is_authenticated", False) else None
    instance.full_clean()
    instance.save()
    audit.record("update" if before else "create", actor=actor, request=request, obj=instance,
                 before=before, after=values, detail="code map entry")
    transaction.on_commit(invalidate)
    return instance
