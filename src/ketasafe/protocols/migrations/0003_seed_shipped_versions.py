"""One ProtocolVersion per shipped protocol (protocols/definitions.py), labelled ketasafe-v1."""

from django.db import migrations

SHIPPED = ("esketamine-mdsi", "esketamine-trd", "iv-ketamine-crps", "iv-ketamine-depression")


def seed(apps, schema_editor):  # type: ignore[no-untyped-def]
    ProtocolVersion = apps.get_model("protocols", "ProtocolVersion")
    for protocol_id in SHIPPED:
        ProtocolVersion.objects.get_or_create(protocol_id=protocol_id, label="ketasafe-v1",
                                              defaults={"changes": {}, "active": True})


def unseed(apps, schema_editor):  # type: ignore[no-untyped-def]
    ProtocolVersion = apps.get_model("protocols", "ProtocolVersion")
    ProtocolVersion.objects.filter(label="ketasafe-v1", orders=None).delete()


class Migration(migrations.Migration):
    dependencies = [("protocols", "0002_order_versions_and_signature")]
    operations = [migrations.RunPython(seed, unseed)]
