from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import LoginView, PasswordChangeView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse, reverse_lazy
from django.views.decorators.http import require_http_methods

from ketasafe import audit

from .access import capability_required, has_capability
from .forms import StaffCreateForm, StaffRolesForm
from .services import do_create_staff, do_set_active, do_set_password, do_set_roles, roles_of

User = get_user_model()


class KetaSafeLoginView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


login_view = login_not_required(KetaSafeLoginView.as_view())


class OwnPasswordChangeView(PasswordChangeView):
    template_name = "form_page.html"
    success_url = reverse_lazy("home")
    extra_context = {"title": "Change your password", "submit_label": "Change password"}

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        audit.record("update", request=self.request, obj=self.request.user, detail="own password changed")
        messages.success(self.request, "Your password was changed.")
        return response

# Where each role starts its day, first match wins.
HOME_BY_CAPABILITY = [
    ("view_board", "monitoring:board"),
    ("view_patients", "patients:list"),
    ("manage_ledger", "ledger:home"),
    ("view_audit", "audit:list"),
    ("manage_staff", "accounts:staff_list"),
]


def home(request: HttpRequest) -> HttpResponse:
    for capability, name in HOME_BY_CAPABILITY:
        if has_capability(request.user, capability):
            try:
                return redirect(reverse(name))
            except NoReverseMatch:
                continue
    return render(request, "accounts/no_role.html", {"roles": roles_of(request.user)})


@capability_required("manage_staff")
def staff_list(request: HttpRequest) -> HttpResponse:
    staff = User.objects.order_by("last_name", "first_name").prefetch_related("groups")
    rows = [{"user": u, "roles": roles_of(u)} for u in staff]
    return render(request, "accounts/staff_list.html", {"rows": rows})


@capability_required("manage_staff")
@require_http_methods(["GET", "POST"])
def staff_create(request: HttpRequest) -> HttpResponse:
    form = StaffCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        user = do_create_staff(actor=request.user, request=request, username=d["username"],
                               password=d["password"], first_name=d["first_name"],
                               last_name=d["last_name"], email=d["email"], roles=d["roles"])
        messages.success(request, f"Staff account {user.username} created.")
        return redirect("accounts:staff_list")
    return render(request, "form_page.html",
                  {"form": form, "title": "Add staff member", "submit_label": "Create account",
                   "cancel_url": reverse("accounts:staff_list")},
                  status=400 if form.errors else 200)


@capability_required("manage_staff")
@require_http_methods(["GET", "POST"])
def staff_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    member = get_object_or_404(User, pk=user_id)
    initial = {"roles": roles_of(member), "active": member.is_active}
    form = StaffRolesForm(request.POST or None, initial=initial, member=member)
    if request.method == "POST" and form.is_valid():
        if member == request.user and not form.cleaned_data["active"]:
            form.add_error("active", "You cannot deactivate your own account.")
        if member == request.user and sorted(form.cleaned_data["roles"]) != initial["roles"]:
            # Two-person rule: another clinic admin must change an admin's own roles.
            form.add_error("roles", "You cannot change your own roles; ask another clinic admin.")
        if member == request.user and form.cleaned_data["new_password"]:
            # Your own password only with the current one (at an unlocked workstation).
            form.add_error("new_password", "Change your own password on the 'My password' page.")
        if not form.errors:
            if sorted(form.cleaned_data["roles"]) != initial["roles"]:
                do_set_roles(actor=request.user, request=request, user=member,
                             roles=form.cleaned_data["roles"])
            if form.cleaned_data["new_password"]:
                do_set_password(actor=request.user, request=request, user=member,
                                password=form.cleaned_data["new_password"])
            if form.cleaned_data["active"] != member.is_active:
                do_set_active(actor=request.user, request=request, user=member,
                              active=form.cleaned_data["active"])
            messages.success(request, f"Saved {member.username}.")
            return redirect("accounts:staff_list")
    return render(request, "form_page.html",
                  {"form": form, "title": f"Roles of {member.get_full_name() or member.username}",
                   "cancel_url": reverse("accounts:staff_list")},
                  status=400 if form.errors else 200)
