from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ketasafe.audit.models import AuditEntry
from ketasafe.audit.services import verify_chain


class Command(BaseCommand):
    help = "Check the audit log's hash chain: exit 0 intact, 1 broken (naming the first bad entry)."

    def handle(self, *args: Any, **options: Any) -> None:
        broken = verify_chain()
        if broken is not None:
            raise CommandError(
                f"audit chain broken at entry {broken.entry_id}: {broken.reason}", returncode=1
            )
        self.stdout.write(f"audit chain intact: {AuditEntry.objects.count()} entries")
