"""KetaSafe settings: one file, every value from the environment through small strict parsers.

Every variable is documented in README.md ("Configuration"). Defaults suit the demo clinic on
one machine; production sets SECRET_KEY(_FILE), ALLOWED_HOSTS, DATABASE_URL and KETASAFE_HTTPS.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}: expected true/false, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: expected a whole number, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


DATA_DIR = Path(env_str("KETASAFE_DATA_DIR", "var")).resolve()
# Set by the `ketasafe` command for its pure commands (screen, dose, score, help): they need no
# data folder, so none is created and no key is written (cli.PURE).
PURE_COMMAND = env_str("KETASAFE_PURE_COMMAND") == "1"


def _secret_key() -> str:
    """SECRET_KEY, SECRET_KEY_FILE, or a key generated once and kept in the data folder."""
    if key := env_str("SECRET_KEY"):
        return key
    if path := env_str("SECRET_KEY_FILE"):
        return Path(path).read_text().strip()
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    if PURE_COMMAND:
        return secrets.token_urlsafe(50)  # nothing is signed by a pure command
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # Created owner-only (0600) in one step: no moment where another user could read it.
    # O_EXCL: if another process won the race, use its key rather than overwrite it.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("KETASAFE_DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "ketasafe.lib",
    "ketasafe.audit",
    "ketasafe.clinic",
    "ketasafe.accounts",
    "ketasafe.patients",
    "ketasafe.screening",
    "ketasafe.consent",
    "ketasafe.protocols",
    "ketasafe.sessions",
    "ketasafe.monitoring",
    "ketasafe.outcomes",
    "ketasafe.ledger",
    "ketasafe.fhir",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "ketasafe.accounts.middleware.LoginRequiredEverywhere",
    # Before IdleTimeout, so its logout redirect carries the security headers too.
    "ketasafe.lib.middleware.SecurityHeaders",
    "ketasafe.accounts.middleware.IdleTimeout",
    "ketasafe.lib.middleware.ClinicTimezone",
    # axes must be last: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ketasafe.urls"
WSGI_APPLICATION = "ketasafe.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "ketasafe.accounts.context_processors.navigation",
            ],
        },
    },
]

# SQLite in the data folder by default; DATABASE_URL=postgres://... selects PostgreSQL.
if not PURE_COMMAND:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'ketasafe.sqlite3'}",
        conn_max_age=env_int("KETASAFE_DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web app read while the MLLP listener writes; IMMEDIATE avoids
    # lock-upgrade deadlocks between concurrent writers.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file too (not shared-cache memory), so threaded tests lock like production.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# OWASP ASVS L2 (compliance B.5): at least 12 characters, a common-password check,
# no composition rules.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Lockout (django-axes): 5 failures for a username lock that account for 30 minutes, whatever
# address they come from (locking per user+address let an attacker rotate addresses). Unlocked
# early by a clinic admin with `ketasafe axes_reset_username USER` (README "Production").
AXES_FAILURE_LIMIT = env_int("KETASAFE_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("KETASAFE_LOGIN_COOLOFF_MINUTES", 30) / 60
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes warns that a lock without the address can be dodged by rotating User-Agents or cookies:
# that concerns combinations such as username+user_agent; a lock on the username alone is not
# dodged that way (and is what stops rotating addresses).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False

# Sessions: idle logout after 15 minutes by default (compliance B.5).
IDLE_TIMEOUT_SECONDS = env_int("KETASAFE_IDLE_TIMEOUT_MINUTES", 15) * 60
SESSION_COOKIE_AGE = env_int("KETASAFE_SESSION_MAX_HOURS", 12) * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# Behind a TLS proxy (README "Production"): secure cookies, HSTS, proxy header.
HTTPS = env_bool("KETASAFE_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LANGUAGE_CODE = "en-us"
USE_TZ = True
TIME_ZONE = "UTC"  # storage is UTC; CLINIC_TIME_ZONE is what staff see
CLINIC_TIME_ZONE = env_str("KETASAFE_CLINIC_TZ", "America/New_York")
USE_I18N = False

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the project-wide stylesheet and icons
STATIC_ROOT = DATA_DIR / "static"
if not PURE_COMMAND:
    STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing folder
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve from the app folders without collectstatic
MEDIA_ROOT = DATA_DIR / "media"

MLLP_HOST = env_str("KETASAFE_MLLP_HOST", "127.0.0.1")
MLLP_PORT = env_int("KETASAFE_MLLP_PORT", 2575)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("KETASAFE_LOG_LEVEL", "WARNING")},
}

# --- Test-only overrides (set by tests/conftest and .ci/run, never in production) -----------
if env_bool("KETASAFE_TESTING", False):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast test logins
