"""Clinic time: stored in UTC, shown and entered in the clinic's zone (settings.CLINIC_TIME_ZONE)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def clinic_tz() -> ZoneInfo:
    return ZoneInfo(settings.CLINIC_TIME_ZONE)


def clinic_now() -> dt.datetime:
    return timezone.now().astimezone(clinic_tz())


def clinic_today() -> dt.date:
    return clinic_now().date()
