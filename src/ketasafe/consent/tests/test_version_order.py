"""Consent versions go forward: a version dated before the latest published one is refused (at
drafting and at publishing), and the version in force is the highest-numbered one in effect."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ketasafe.consent import services
from ketasafe.consent.exceptions import ConsentInputInvalid
from ketasafe.consent.models import ConsentDocument, ConsentVersion, Kind
from ketasafe.consent.status import current_version
from ketasafe.screening.tests.helpers import PROTOCOL, published


def draft(admin, effective, title="Consent"):
    return services.do_create_version(actor=admin, protocol=PROTOCOL, kind=Kind.TREATMENT, title=title,
                                      body="Risks...", effective_date=effective)


def test_publishing_a_version_dated_before_the_published_one_is_refused(make_staff):
    admin = make_staff("clinic_admin")
    v1 = draft(admin, dt.date(2021, 1, 1), "v1")
    v2 = draft(admin, dt.date(2020, 1, 1), "v2")  # drafted while nothing was published yet
    services.do_publish_version(actor=admin, version=v1)
    with pytest.raises(ConsentInputInvalid) as info:
        services.do_publish_version(actor=admin, version=v2)
    assert info.value.field == "effective_date" and "2021-01-01" in info.value.message
    v2.refresh_from_db()
    assert not v2.published
    assert current_version(v1.document, timezone.now()) == v1


def test_drafting_a_version_dated_before_the_published_one_is_refused(make_staff):
    admin = make_staff("clinic_admin")
    published(admin, effective=dt.date(2021, 6, 1))
    with pytest.raises(ConsentInputInvalid, match="effective_date: 2021-05-31 is before"):
        draft(admin, dt.date(2021, 5, 31))
    assert draft(admin, dt.date(2021, 6, 1)).version == 2  # the same day is fine


def test_a_lower_numbered_draft_cannot_be_published_after_a_higher_one(make_staff):
    admin = make_staff("clinic_admin")
    v1 = draft(admin, dt.date(2021, 1, 1))
    v2 = draft(admin, dt.date(2021, 1, 1))
    services.do_publish_version(actor=admin, version=v2)
    with pytest.raises(ConsentInputInvalid, match="version"):
        services.do_publish_version(actor=admin, version=v1)


def test_the_version_in_force_is_the_highest_number_in_effect(make_staff):
    admin = make_staff("clinic_admin")
    v1 = published(admin, effective=dt.date(2020, 1, 1))
    v2 = published(admin, effective=dt.date(2021, 1, 1))
    # Rows written before the ordering rule existed: v1 dated after v2.
    ConsentVersion.objects.filter(pk=v1.pk).update(effective_date=dt.date(2022, 1, 1))
    document = ConsentDocument.objects.get()
    assert current_version(document, timezone.now()) == v2
    # A higher number not yet in effect does not count.
    published(admin, effective=timezone.localdate() + dt.timedelta(days=30))
    assert current_version(document, timezone.now()) == v2


def test_the_new_version_form_shows_the_effective_date_error(client_for, make_staff):
    published(make_staff("clinic_admin"), effective=dt.date(2025, 1, 1))
    client = client_for("clinic_admin")
    response = client.post("/consent/documents/new/", {
        "protocol": PROTOCOL, "kind": "treatment", "title": "Back-dated", "body": "Text",
        "effective_date": "2024-12-31"})
    assert response.status_code == 400
    assert "is before the effective date of published version 1" in response.content.decode()
    assert ConsentVersion.objects.count() == 1


def test_the_publish_button_says_why_a_back_dated_version_was_not_published(client_for, make_staff):
    admin = make_staff("clinic_admin")
    old = draft(admin, dt.date(2020, 1, 1))
    published(admin, effective=dt.date(2021, 1, 1))
    client = client_for("clinic_admin")
    response = client.post(f"/consent/versions/{old.pk}/publish/", follow=True)
    assert "was not published" in response.content.decode()
    old.refresh_from_db()
    assert not old.published
