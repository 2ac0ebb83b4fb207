from typing import Any

from django.http import HttpRequest

from .access import has_capability

# (label, url name, capability needed). Apps that are not built yet are simply absent.
NAVIGATION = [
    ("Patients", "patients:list", "view_patients"),
    ("Chair board", "monitoring:board", "view_board"),
    ("Sessions", "sessions:today", "run_sessions"),
    ("Forms due", "sessions:forms_due", "run_sessions"),
    ("Ledger", "ledger:home", "manage_ledger"),
    ("Staff", "accounts:staff_list", "manage_staff"),
    ("Clinic setup", "clinic_setup", "configure_clinic"),
    ("Audit log", "audit:list", "view_audit"),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    from django.urls import NoReverseMatch, reverse

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    for label, name, capability in NAVIGATION:
        if not has_capability(user, capability):
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        items.append({"label": label, "url": url, "active": request.path.startswith(url)})
    return {"nav_items": items}
