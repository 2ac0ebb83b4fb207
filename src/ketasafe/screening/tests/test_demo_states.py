"""The demo clinic shows patients at every screening state, with consents and REMS enrollments."""

from __future__ import annotations

import pytest
from django.utils import timezone

from ketasafe.clinic.demo_data import DemoContext
from ketasafe.consent.gate import treatment_allowed
from ketasafe.consent.models import ConsentSignature, Kind
from ketasafe.patients.models import Patient
from ketasafe.screening.demo import load
from ketasafe.screening.eligibility import eligibility
from ketasafe.screening.models import Screening, Status


@pytest.mark.django_db
def test_demo_covers_every_screening_state_and_consent_case():
    import random

    from ketasafe.clinic.demo_data import load_base

    ctx: DemoContext = load_base(random.Random(2026))
    load(ctx)
    now = timezone.now()
    states = set()
    for patient in Patient.objects.filter(mrn__startswith="DEMO-"):
        protocols = set(patient.screenings.values_list("protocol", flat=True)) or {"iv-ketamine-depression"}
        states |= {eligibility(patient, p, now).state for p in protocols}
    assert states >= {"eligible", "needs_screening", "expired", "stale", "ineligible"}
    assert Screening.objects.filter(status=Status.SIGNED, outcome="needs_review").exclude(justifications={}).exists()
    assert Screening.objects.filter(status=Status.NOT_TREATED).exists()
    assert Screening.objects.filter(status__in=[Status.DRAFT, Status.COMPLETED]).exists()
    sigs = ConsentSignature.objects.all()
    assert sigs.filter(version__document__kind=Kind.REMS_ENROLLMENT, prescriber__isnull=False).exists()
    assert sigs.filter(withdrawn_at__isnull=False).count() == 1
    allowed = [s for s in Screening.objects.filter(status=Status.SIGNED)
               if treatment_allowed(s.patient, s.protocol, now).allowed]
    assert allowed, "some demo patients are ready to treat"
    load(ctx)  # loading twice changes nothing
    assert ConsentSignature.objects.count() == sigs.count()
