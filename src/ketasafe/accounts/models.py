from django.db import models

from .roles import CAPABILITIES


class Capability(models.Model):
    """No table: this model only carries the capability permissions that roles are made of."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = sorted(CAPABILITIES.items())

    def __str__(self) -> str:
        return "capabilities"
