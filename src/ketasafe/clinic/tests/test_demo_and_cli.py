"""The demo clinic loads what the brief promises, and the console command works on a new folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from ketasafe.accounts.services import roles_of
from ketasafe.clinic.demo_data import read_logins
from ketasafe.clinic.demo_loaders import load_demo
from ketasafe.patients.models import Patient


@pytest.mark.django_db
def test_demo_has_one_user_per_role_and_30_plus_patients() -> None:
    load_demo()
    users = get_user_model().objects.all()
    roles = {role for user in users for role in roles_of(user)}
    assert roles == {"prescriber", "nurse", "cs_custodian", "front_desk", "clinic_admin", "auditor"}
    assert Patient.objects.filter(mrn__startswith="DEMO-").count() >= 30
    assert Patient.objects.filter(mrn="DEMO-0001").exists()
    logins = read_logins()
    assert get_user_model().objects.get(username="nurse").check_password(logins["nurse"])


@pytest.mark.django_db
def test_loading_twice_changes_nothing() -> None:
    load_demo()
    count = Patient.objects.count()
    load_demo()
    assert Patient.objects.count() == count


def _ketasafe(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "KETASAFE_TESTING"}}
    env["KETASAFE_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "ketasafe.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_a_new_data_folder_is_migrated_by_the_first_command(tmp_path: Path) -> None:
    result = _ketasafe(["audit_verify"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "audit chain intact" in result.stdout
    assert (tmp_path / "ketasafe.sqlite3").exists()


@pytest.mark.slow
def test_demo_load_only_then_tampering_is_caught(tmp_path: Path) -> None:
    import sqlite3

    result = _ketasafe(["demo", "--load-only"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "nurse" in result.stdout and "http://127.0.0.1:8000/" in result.stdout
    logins = json.loads((tmp_path / "demo-logins.json").read_text())
    assert logins["nurse"] in result.stdout
    assert _ketasafe(["audit_verify"], tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "ketasafe.sqlite3") as db:
        row_id = db.execute("SELECT id FROM audit_auditentry ORDER BY id LIMIT 1 OFFSET 5").fetchone()[0]
        db.execute("UPDATE audit_auditentry SET actor = 'user:mallory' WHERE id = ?", (row_id,))
    broken = _ketasafe(["audit_verify"], tmp_path)
    assert broken.returncode == 1
    assert f"entry {row_id}" in broken.stderr


@pytest.mark.django_db
def test_demo_refuses_a_database_that_is_not_sqlite(monkeypatch, capsys) -> None:
    from django.core.management import call_command
    from django.db import connection

    monkeypatch.setattr(connection, "vendor", "postgresql")
    with pytest.raises(SystemExit) as info:
        call_command("demo", load_only=True)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err and "postgresql" in err
    assert not get_user_model().objects.filter(username="nurse").exists()


@pytest.mark.django_db
def test_demo_with_force_loads_into_a_database_that_is_not_sqlite(monkeypatch) -> None:
    from django.core.management import call_command
    from django.db import connection

    monkeypatch.setattr(connection, "vendor", "postgresql")
    monkeypatch.setattr("ketasafe.clinic.management.commands.demo.call_command", lambda *a, **k: None)
    monkeypatch.setattr("ketasafe.clinic.management.commands.demo.is_loaded", lambda: True)
    call_command("demo", load_only=True, force=True)  # gets past the guard, no exit


@pytest.mark.django_db
def test_clinic_settings_refuse_out_of_range_values(client_for) -> None:
    from ketasafe.clinic.models import ClinicSettings

    client = client_for("clinic_admin")
    current = ClinicSettings.current()
    base = {"name": current.name or "Clinic", "address": "", "phone": "", "email": "",
            "require_pregnancy_test": "on"}
    for months, minutes in [(32000, 30), (0, 30), (12, 30000), (12, 4), (25, 30)]:
        response = client.post("/setup/", {**base, "screening_validity_months": months,
                                            "predose_vitals_max_age_min": minutes})
        assert response.status_code == 400, (months, minutes)
    current.refresh_from_db()
    assert current.screening_validity_months <= 24 and current.predose_vitals_max_age_min <= 120
    ok = client.post("/setup/", {**base, "screening_validity_months": 24, "predose_vitals_max_age_min": 120})
    assert ok.status_code == 302


@pytest.mark.slow
def test_the_pure_commands_leave_the_current_folder_as_it_was(tmp_path: Path) -> None:
    """`ketasafe screen|dose|score` need no data folder: run in any folder with the default
    one (./var), they create nothing there (no database, no secret key file)."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "KETASAFE_TESTING", "KETASAFE_DATA_DIR", "DJANGO_SETTINGS_MODULE"}}
    for args in (["dose", "iv-ketamine-depression", "--weight-kg", "82"], ["score", "gad7", *"1111111"]):
        result = subprocess.run([sys.executable, "-m", "ketasafe.cli", *args], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)
    assert list(tmp_path.iterdir()) == []
