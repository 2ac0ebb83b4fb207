"""Login, lockout, idle logout, roles and the staff pages."""

import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from ketasafe.accounts.roles import ROLE_NAMES
from ketasafe.audit.models import AuditEntry
from ketasafe.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db



def shown(member):
    """What the staff page showed of ``member`` (its hidden field), as a browser posts it back."""
    from ketasafe.accounts.forms import StaffRolesForm

    return StaffRolesForm.state_of(member)

def test_every_role_exists_as_a_group_with_its_capabilities() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= ROLE_NAMES
    prescriber = Group.objects.get(name="prescriber")
    assert prescriber.permissions.filter(codename="sign_screening").exists()
    assert not Group.objects.get(name="nurse").permissions.filter(codename="sign_screening").exists()
    assert list(Group.objects.get(name="auditor").permissions.values_list("codename", flat=True)) == ["view_audit"]


def _every_page_url() -> list[str]:
    """Every named route: those without arguments, and those whose arguments are all whole
    numbers (filled with 1). Routes of other apps come in as they are added."""
    from django.urls import URLPattern, URLResolver, get_resolver, reverse

    urls: set[str] = set()

    def walk(patterns: list, namespace: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.namespace == "admin":  # Django's admin has its own login page
                    continue
                inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                walk(entry.url_patterns, inner)
            elif isinstance(entry, URLPattern) and entry.name:
                converters = entry.pattern.converters
                if all(type(c).__name__ == "IntConverter" for c in converters.values()):
                    urls.add(reverse(f"{namespace}{entry.name}", kwargs=dict.fromkeys(converters, 1)))

    walk(get_resolver().url_patterns, "")
    return sorted(urls - {"/login/"})


def test_the_login_check_covers_the_pages_of_every_app() -> None:
    urls = _every_page_url()
    assert {"/", "/patients/", "/patients/1/", "/audit/", "/staff/", "/setup/"} <= set(urls)


@pytest.mark.parametrize("url", _every_page_url())
def test_anonymous_users_are_sent_to_login(url) -> None:
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_successful_and_failed_logins_are_audited(make_staff) -> None:
    make_staff("nurse", username="lucia")
    client = Client()
    client.post("/login/", {"username": "lucia", "password": "wrong-password-123"})
    response = client.post("/login/", {"username": "lucia", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="login_failed", detail="username=lucia").exists()
    assert AuditEntry.objects.filter(action="login", actor="user:lucia").exists()


def test_wrong_password_shows_a_clear_message_with_a_4xx_or_200_form() -> None:
    response = Client().post("/login/", {"username": "nobody", "password": "x"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_repeated_failures_lock_the_account(make_staff) -> None:
    make_staff("nurse", username="locky")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "locky", "password": "wrong-password-123"})
    response = client.post("/login/", {"username": "locky", "password": TEST_PASSWORD})
    assert response.status_code == 429
    assert b"locked" in response.content


def test_idle_session_is_logged_out(client_for) -> None:
    client = client_for("nurse")
    session = client.session
    session["last_activity"] = time.time() - settings.IDLE_TIMEOUT_SECONDS - 5
    session.save()
    response = client.get("/patients/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert AuditEntry.objects.filter(action="logout", detail="idle timeout").exists()


def test_polls_do_not_count_as_activity(client_for) -> None:
    client = client_for("nurse")
    client.get("/patients/")
    stamp = client.session["last_activity"]
    time.sleep(0.01)
    client.get("/patients/", headers={"X-KetaSafe-Poll": "1"})
    assert client.session["last_activity"] == stamp


@pytest.mark.parametrize("password", ["short-pw-11", "password1234"])
def test_weak_passwords_are_refused(password) -> None:
    with pytest.raises(ValidationError):
        validate_password(password)


def test_long_passphrase_is_accepted_without_composition_rules() -> None:
    validate_password("lantern river quietly")


def test_passwords_are_hashed_with_argon2_outside_tests() -> None:
    import importlib
    import os

    import ketasafe.settings as s
    os.environ.pop("KETASAFE_TESTING", None)
    try:
        fresh = importlib.reload(s)
        assert fresh.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    finally:
        os.environ["KETASAFE_TESTING"] = "1"
        importlib.reload(s)


def test_clinic_admin_creates_staff_and_the_role_change_is_audited(client_for) -> None:
    admin = client_for("clinic_admin")
    response = admin.post("/staff/new/", {
        "username": "newnurse", "first_name": "New", "last_name": "Nurse", "email": "",
        "roles": ["nurse"], "password": "a long enough passphrase"})
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newnurse")
    assert [g.name for g in user.groups.all()] == ["nurse"]
    assert AuditEntry.objects.filter(action="permission_change", object_id=str(user.pk)).exists()


def test_staff_form_with_missing_fields_is_a_400_and_creates_nothing(client_for) -> None:
    admin = client_for("clinic_admin")
    before = get_user_model().objects.count()
    response = admin.post("/staff/new/", {"username": "x"})
    assert response.status_code == 400
    assert get_user_model().objects.count() == before


@pytest.mark.parametrize("role", ["nurse", "prescriber", "front_desk", "auditor", "cs_custodian"])
def test_only_clinic_admins_manage_staff(client_for, role) -> None:
    assert client_for(role).get("/staff/").status_code == 403


def test_clinic_admin_sets_a_new_password_which_is_audited_but_not_recorded(client_for, make_staff) -> None:
    nurse = make_staff("nurse")
    admin = client_for("clinic_admin")
    response = admin.post(f"/staff/{nurse.pk}/", {"roles": ["nurse"], "active": "on", "shown": shown(nurse),
                                                   "new_password": "a brand new passphrase"})
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.check_password("a brand new passphrase")
    entry = AuditEntry.objects.get(detail="password set by clinic admin")
    assert "passphrase" not in entry.changes


def test_a_weak_new_password_is_refused_and_nothing_changes(client_for, make_staff) -> None:
    nurse = make_staff("nurse")
    response = client_for("clinic_admin").post(f"/staff/{nurse.pk}/", {
        "roles": ["nurse"], "active": "on", "shown": shown(nurse), "new_password": "short"})
    assert response.status_code == 400
    nurse.refresh_from_db()
    assert nurse.check_password(TEST_PASSWORD)


def test_staff_change_their_own_password(client_for) -> None:
    client = client_for("nurse")
    response = client.post("/password/", {"old_password": TEST_PASSWORD, "new_password1": "my new long passphrase",
                                          "new_password2": "my new long passphrase"})
    assert response.status_code == 302
    client.user.refresh_from_db()
    assert client.user.check_password("my new long passphrase")


def test_a_role_with_no_pages_yet_is_told_so_not_that_it_has_no_role(client_for) -> None:
    page = client_for("cs_custodian").get("/").content.decode()
    assert "cs_custodian" in page and "No role assigned" not in page


def test_a_user_without_a_role_is_told_to_ask_an_admin(make_staff) -> None:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="roleless", password=TEST_PASSWORD)
    client = Client()
    client.force_login(user)
    assert "No role assigned" in client.get("/").content.decode()


def test_a_superuser_without_a_role_has_no_capability(make_staff) -> None:
    from ketasafe.accounts.access import has_capability

    boss = get_user_model().objects.create_superuser(username="root", password=TEST_PASSWORD)
    assert not has_capability(boss, "manage_staff") and not has_capability(boss, "sign_screening")
    client = Client()
    client.force_login(boss)
    assert client.get("/staff/").status_code == 403


def test_a_superuser_has_only_the_capabilities_of_their_roles(make_staff) -> None:
    from ketasafe.accounts.access import has_capability

    nurse = make_staff("nurse", is_superuser=True)
    assert has_capability(nurse, "view_patients") and not has_capability(nurse, "sign_screening")


def test_users_and_groups_are_not_editable_in_the_django_admin(admin_client) -> None:
    assert admin_client.get("/admin/auth/user/").status_code == 404
    assert admin_client.get("/admin/auth/group/").status_code == 404


def test_a_clinic_admin_cannot_change_their_own_roles(client_for) -> None:
    admin = client_for("clinic_admin")
    response = admin.post(f"/staff/{admin.user.pk}/", {"roles": ["clinic_admin", "prescriber"], "active": "on",
                                                  "shown": shown(admin.user)})
    assert response.status_code == 400
    assert sorted(g.name for g in admin.user.groups.all()) == ["clinic_admin"]
    assert not AuditEntry.objects.filter(action="permission_change", object_id=str(admin.user.pk)).exists()


def test_a_clinic_admin_may_save_their_own_page_without_a_role_change(client_for) -> None:
    admin = client_for("clinic_admin")
    response = admin.post(f"/staff/{admin.user.pk}/", {"roles": ["clinic_admin"], "active": "on",
                                                  "shown": shown(admin.user)})
    assert response.status_code == 302


def test_a_clinic_admin_cannot_deactivate_themselves(client_for) -> None:
    admin = client_for("clinic_admin")
    assert admin.post(f"/staff/{admin.user.pk}/", {"roles": ["clinic_admin"],
                                                  "shown": shown(admin.user)}).status_code == 400
    admin.user.refresh_from_db()
    assert admin.user.is_active


def test_create_clinic_admin_command_creates_an_audited_admin(db, tmp_path) -> None:
    from django.core.management import call_command

    secret = tmp_path / "pw"
    secret.write_text("a long enough admin passphrase\n")
    call_command("create_clinic_admin", "firstadmin", password_file=str(secret))
    user = get_user_model().objects.get(username="firstadmin")
    assert [g.name for g in user.groups.all()] == ["clinic_admin"] and not user.is_superuser
    assert user.check_password("a long enough admin passphrase")
    entry = AuditEntry.objects.get(action="permission_change", object_id=str(user.pk))
    assert entry.actor == "system:cli"


def test_create_clinic_admin_command_refuses_a_weak_password(db, tmp_path) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    secret = tmp_path / "pw"
    secret.write_text("short\n")
    with pytest.raises(CommandError):
        call_command("create_clinic_admin", "firstadmin", password_file=str(secret))
    assert not get_user_model().objects.filter(username="firstadmin").exists()


def test_login_records_when_the_session_started(make_staff) -> None:
    make_staff("nurse", username="stamped")
    client = Client()
    before = time.time()
    assert client.post("/login/", {"username": "stamped", "password": TEST_PASSWORD}).status_code == 302
    assert before <= client.session["login_at"] <= time.time()


def test_an_active_session_ends_at_its_absolute_lifetime_from_login(client_for) -> None:
    client = client_for("nurse")
    session = client.session
    session["login_at"] = time.time() - settings.SESSION_COOKIE_AGE - 5
    session["last_activity"] = time.time()  # busy right up to now: activity does not extend it
    session.save()
    response = client.get("/patients/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert AuditEntry.objects.filter(action="logout", detail="session lifetime").exists()
    assert client.get("/patients/").status_code == 302


def test_a_session_within_its_lifetime_stays_logged_in(client_for) -> None:
    client = client_for("nurse")
    session = client.session
    session["login_at"] = time.time() - settings.SESSION_COOKIE_AGE + 60
    session.save()
    assert client.get("/patients/").status_code == 200


def test_failures_from_one_address_lock_the_account_from_every_address(make_staff) -> None:
    make_staff("nurse", username="rotator")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client(REMOTE_ADDR="203.0.113.5").post("/login/", {"username": "rotator", "password": "wrong-password-123"})
    response = Client(REMOTE_ADDR="198.51.100.9").post("/login/", {"username": "rotator", "password": TEST_PASSWORD})
    assert response.status_code == 429


def test_the_idle_logout_redirect_carries_the_security_headers(client_for) -> None:
    client = client_for("nurse")
    session = client.session
    session["last_activity"] = time.time() - settings.IDLE_TIMEOUT_SECONDS - 5
    session.save()
    response = client.get("/patients/")
    assert response.status_code == 302 and "Content-Security-Policy" in response


def test_a_generated_secret_key_file_is_never_readable_by_others(tmp_path, monkeypatch) -> None:
    import importlib
    import os
    import pathlib

    from ketasafe import settings as s

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY_FILE", raising=False)
    monkeypatch.setenv("KETASAFE_DATA_DIR", str(tmp_path))
    # Even if the process dies right after writing (no later chmod), the file is owner-only.
    monkeypatch.setattr(pathlib.Path, "chmod", lambda self, mode: None)
    old_umask = os.umask(0o022)
    try:
        importlib.reload(s)
        mode = (tmp_path / "secret_key").stat().st_mode & 0o777
        assert mode == 0o600
        assert (tmp_path / "secret_key").read_text().strip() == s.SECRET_KEY
    finally:
        os.umask(old_umask)
        monkeypatch.undo()
        importlib.reload(s)



def test_a_staff_page_opened_before_another_admins_change_cannot_undo_it(client_for, make_staff):
    nurse = make_staff("nurse")
    page_state = shown(nurse)  # admin A opens the page
    from ketasafe.accounts.services import do_set_active

    do_set_active(actor=make_staff("clinic_admin"), user=nurse, active=False)  # admin B deactivates
    response = client_for("clinic_admin").post(f"/staff/{nurse.pk}/", {
        "roles": ["nurse"], "active": "on", "new_password": "a-new-long-password-42", "shown": page_state})
    assert response.status_code == 400 and b"Another admin changed this account" in response.content
    nurse.refresh_from_db()
    assert not nurse.is_active


def test_an_admin_sets_their_own_password_only_with_the_current_one(client_for):
    admin = client_for("clinic_admin")
    response = admin.post(f"/staff/{admin.user.pk}/", {"roles": ["clinic_admin"], "active": "on",
                                                       "new_password": "a-new-long-password-42",
                                                       "shown": shown(admin.user)})
    assert response.status_code == 400 and b"My password" in response.content
    admin.user.refresh_from_db()
    assert not admin.user.check_password("a-new-long-password-42")


def test_the_services_refuse_changing_your_own_roles_or_active(make_staff):
    import pytest
    from django.core.exceptions import PermissionDenied

    from ketasafe.accounts.services import do_set_active, do_set_roles

    admin = make_staff("clinic_admin")
    with pytest.raises(PermissionDenied):
        do_set_roles(actor=admin, user=admin, roles=["clinic_admin", "prescriber"])
    with pytest.raises(PermissionDenied):
        do_set_active(actor=admin, user=admin, active=False)


def test_the_staff_page_posts_back_what_it_showed(client_for, make_staff):
    from html.parser import HTMLParser

    nurse = make_staff("nurse")
    admin = client_for("clinic_admin")
    page = admin.get(f"/staff/{nurse.pk}/").content.decode()

    class Inputs(HTMLParser):
        values: dict[str, str] = {}

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "input" and a.get("type") == "hidden":
                self.values[a.get("name") or ""] = a.get("value") or ""

    parser = Inputs()
    parser.feed(page)
    response = admin.post(f"/staff/{nurse.pk}/", {"roles": ["nurse"], "shown": parser.values["shown"],
                                                  "csrfmiddlewaretoken": parser.values.get("csrfmiddlewaretoken", "")})
    assert response.status_code == 302  # deactivated through the page as a browser submits it
    nurse.refresh_from_db()
    assert not nurse.is_active


@pytest.mark.parametrize("username", ["bad name", "a<b>", "x" * 200, ""])
def test_create_clinic_admin_command_refuses_a_username_the_staff_page_would_refuse(db, tmp_path, username) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import CommandError, call_command

    secret = tmp_path / "pw"
    secret.write_text("a-long-enough-password-42\n")
    with pytest.raises(CommandError, match="username"):
        call_command("create_clinic_admin", username, password_file=str(secret))
    assert not get_user_model().objects.exists()
