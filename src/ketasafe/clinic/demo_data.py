"""The synthetic demo clinic: staff of every role and 30+ patients with varied histories.

Everything here is invented. Names are drawn from small lists with a fixed seed, so the demo is
the same on every machine; passwords are random per data folder and printed on start.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from ketasafe.accounts.services import do_create_staff
from ketasafe.lib.timeutil import clinic_today
from ketasafe.patients import services as patient_services
from ketasafe.patients.models import Allergy, Medication, Patient, Problem

DEMO_STAFF = [
    # username, first, last, roles
    ("prescriber", "Amara", "Okafor", ["prescriber"]),
    ("prescriber2", "Jonas", "Lindqvist", ["prescriber"]),
    ("nurse", "Lucia", "Garcia", ["nurse"]),
    ("nurse2", "Wei", "Chen", ["nurse"]),
    ("custodian", "Ravi", "Patel", ["cs_custodian"]),
    ("frontdesk", "Megan", "Miller", ["front_desk"]),
    ("admin", "Thao", "Nguyen", ["clinic_admin"]),
    ("auditor", "Grace", "Brooks", ["auditor"]),
]

GIVEN = ["Alex", "Jordan", "Sam", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn",
         "Harper", "Rowan", "Elliot", "Dana", "Robin", "Kai", "Noor", "Mateo", "Ingrid", "Tomas",
         "Priya", "Yusuf", "Hana", "Leon", "Sofia", "Omar", "Elena", "Felix", "Ada", "Nico",
         "Mira", "Ezra", "Lena", "Ivan"]
FAMILY = ["Abbott", "Baptiste", "Castillo", "Dubois", "Eriksen", "Fujita", "Gallagher", "Haddad",
          "Ibarra", "Jensen", "Kowalski", "Laurent", "Mbeki", "Novak", "Oduya", "Petrov", "Quinlan",
          "Rossi", "Sato", "Tanaka", "Ulrich", "Varga", "Whitfield", "Xu", "Yilmaz", "Zamora",
          "Achterberg", "Brennan", "Cardoso", "Delacroix", "Ellison", "Farrow", "Grant", "Holm"]

DEPRESSION = ("F33.2", "Major depressive disorder, recurrent severe without psychotic features")
PTSD = ("F43.10", "Post-traumatic stress disorder, unspecified")
CRPS = ("G90.50", "Complex regional pain syndrome I, unspecified")
# Extra history by patient profile: (icd10, description, status)
PROFILES: list[list[tuple[str, str, str]]] = [
    [],
    [("I10", "Essential hypertension", "active")],
    [("F10.20", "Alcohol dependence, uncomplicated", "history")],
    [("F41.1", "Generalized anxiety disorder", "active")],
    [("E11.9", "Type 2 diabetes mellitus without complications", "active")],
    [("F20.9", "Schizophrenia, unspecified", "active")],          # ineligible
    [("I67.1", "Cerebral aneurysm, nonruptured", "active")],       # ineligible
    [("H40.10", "Open-angle glaucoma, unspecified", "active")],    # needs review
    [("F12.20", "Cannabis dependence, uncomplicated", "active")],  # needs review
    [("I48.91", "Atrial fibrillation, unspecified", "active")],    # needs review
]
MEDICATIONS = [
    ("N06AB10", "escitalopram", "10 mg daily"),
    ("N06AB06", "sertraline", "100 mg daily"),
    ("N06AX12", "bupropion", "150 mg daily"),
    ("N06AX16", "venlafaxine", "150 mg daily"),
    ("N05BA06", "lorazepam", "0.5 mg as needed"),
    ("N05CF02", "zolpidem", "5 mg at night"),
    ("N06BA04", "methylphenidate", "10 mg mornings"),
    ("N03AX09", "lamotrigine", "100 mg daily"),
    ("C09AA03", "lisinopril", "10 mg daily"),
]


@dataclass
class DemoContext:
    """What each app's demo loader receives."""

    staff: dict[str, Any]
    patients: list[Patient]
    rng: random.Random
    today: dt.date
    passwords: dict[str, str] = field(default_factory=dict)


def logins_file() -> Any:
    return settings.DATA_DIR / "demo-logins.json"


def read_logins() -> dict[str, str]:
    path = logins_file()
    return json.loads(path.read_text()) if path.exists() else {}


def is_loaded() -> bool:
    return Patient.objects.filter(mrn="DEMO-0001").exists()


@transaction.atomic
def load_base(rng: random.Random) -> DemoContext:
    User = get_user_model()
    passwords = read_logins()
    staff: dict[str, Any] = {}
    for username, first, last, roles in DEMO_STAFF:
        user = User.objects.filter(username=username).first()
        if user is None:
            passwords[username] = passwords.get(username) or f"demo-{secrets.token_urlsafe(9)}"
            user = do_create_staff(actor="system:demo", username=username, password=passwords[username],
                                   first_name=first, last_name=last,
                                   email=f"{username}@demo.ketasafe.invalid", roles=roles)
        staff[username] = user
    path = logins_file()
    path.write_text(json.dumps(passwords, indent=2))
    path.chmod(0o600)
    today = clinic_today()
    patients = [_make_patient(i, rng, staff["nurse"], today) for i in range(1, 35)]
    return DemoContext(staff=staff, patients=patients, rng=rng, today=today, passwords=passwords)


def _make_patient(i: int, rng: random.Random, nurse: Any, today: dt.date) -> Patient:
    mrn = f"DEMO-{i:04d}"
    existing = Patient.objects.filter(mrn=mrn).first()
    if existing:
        return existing
    sex = rng.choice(["female", "male", "female", "male", "other"])
    age = rng.randint(19, 78) if i != 34 else 17  # one minor: screening must refuse
    birth = today - dt.timedelta(days=age * 365 + rng.randint(30, 330))
    actor = "system:demo"
    patient = patient_services.do_register_patient(
        actor=actor, mrn=mrn, given_name=GIVEN[i % len(GIVEN)], family_name=FAMILY[i % len(FAMILY)],
        birth_date=birth, sex=sex, phone=f"555-01{i:02d}", email=f"patient{i}@example.invalid",
        address_line=f"{rng.randint(1, 999)} Demo Street", city="Springfield", region="ST",
        postal_code=f"{rng.randint(10000, 99999)}",
        pregnancy_status=("not_pregnant" if sex == "female" and age < 55 else "not_applicable"),
        breastfeeding=False if sex == "female" else None,
    )
    weight = Decimal(rng.randint(520, 1100)) / 10
    patient_services.record_measurement(actor=nurse, patient=patient,
                                        measured_on=today - dt.timedelta(days=rng.randint(0, 20)),
                                        weight_kg=weight, height_cm=Decimal(rng.randint(150, 195)))
    indication = [DEPRESSION, DEPRESSION, PTSD, CRPS][i % 4]
    patient_services.do_add_record(actor=actor, patient=patient, model=Problem,
                                   icd10_code=indication[0], description=indication[1], status="active")
    for code, desc, status in PROFILES[i % len(PROFILES)]:
        patient_services.do_add_record(actor=actor, patient=patient, model=Problem,
                                       icd10_code=code, description=desc, status=status)
    for atc, name, dose in rng.sample(MEDICATIONS, k=rng.randint(0, 3)):
        patient_services.do_add_record(actor=actor, patient=patient, model=Medication,
                                       atc_code=atc, name=name, dose=dose)
    if i % 7 == 0:
        patient_services.do_add_record(actor=actor, patient=patient, model=Allergy,
                                       substance="penicillin", reaction="rash")
    if i == 21:
        patient_services.do_add_record(actor=actor, patient=patient, model=Allergy,
                                       substance="ketamine", reaction="anaphylaxis")
    return patient
