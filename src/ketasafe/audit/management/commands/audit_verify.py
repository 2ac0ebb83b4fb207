"""`ketasafe audit_verify [--anchor ID:HASH ...]`: check the audit hash chain.

The chain alone shows that no entry was edited, deleted or reordered by someone who did not also
recompute every later hash. Anchors close that gap: the command prints the newest entry's
`ID:HASH`; keep it outside the database (a daily log line, a printed report), and a later
`--anchor ID:HASH` fails if the chain no longer holds that hash at that entry.
"""

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ketasafe.audit.models import AuditEntry, ChainHead
from ketasafe.audit.services import verify_chain

ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


def _anchor(text: str) -> tuple[int, str]:
    match = ANCHOR.match(text.strip().lower())
    if not match:
        raise CommandError(f"--anchor {text!r}: expected ID:HASH (an entry id and 64 hex digits)",
                           returncode=2)
    return int(match.group(1)), match.group(2)


class Command(BaseCommand):
    help = "Check the audit log's hash chain: exit 0 intact, 1 broken (naming the first bad entry)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--anchor", action="append", default=[], metavar="ID:HASH",
                            help="a head printed by an earlier run, kept outside the database")

    def handle(self, *args: Any, anchor: list[str], **options: Any) -> None:
        anchors = [_anchor(a) for a in anchor]
        broken = verify_chain()
        if broken is not None:
            raise CommandError(
                f"audit chain broken at entry {broken.entry_id}: {broken.reason}", returncode=1
            )
        for entry_id, expected in anchors:
            stored = AuditEntry.objects.filter(pk=entry_id).values_list("hash", flat=True).first()
            if stored != expected:
                raise CommandError(
                    f"audit chain broken at entry {entry_id}: it no longer holds the anchored hash "
                    f"{expected[:12]}... (the log was rewritten from this entry or before)",
                    returncode=1)
        head = ChainHead.objects.filter(pk=1).first()
        count = AuditEntry.objects.count()
        if head is None or head.last_entry_id is None:
            self.stdout.write(f"audit chain intact: {count} entries")
        else:
            self.stdout.write(f"audit chain intact: {count} entries; "
                              f"anchor {head.last_entry_id}:{head.last_hash}")
