"""Staff accounts and roles. Every change of who may do what is audited as permission_change."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest

from ketasafe import audit

from .roles import ROLE_NAMES, ROLES

User = get_user_model()


def sync_roles(using: str = "default") -> None:
    """Make every role group hold exactly its capabilities (idempotent, runs after migrate)."""
    create_permissions(apps.get_app_config("accounts"), verbosity=0, using=using)
    for role in ROLES:
        group, _ = Group.objects.using(using).get_or_create(name=role.name)
        perms = Permission.objects.using(using).filter(
            content_type__app_label="accounts", codename__in=role.capabilities
        )
        group.permissions.set(perms)


def roles_of(user: Any) -> list[str]:
    return sorted(g.name for g in user.groups.all() if g.name in ROLE_NAMES)


@transaction.atomic
def do_create_staff(
    *, actor: Any, username: str, password: str, first_name: str, last_name: str, email: str,
    roles: list[str], request: HttpRequest | None = None,
) -> Any:
    unknown = set(roles) - ROLE_NAMES
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    user = User.objects.create_user(
        username=username, password=password, first_name=first_name, last_name=last_name,
        email=email,
    )
    user.groups.set(Group.objects.filter(name__in=roles))
    audit.record("create", actor=actor, request=request, obj=user,
                 after={"username": username, "roles": sorted(roles)})
    audit.record("permission_change", actor=actor, request=request, obj=user,
                 before={"roles": []}, after={"roles": sorted(roles)})
    return user


@transaction.atomic
def do_set_roles(*, actor: Any, user: Any, roles: list[str], request: HttpRequest | None = None) -> None:
    unknown = set(roles) - ROLE_NAMES
    if unknown:
        raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
    if actor == user:  # two-person rule, for every caller, not only the staff page
        raise PermissionDenied("You cannot change your own roles; ask another clinic admin.")
    before = roles_of(user)
    user.groups.set(Group.objects.filter(name__in=roles))
    audit.record("permission_change", actor=actor, request=request, obj=user,
                 before={"roles": before}, after={"roles": sorted(roles)})


@transaction.atomic
def do_set_active(*, actor: Any, user: Any, active: bool, request: HttpRequest | None = None) -> None:
    """Staff are deactivated, never deleted: the audit log and signatures keep pointing at them."""
    if actor == user:
        raise PermissionDenied("You cannot change whether your own account is active.")
    before = user.is_active
    user.is_active = active
    user.save(update_fields=["is_active"])
    audit.record("permission_change", actor=actor, request=request, obj=user,
                 before={"active": before}, after={"active": active})


@transaction.atomic
def do_set_password(*, actor: Any, user: Any, password: str, request: HttpRequest | None = None) -> None:
    """An admin sets a new password (the value itself is never recorded)."""
    user.set_password(password)
    user.save(update_fields=["password"])
    audit.record("update", actor=actor, request=request, obj=user, detail="password set by clinic admin")
