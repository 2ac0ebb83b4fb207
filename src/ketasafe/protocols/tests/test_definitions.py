"""Shipped protocols and clinic versions: a clinic may tighten, never widen, a hard limit."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, fields, replace
from decimal import Decimal

import pytest

from ketasafe.protocols.definitions import (
    PROTOCOL_IDS,
    SHIPPED_PROTOCOLS,
    SHIPPED_VERSION,
    CoursePhase,
    ProtocolDefinition,
    VitalsCheckpoint,
    get_protocol,
)
from ketasafe.protocols.dosing import compute_dose
from ketasafe.protocols.exceptions import DoseOutOfRange, ProtocolLimitError, UnknownProtocol

DEP = get_protocol("iv-ketamine-depression")
CRPS = get_protocol("iv-ketamine-crps")
TRD = get_protocol("esketamine-trd")
MDSI = get_protocol("esketamine-mdsi")


def test_the_four_contract_protocols_are_shipped() -> None:
    # contracts/screening-rules-v1.md, "Protocols it knows".
    assert PROTOCOL_IDS == (
        "esketamine-mdsi", "esketamine-trd", "iv-ketamine-crps", "iv-ketamine-depression",
    )  # fmt: skip
    assert {p.kind for p in (TRD, MDSI)} == {"esketamine"}
    assert {p.kind for p in (DEP, CRPS)} == {"iv"}
    assert all(p.version_label == SHIPPED_VERSION for p in SHIPPED_PROTOCOLS.values())


def test_unknown_protocol() -> None:
    with pytest.raises(UnknownProtocol, match="unknown protocol 'spravato'"):
        get_protocol("spravato")


def test_definitions_are_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        DEP.title = "x"  # type: ignore[misc]


def test_shipped_limits_match_the_facts() -> None:
    assert DEP.iv is not None and CRPS.iv is not None and TRD.esketamine is not None
    assert (DEP.iv.dose_per_kg_min, DEP.iv.dose_per_kg_default, DEP.iv.dose_per_kg_max) == (
        Decimal("0.1"), Decimal("0.5"), Decimal("0.75"),
    )  # fmt: skip
    assert CRPS.iv.infusion_minutes_fixed and CRPS.iv.infusion_minutes_default == 240
    assert TRD.esketamine.allowed_doses_mg == (56, 84)
    assert TRD.esketamine.session_1_dose_mg == 56
    assert MDSI.esketamine is not None and MDSI.esketamine.session_1_dose_mg == 84
    # facts 2.3 (Emory): every 10 min during, every 15 min after the infusion.
    assert (DEP.vitals.every_min_during_infusion, DEP.vitals.every_min_after_infusion) == (10, 15)
    assert VitalsCheckpoint("post-dose", 40) in TRD.vitals.checkpoints  # facts 1.5


def test_unconfirmed_settings_are_clinic_settings() -> None:
    # facts 2.1: IV course frequency and length are [U].
    assert {"phases", "min_interval_hours", "course_length_default"} <= DEP.clinic_settings
    # facts 1.3: the esketamine phase frequencies are the label's, not a clinic choice.
    assert "phases" not in TRD.clinic_settings
    assert "min_interval_hours" in TRD.clinic_settings
    assert DEP.source("every_min_during_infusion").status == "C"
    assert CRPS.source("every_min_during_infusion").status == "U"  # facts 3: not retrieved


@pytest.mark.parametrize("protocol", list(SHIPPED_PROTOCOLS.values()), ids=PROTOCOL_IDS)
def test_every_setting_has_one_source_citing_the_facts_or_the_contract(protocol: ProtocolDefinition) -> None:
    names = [s.setting for s in protocol.sources]
    assert len(names) == len(set(names))
    settable = {f.name for part in protocol.components for f in fields(part)}
    assert set(names) <= settable
    fixed_by_design = {"dose_basis", "infusion_minutes_fixed", "dose_mg_default"} | {"concentration_mg_per_ml_default"}
    unsourced = settable - set(names) - fixed_by_design - {
        "every_min_during_infusion", "every_min_after_infusion",  # None for esketamine
        "final_volume_ml_default",
    }  # fmt: skip
    assert unsourced == set()
    assert all(s.cite.startswith(("facts", "contracts", "no source")) for s in protocol.sources)


# --- derive: within the limits -------------------------------------------------------------


def test_clinic_may_lower_the_iv_maximum_and_dosing_then_enforces_it() -> None:
    clinic = DEP.derive("clinic-2026-01", mg_per_kg_max="0.6")
    assert clinic.version_label == "clinic-2026-01"
    assert clinic.iv is not None and clinic.iv.dose_per_kg_max == Decimal("0.6")
    assert compute_dose(clinic, weight_kg=80, mg_per_kg="0.6").dose_mg == Decimal("48.0")
    with pytest.raises(DoseOutOfRange, match="--mg-per-kg 0.61 is outside .* 0.1-0.6 mg/kg"):
        compute_dose(clinic, weight_kg=80, mg_per_kg="0.61")
    assert DEP.iv is not None and DEP.iv.dose_per_kg_max == Decimal("0.75")  # shipped unchanged


@pytest.mark.parametrize(
    ("protocol", "changes"),
    [
        (DEP, {"mg_per_kg_max": "0.75"}),  # equal to the limit
        (DEP, {"mg_per_kg_min": "0.2", "weight_kg_max": 200, "weight_kg_min": 40}),
        (DEP, {"concentrations_mg_per_ml": ["10", "50"]}),
        (DEP, {"infusion_minutes_max": 60, "final_volume_ml_min": 100}),
        (DEP, {"every_min_during_infusion": 5, "every_min_after_infusion": 10}),
        (DEP, {"checkpoints": (*DEP.vitals.checkpoints, VitalsCheckpoint("mid", 20))}),
        (DEP, {"phases": (CoursePhase("series", 1, None, 4, max_is_clinic_setting=True),)}),
        (DEP, {"min_interval_hours": 20, "course_length_default": 8}),
        (DEP, {"reassessment_after_week": 2}),  # a gate the shipped protocol lacks
        (CRPS, {"mg_per_kg_per_h_max": "0.3", "mg_per_kg_per_h_default": "0.3"}),
        (CRPS, {"final_volume_ml_default": 100}),
        (TRD, {"allowed_doses_mg": [28, 56, 84]}),  # facts 1.3, ex-US: 28 mg at >= 65
        (TRD, {"allowed_doses_mg": (56,)}),
        (TRD, {"session_1_dose_mg": 28, "allowed_doses_mg": (28, 56, 84)}),
        (TRD, {"min_monitoring_min": 180, "minutes_between_devices": 10}),
        (TRD, {"reassessment_after_week": 3, "min_interval_hours": 72}),
        (TRD, {"title": "Our TRD pathway"}),
        (MDSI, {"session_1_dose_mg": 56, "dose_mg_default": 56}),  # facts 1.3: tolerability
    ],
)
def test_changes_within_the_hard_limits_are_accepted(protocol: ProtocolDefinition, changes: dict[str, object]) -> None:
    clinic = protocol.derive("clinic-1", **changes)
    assert clinic.version_label == "clinic-1"
    assert clinic != protocol


def test_derived_versions_are_checked_against_the_shipped_protocol() -> None:
    narrowed = DEP.derive("v1", mg_per_kg_max="0.6")
    widened_back = narrowed.derive("v2", mg_per_kg_max="0.75")  # still within shipped
    assert widened_back.iv is not None and widened_back.iv.dose_per_kg_max == Decimal("0.75")
    with pytest.raises(ProtocolLimitError, match="0.8 is above the shipped limit 0.75"):
        narrowed.derive("v3", mg_per_kg_max="0.8")


def test_constructing_a_shipped_id_with_wider_limits_is_refused() -> None:
    assert DEP.iv is not None
    with pytest.raises(ProtocolLimitError, match="mg_per_kg_max 1 is above"):
        replace(DEP, iv=replace(DEP.iv, dose_per_kg_max=Decimal("1")))


# --- derive: outside the limits ------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "changes", "setting", "message"),
    [
        (DEP, {"mg_per_kg_max": "0.76"}, "mg_per_kg_max", "above the shipped limit 0.75"),
        (DEP, {"mg_per_kg_min": "0.05"}, "mg_per_kg_min", "below the shipped limit 0.1"),
        (DEP, {"mg_per_kg_max": "0.4"}, "mg_per_kg_default", "0.5 is outside its range"),
        (DEP, {"weight_kg_max": 351}, "weight_kg_max", "above the shipped limit 350"),
        (DEP, {"weight_kg_min": "19.5"}, "weight_kg_min", "below the shipped limit 20"),
        (DEP, {"concentrations_mg_per_ml": ["10", "20"]}, "concentrations_mg_per_ml", "subset"),
        (DEP, {"concentrations_mg_per_ml": []}, "concentrations_mg_per_ml", "non-empty"),
        (
            DEP,
            {"concentrations_mg_per_ml": ["50"]},
            "concentration_mg_per_ml_default",
            "not an allowed strength",
        ),
        (DEP, {"infusion_minutes_min": 30}, "infusion_minutes_min", "below the shipped limit 40"),
        (DEP, {"final_volume_ml_max": 300}, "final_volume_ml_max", "above the shipped limit"),
        (DEP, {"dose_basis": "mg_per_kg_per_h"}, "dose_basis", "is fixed"),
        (DEP, {"every_min_during_infusion": 20}, "every_min_during_infusion", "above"),
        (DEP, {"checkpoints": ()}, "checkpoints", "never drop"),
        (
            DEP,
            {"phases": (CoursePhase("series", 1, None, 8, max_is_clinic_setting=True),)},
            "phases",
            "above the limit 7",
        ),
        (DEP, {"min_interval_hours": 12}, "min_interval_hours", "outside the allowed range 20"),
        (DEP, {"course_length_default": 0}, "course_length_default", "outside"),
        (DEP, {"reassessment_after_week": 0}, "reassessment_after_week", "week 1 or later"),
        (CRPS, {"mg_per_kg_per_h_max": "0.4"}, "mg_per_kg_per_h_max", "above"),
        (CRPS, {"infusion_minutes_max": 300}, "infusion_minutes_max", "above"),
        (CRPS, {"infusion_minutes_fixed": False}, "infusion_minutes_fixed", "is fixed"),
        (TRD, {"allowed_doses_mg": (56, 84, 112)}, "allowed_doses_mg", "28 mg steps up to 84"),
        (TRD, {"allowed_doses_mg": (56, 70)}, "allowed_doses_mg", "28 mg steps"),
        (TRD, {"allowed_doses_mg": ()}, "allowed_doses_mg", "28 mg steps"),
        (TRD, {"session_1_dose_mg": 84}, "session_1_dose_mg", "above the shipped limit 56"),
        (TRD, {"dose_mg_default": 28}, "dose_mg_default", "not one of the allowed doses"),
        (TRD, {"allowed_doses_mg": (84,)}, "dose_mg_default", "not one of the allowed doses"),
        (TRD, {"device_mg": 14}, "device_mg", "is fixed at 28"),
        (TRD, {"max_dose_mg": 112}, "max_dose_mg", "is fixed at 84"),
        (TRD, {"min_monitoring_min": 119}, "min_monitoring_min", "below the shipped limit 120"),
        (TRD, {"minutes_between_devices": 4}, "minutes_between_devices", "below"),
        (TRD, {"every_min_during_infusion": 10}, "every_min_during_infusion", "above"),
        (TRD, {"continuous_pulse_oximetry": False}, "continuous_pulse_oximetry", "is fixed"),
        (
            TRD,
            {"phases": (CoursePhase("induction", 1, 4, 3), *TRD.course.phases[1:])},
            "phases",
            "induction: 3 sessions per 7 days is above the limit 2",
        ),
        (
            TRD,
            {"phases": (CoursePhase("induction", 1, 6, 2), *TRD.course.phases[1:])},
            "phases",
            "keep the shipped phases",
        ),
        (TRD, {"reassessment_after_week": 5}, "reassessment_after_week", "not later"),
        (TRD, {"reassessment_after_week": None}, "reassessment_after_week", "or be removed"),
        (MDSI, {"session_1_dose_mg": 112}, "session_1_dose_mg", "above"),
    ],
)
def test_changes_outside_the_hard_limits_are_refused_naming_the_limit(
    protocol: ProtocolDefinition,
    changes: dict[str, object],
    setting: str,
    message: str,
) -> None:
    with pytest.raises(ProtocolLimitError, match=message) as caught:
        protocol.derive("clinic-1", **changes)
    assert caught.value.setting == setting
    assert setting in str(caught.value) and protocol.id in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mg_per_kg_per_h_max": "0.3"}, "mg_per_kg_per_h_max is not a setting"),
        ({"maximum_dose": 1}, "maximum_dose is not a setting"),
        ({"mg_per_kg_max": "lots"}, "not a valid value"),
        ({"mg_per_kg_max": True}, "not a valid value"),
        ({"min_interval_hours": "48.5"}, "must be a whole number"),
        ({"concentrations_mg_per_ml": "10"}, "not a valid value"),
        ({"phases": ("series",)}, "not a valid value"),
        ({"title": ""}, "not a valid value"),
    ],
)
def test_malformed_changes_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolLimitError, match=message):
        DEP.derive("clinic-1", **changes)


def test_a_clinic_version_needs_a_label() -> None:
    with pytest.raises(ProtocolLimitError, match="version label"):
        DEP.derive("  ", mg_per_kg_max="0.6")


# --- the IV discharge minimum ----------------------------------------------------------------


@pytest.mark.parametrize("protocol", [DEP, CRPS], ids=["depression", "crps"])
def test_iv_discharge_minimum_is_its_own_setting_a_clinic_may_only_raise(protocol: ProtocolDefinition) -> None:
    assert protocol.iv is not None and protocol.iv.min_monitoring_after_infusion_min == 15
    raised = protocol.derive("clinic", min_monitoring_after_infusion_min=30)
    assert raised.iv is not None and raised.iv.min_monitoring_after_infusion_min == 30
    with pytest.raises(ProtocolLimitError, match="min_monitoring_after_infusion_min 10 is below the shipped limit 15"):
        protocol.derive("clinic", min_monitoring_after_infusion_min=10)
    # tightening the check interval leaves the discharge minimum where it was
    tighter = protocol.derive("clinic", every_min_after_infusion=5)
    assert tighter.iv is not None and tighter.iv.min_monitoring_after_infusion_min == 15
