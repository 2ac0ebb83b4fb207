"""`ketasafe create_clinic_admin USERNAME`: the first clinic admin of a new installation.

Creates a staff account with the clinic_admin role (no superuser flag: capabilities come from
roles only), validated like any password set in the app and audited as actor "system:cli".
"""

from __future__ import annotations

import getpass
import re
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ketasafe.accounts.forms import USERNAME_PATTERN
from ketasafe.accounts.services import do_create_staff


class Command(BaseCommand):
    help = "Create a clinic admin account (the first admin of a new installation)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--password-file", type=Path,
                            help="Read the password from the first line of this file "
                            "(otherwise it is asked for twice).")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, username: str, password_file: Path | None, first_name: str,
               last_name: str, email: str, **options: Any) -> None:
        User = get_user_model()
        if not re.fullmatch(USERNAME_PATTERN, username):
            raise CommandError("the username must be 3 to 150 letters, digits or . @ + - _")
        if User.objects.filter(username__iexact=username).exists():
            raise CommandError(f"a staff account named {username!r} exists already")
        if password_file is not None:
            try:
                lines = Path(password_file).read_text().splitlines()
            except OSError as exc:
                raise CommandError(f"cannot read {password_file}: {exc.strerror}") from exc
            password = lines[0] if lines else ""
        else:
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("the two passwords differ")
        candidate = User(username=username, first_name=first_name, last_name=last_name, email=email)
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        do_create_staff(actor="system:cli", username=username, password=password,
                        first_name=first_name, last_name=last_name, email=email,
                        roles=["clinic_admin"])
        self.stdout.write(f"Created clinic admin {username}.")
