"""Seed rule set version default-v1 (contracts/screening-rules-v1.md), active from the start."""

from django.db import migrations
from django.utils import timezone


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    from ketasafe.screening.rules import DEFAULT_V1

    RuleSetVersion = apps.get_model("screening", "RuleSetVersion")
    if RuleSetVersion.objects.filter(version=DEFAULT_V1.version).exists():
        return
    now = timezone.now()
    RuleSetVersion.objects.create(
        version=DEFAULT_V1.version,
        thresholds=dict(DEFAULT_V1.thresholds),
        severities={k: str(v) for k, v in DEFAULT_V1.severities.items()},
        note="The rule set KetaSafe ships (contracts/screening-rules-v1.md). Never changes.",
        created_at=now, activated_at=now,
    )


def unseed(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("screening", "RuleSetVersion").objects.filter(version="default-v1", used=False).delete()


class Migration(migrations.Migration):
    dependencies = [("screening", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
