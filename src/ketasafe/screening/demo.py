"""Demo clinic part for issue 3: screenings at every state, consent versions, signatures.

All through the services (so everything is audited), except that a few signature times are moved
into the past afterwards to show expired screenings: demo data only, never done by the app.
Idempotent: does nothing when demo screenings exist.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
import zlib
from typing import Any

from django.db import transaction
from django.utils import timezone

from ketasafe.clinic.demo_data import DemoContext
from ketasafe.consent import services as consent_services
from ketasafe.consent.models import ConsentVersion, Kind
from ketasafe.patients import services as patient_services
from ketasafe.patients.models import Medication, Patient

from . import services
from .exceptions import IntakeInvalid
from .models import Screening

JUSTIFY = "Reviewed at intake; benefit judged to outweigh the risk with closer monitoring."

CONSENT_TEXT = {
    "treatment": (
        "You are agreeing to supervised treatment with {drug} at this clinic.\n\n"
        "What to expect: during and after each dose you may feel detached or unreal (dissociation), "
        "drowsy (sedation), dizzy or sick, and your blood pressure may rise. Staff will check your blood "
        "pressure and oxygen and observe you until these effects have passed{monitoring}.\n\n"
        "Safety: do not drive or operate machinery until the next day after a restful sleep. Arrange for "
        "someone to take you home. Tell us about every medicine you take, any pregnancy, and any change in "
        "your health before each visit.\n\n"
        "Your choice: you can stop treatment and withdraw this consent at any time, and it takes effect at "
        "once. This will not affect the rest of your care."
    ),
    "rems": (
        "SPRAVATO REMS patient enrollment.\n\n"
        "I understand that SPRAVATO is given only in a certified healthcare setting, that I will take it "
        "under direct observation, and that I will be monitored for at least 2 hours after each dose and "
        "until I am safe to leave. I will not drive or operate machinery until the next day after a restful "
        "sleep. I have been counselled about sedation, dissociation, respiratory depression, and abuse and "
        "misuse. I agree to be enrolled in the SPRAVATO REMS. The prescriber signs this enrollment with me."
    ),
}
DRUG = {"esketamine-trd": "esketamine nasal spray (SPRAVATO)", "esketamine-mdsi": "esketamine nasal spray (SPRAVATO)",
        "iv-ketamine-depression": "intravenous ketamine for depression",
        "iv-ketamine-crps": "intravenous ketamine for complex regional pain syndrome"}


def squiggle_png(seed: int, width: int = 300, height: int = 90) -> bytes:
    """A synthetic handwritten-looking stroke as an RGBA PNG (no image library needed)."""
    pixels = bytearray(width * height * 4)
    for x in range(10, width - 10):
        y = int(height / 2 + 22 * math.sin(x / (9 + seed % 5)) * math.cos(x / 37))
        for dy in (-1, 0, 1):
            offset = ((y + dy) * width + x) * 4
            pixels[offset:offset + 4] = b"\x10\x10\x40\xff"
    raw = b"".join(b"\x00" + bytes(pixels[r * width * 4:(r + 1) * width * 4]) for r in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _protocol_for(patient: Patient, i: int) -> str:
    codes = set(patient.problems.values_list("icd10_code", flat=True))
    if "G90.50" in codes:
        return "iv-ketamine-crps"
    return "esketamine-trd" if i % 2 else "iv-ketamine-depression"


def _intake(ctx: DemoContext, i: int) -> dict[str, Any]:
    rng = ctx.rng
    phq = [rng.randint(1, 3) for _ in range(8)] + [1 if i % 9 == 4 else 0]
    return {"systolic": rng.randint(112, 136), "diastolic": rng.randint(70, 86), "heart_rate": rng.randint(58, 92),
            "spo2": rng.randint(96, 99), "phq9": phq, "cssrs_screen": [0, 0, 0, 0, 0, 0, 0],
            "drug_screen": "negative", "hepatic_impairment": "none",
            "substance_use_history": "Alcohol socially; no other substances." if i % 3 else ""}


def _backdate(screening: Screening, signed_at: dt.datetime) -> None:
    Screening.objects.filter(pk=screening.pk).update(
        started_at=signed_at - dt.timedelta(hours=2), completed_at=signed_at - dt.timedelta(hours=1),
        signed_at=signed_at, assessed_on=signed_at.date())
    Patient.objects.filter(pk=screening.patient_id).update(clinical_changed_at=signed_at - dt.timedelta(days=3))


def _publish(ctx: DemoContext, protocol: str, kind: str, title: str, text: str, effective: dt.date) -> ConsentVersion:
    version = consent_services.do_create_version(actor=ctx.staff["admin"], protocol=protocol, kind=kind, title=title,
                                                 body=text, effective_date=effective)
    return consent_services.do_publish_version(actor=ctx.staff["admin"], version=version)


@transaction.atomic
def load(ctx: DemoContext) -> None:
    if Screening.objects.filter(patient__mrn__startswith="DEMO-").exists():
        return
    nurse, nurse2, desk = ctx.staff["nurse"], ctx.staff["nurse2"], ctx.staff["frontdesk"]
    prescribers = [ctx.staff["prescriber"], ctx.staff["prescriber2"]]
    year_ago = ctx.today - dt.timedelta(days=400)

    # Consent documents: a treatment consent per protocol, REMS enrollment for esketamine.
    current: dict[tuple[str, str], ConsentVersion] = {}
    for protocol, drug in DRUG.items():
        monitoring = " (at least 2 hours for esketamine, as the REMS requires)" if protocol.startswith("esk") else ""
        current[(protocol, Kind.TREATMENT)] = _publish(
            ctx, protocol, Kind.TREATMENT, f"Consent to treatment: {drug}",
            CONSENT_TEXT["treatment"].format(drug=drug, monitoring=monitoring), year_ago)
        if protocol.startswith("esketamine"):
            current[(protocol, Kind.REMS_ENROLLMENT)] = _publish(
                ctx, protocol, Kind.REMS_ENROLLMENT, "SPRAVATO REMS Patient Enrollment", CONSENT_TEXT["rems"], year_ago)

    by_mrn = {p.mrn: p for p in ctx.patients}
    signed: list[Screening] = []
    for i in range(1, 31):
        patient = by_mrn.get(f"DEMO-{i:04d}")
        if patient is None:
            continue
        protocol = _protocol_for(patient, i)
        starter = desk if i % 3 == 0 else nurse
        first_problem = patient.problems.order_by("id").first()
        indication = first_problem.description if first_problem else "Depression"
        screening = services.do_start_intake(actor=starter, patient=patient, protocol=protocol, indication=indication)
        if i == 28:
            continue  # left as a draft intake
        try:
            screening = services.do_complete_screening(actor=nurse2 if i % 2 else nurse, screening=screening,
                                                       assessed_on=ctx.today, **_intake(ctx, i))
        except IntakeInvalid:
            continue
        if i in (29, 30):
            continue  # awaiting a prescriber's sign-off
        prescriber = prescribers[i % 2]
        if screening.outcome == "ineligible":
            rules = ", ".join(f["rule"] for f in screening.findings if f["severity"] == "contraindication")
            reason = f"Contraindicated ({rules}); discussed alternatives with the patient."
            services.do_record_not_treated(actor=prescriber, screening=screening, reason=reason)
            continue
        justifications = {f["rule"]: JUSTIFY for f in screening.warnings}
        signed.append(services.do_sign_screening(actor=prescriber, screening=screening, justifications=justifications))

    now = timezone.now()
    # Expired: two signed 13 months ago. Stale: two whose medications changed after signing.
    for screening in signed[:2]:
        _backdate(screening, now - dt.timedelta(days=396))
    for screening in signed[2:4]:
        patient_services.do_add_record(actor=nurse, patient=screening.patient, model=Medication,
                                       atc_code="N05BA06", name="lorazepam", dose="0.5 mg as needed")

    # Consents for the currently eligible patients; REMS for most esketamine ones; one withdrawn.
    eligible = signed[4:]
    for n, screening in enumerate(eligible):
        patient, protocol = screening.patient, screening.protocol
        if n % 5 == 4:
            continue  # screened but consent not yet signed
        witness = nurse if n % 2 else nurse2
        consent_services.do_sign_consent(
            actor=witness, version=current[(protocol, Kind.TREATMENT)], patient=patient,
            typed_name=patient.full_name, signature_png=squiggle_png(n), witness=witness)
        if protocol.startswith("esketamine") and n % 3 != 2:
            consent_services.do_sign_consent(
                actor=witness, version=current[(protocol, Kind.REMS_ENROLLMENT)], patient=patient,
                typed_name=patient.full_name, signature_png=squiggle_png(n + 1), witness=witness,
                prescriber=screening.signed_by)
    withdrawn = next((s for s in eligible[1:] if s.patient.consent_signatures.exists()), None)
    if withdrawn is not None:
        sig = withdrawn.patient.consent_signatures.filter(version__document__kind=Kind.TREATMENT).first()
        if sig is not None:
            consent_services.do_withdraw(actor=nurse, signature=sig, reason="Patient decided not to go ahead for now.")
    # A revised CRPS consent published today: earlier CRPS signatures are now stale.
    crps = current[("iv-ketamine-crps", Kind.TREATMENT)]
    _publish(ctx, "iv-ketamine-crps", Kind.TREATMENT, crps.title + " (revised)",
             crps.body + "\n\nRevised: infusions last about 4 hours; bring something to read.", ctx.today)
