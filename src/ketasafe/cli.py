"""The `ketasafe` console command: Django's management commands under one name.

`ketasafe migrate` works like `manage.py migrate`. A command that needs the database migrates a
new one first, so a fresh data folder just works (contracts/cli.md, "Configuration").
"""

from __future__ import annotations

import os
import sys

# The contract's pure commands (and help): no database, no data folder, no secret key. Run in
# any folder, they leave nothing behind (settings reads KETASAFE_PURE_COMMAND).
PURE = frozenset({"screen", "dose", "score", "help", "version", "--help", "-h", "--version"})
# Pure commands and Django's own tooling: they never touch the database.
NO_DATABASE = frozenset({
    "screen", "dose", "score", "help", "version", "--help", "-h", "--version",
    "makemigrations", "check", "collectstatic", "migrate", "sqlmigrate", "showmigrations",
})


def _migrate_if_new() -> None:
    from django.core.management import call_command
    from django.db import connection

    if "django_migrations" not in connection.introspection.table_names():
        call_command("migrate", verbosity=0, interactive=False)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketasafe.settings")
    command = argv[1] if len(argv) > 1 else "help"
    if command in PURE:
        os.environ["KETASAFE_PURE_COMMAND"] = "1"
    import django
    from django.core.management import execute_from_command_line

    django.setup()
    if command not in NO_DATABASE:
        _migrate_if_new()
    execute_from_command_line(["ketasafe", *argv[1:]])


if __name__ == "__main__":
    main()
