from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender: AppConfig, **kwargs: Any) -> None:
    from .services import sync_roles

    sync_roles(using=kwargs.get("using", "default"))


class AccountsConfig(AppConfig):
    name = "ketasafe.accounts"
    verbose_name = "Staff and roles"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (login/logout auditing)

        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="ketasafe-sync-roles")
