"""Intake builders for the screening tests: a clean baseline intake (no findings) that each test
changes in one place, so the rule under test is the only thing that can fire."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from ketasafe.screening.intake import Intake, parse_intake
from ketasafe.screening.rules import DEFAULT_V1, Finding, RuleSet, screen

ASSESSED_ON = date(2026, 11, 24)

# Male, 46, no vitals, nothing recorded: screens eligible with no findings.
BASELINE: dict[str, Any] = {
    "protocol": "esketamine-trd",
    "assessed_on": ASSESSED_ON.isoformat(),
    "patient": {"birth_date": "1980-05-01", "sex": "male", "weight_kg": 70.0},
}

CONTRACT_EXAMPLE: dict[str, Any] = {
    "protocol": "esketamine-trd",
    "assessed_on": "2026-11-24",
    "patient": {"birth_date": "1980-05-01", "sex": "female", "weight_kg": 70.0,
                "height_cm": 165.0, "pregnant": False, "breastfeeding": False},
    "vitals": {"systolic": 128, "diastolic": 82, "heart_rate": 72, "spo2": 98},
    "hepatic_impairment": "none",
    "conditions": [{"system": "icd-10-cm", "code": "F33.2", "status": "active"}],
    "medications": [{"atc": "N06AB10", "name": "escitalopram"}],
    "allergies": [{"substance": "penicillin"}],
    "scales": {"phq9": [2, 2, 1, 2, 1, 2, 1, 1, 1],
               "cssrs_screen": [1, 0, 0, 0, 0, 0, 0]},
}


def born_aged(years: int, *, day_before_birthday: bool = False) -> str:
    """A birth date giving exactly ``years`` on ASSESSED_ON (or one less with the flag)."""
    birth = ASSESSED_ON.replace(year=ASSESSED_ON.year - years)
    if day_before_birthday:
        birth = birth.replace(day=birth.day + 1)
    return birth.isoformat()


def data(patient: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    """BASELINE with top-level keys replaced and patient keys merged."""
    out = copy.deepcopy(BASELINE)
    out.update(copy.deepcopy(top))
    if patient:
        out["patient"].update(patient)
    return out


def build(patient: dict[str, Any] | None = None, **top: Any) -> Intake:
    return parse_intake(data(patient, **top))


def cond(code: str, status: str = "active") -> dict[str, str]:
    return {"system": "icd-10-cm", "code": code, "status": status}


def findings(intake: Intake, ruleset: RuleSet = DEFAULT_V1) -> dict[str, Finding]:
    return {f.rule: f for f in screen(intake, ruleset).findings}


def fired(patient: dict[str, Any] | None = None, **top: Any) -> dict[str, Finding]:
    return findings(build(patient, **top))
