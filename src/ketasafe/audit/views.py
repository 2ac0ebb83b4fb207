from __future__ import annotations

import csv
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from ketasafe.accounts.access import capability_required

from .forms import AuditFilterForm
from .models import AuditEntry
from .services import record


def _filtered(form: AuditFilterForm) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.select_related("patient")
    if not form.is_valid():
        return qs.none()
    d = form.cleaned_data
    if d["since"]:
        qs = qs.filter(at__gte=d["since"])
    if d["until"]:
        qs = qs.filter(at__lte=d["until"])
    if d["user"]:
        qs = qs.filter(actor__iexact=f"user:{d['user']}")
    if d["patient"]:
        qs = qs.filter(patient__mrn__iexact=d["patient"].strip())
    if d["action"]:
        qs = qs.filter(action=d["action"])
    sort = d["sort"] or "-at"
    return qs.order_by(sort, "-id" if sort.startswith("-") else "id")


@capability_required("view_audit")
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    if not request.GET:
        form = AuditFilterForm({"sort": "-at"})
    page = Paginator(_filtered(form), 50).get_page(request.GET.get("page"))
    # The log shows patient data (names in registration changes): reading it is recorded too.
    record("view", request=request, object_type="audit.AuditEntry",
           detail=f"audit log: {request.GET.urlencode()[:400]}")
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/list.html",
                  {"form": form, "page": page, "query": query.urlencode()},
                  status=400 if form.errors else 200)


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run as a formula (OWASP "CSV injection")."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


@capability_required("view_audit")
def audit_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """CSV of the filtered entries; the export itself is an audited event."""
    form = AuditFilterForm(request.GET or {"sort": "-at"})
    if not form.is_valid():
        # Not an empty file: an empty export reads as "nothing matched".
        return HttpResponse(f"The filter is not valid: {form.errors.as_text()}", status=400,
                            content_type="text/plain; charset=utf-8")
    entries = _filtered(form)
    record("export", request=request, object_type="audit.AuditEntry",
           detail=f"audit CSV export: {request.GET.urlencode()[:400]}")
    writer = csv.writer(_Echo())
    header = ["id", "at_utc", "actor", "action", "patient_mrn", "object_type", "object_id",
              "changes", "detail", "client_address", "hash"]

    def rows() -> Any:
        yield writer.writerow(header)
        for e in entries.iterator(chunk_size=2000):
            yield writer.writerow([_cell(v) for v in (
                e.pk, e.at.isoformat(), e.actor, e.action, e.patient.mrn if e.patient else "",
                e.object_type, e.object_id, e.changes, e.detail, e.client_address or "", e.hash)])

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="ketasafe-audit.csv"'
    return response
