"""Vital-sign alert rules. Pure (STYLE.md 1): values in, findings out; time is a parameter.

Every threshold is a field of ``AlertThresholds`` with its source in the field metadata
(``threshold_notes()``); ``[U]`` marks a default that no guideline fixes, which a clinic should
review and may change. Comparisons (issue 5): systolic >= 180, diastolic >= 110, SpO2 < 92,
heart rate > 110 or < 50, respiratory rate < 8, a rise from the session baseline of >= 40 mmHg
systolic or >= 25 mmHg diastolic, and no numerics for >= 180 s while dosing or monitoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from ketasafe.monitoring.hl7.codes import VitalKind

AlertCode = Literal[
    "SBP_HIGH", "DBP_HIGH", "SPO2_LOW", "HR_HIGH", "HR_LOW", "RR_LOW", "SBP_RISE", "DBP_RISE"
]

# Session states in which the monitor must be feeding numerics (issue 5: "a chair in dosing or
# monitoring"). The session state machine owns the names; these must match its values.
STALE_FEED_STATES = frozenset({"dosing", "monitoring"})


def _t(default: int, source: str) -> Decimal:
    # A dataclass field whose metadata carries its source; read back by threshold_notes().
    return field(default=Decimal(default), metadata={"source": source})


@dataclass(frozen=True, slots=True)
class AlertThresholds:
    """Alert thresholds in mm[Hg], %, /min and seconds. A clinic configures its own copy."""

    systolic_high: Decimal = _t(180, (
        "[U] alert at >= 180 mmHg. clinical-facts §2.3: a subcutaneous-esketamine study defined "
        "transient hypertension as SBP > 180 [S]; the Sanacora 2017 >180/100 during treatment is "
        "unconfirmed [U]. Inclusive per issue 5, so one mmHg earlier than the study."
    ))  # fmt: skip
    diastolic_high: Decimal = _t(110, (
        "[U] alert at >= 110 mmHg. clinical-facts §2.3: DBP > 110 in the same study [S] and the "
        "180/110 clinic rule [S, low quality]."
    ))  # fmt: skip
    spo2_low: Decimal = _t(92, (
        "[U] alert below 92 %. Issue 5 default. clinical-facts §1.6: pulse oximetry at every "
        "session (label, REMS); trials reported SpO2 < 93 % on >= 2 readings in < 3 %."
    ))  # fmt: skip
    hr_high: Decimal = _t(110, (
        "[U] alert above 110 /min. clinical-facts §2.3: 'HR > 110 during treatment' is quoted "
        "from Sanacora 2017 but unconfirmed; treat as clinic configuration."
    ))  # fmt: skip
    hr_low: Decimal = _t(50, (
        "[U] alert below 50 /min. Issue 5 default; no source in the clinical fact sheet."
    ))  # fmt: skip
    rr_low: Decimal = _t(8, (
        "[U] alert below 8 /min. Issue 5 default; respiratory depression is on the label since "
        "2023 (clinical-facts §1.6) but no rate threshold is given there."
    ))  # fmt: skip
    rise_systolic: Decimal = _t(40, (
        "[U] alert at a rise >= 40 mmHg over the session baseline. clinical-facts §1.5: 8-19 % "
        "of trial patients had a rise of > 40 mmHg systolic [S, quoting the PI]; inclusive here "
        "so that the same number means the same comparison as the absolute BP thresholds."
    ))  # fmt: skip
    rise_diastolic: Decimal = _t(25, (
        "[U] alert at a rise >= 25 mmHg over the session baseline. clinical-facts §1.5: > 25 "
        "mmHg diastolic [S, quoting the PI]; inclusive as above."
    ))  # fmt: skip
    stale_after_s: Decimal = _t(180, (
        "Issue 5: no numerics for 3 minutes from a chair in dosing or monitoring. Monitors send "
        "about one message a minute (IHE DEC, conformance README), so 3 missed messages."
    ))  # fmt: skip


DEFAULT_THRESHOLDS = AlertThresholds()


def threshold_notes() -> dict[str, str]:
    """Field name -> source note, for the admin form and the docs."""
    return {f.name: str(f.metadata["source"]) for f in fields(AlertThresholds)}


# Sanity bounds of each threshold (mmHg, %, /min, seconds): not clinical advice, only the range
# outside which a value would switch its alarm off in practice (systolic_high 9999) or make it
# fire for every patient. A clinic choosing a value outside needs a code change, on purpose.
# The one definition: the rule-set model's clean() (so every caller: the form, the service, the
# Django admin) and the form's help text read it.
THRESHOLD_BOUNDS: dict[str, tuple[Decimal, Decimal, str]] = {
    "systolic_high": (Decimal(140), Decimal(220), "mmHg"),
    "diastolic_high": (Decimal(80), Decimal(130), "mmHg"),
    "spo2_low": (Decimal(80), Decimal(97), "%"),
    "hr_high": (Decimal(90), Decimal(160), "/min"),
    "hr_low": (Decimal(30), Decimal(60), "/min"),
    "rr_low": (Decimal(4), Decimal(12), "/min"),
    "rise_systolic": (Decimal(10), Decimal(80), "mmHg"),
    "rise_diastolic": (Decimal(10), Decimal(50), "mmHg"),
    "stale_after_s": (Decimal(60), Decimal(600), "s"),
}


def threshold_errors(values: Mapping[str, Decimal | None]) -> dict[str, str]:
    """Field name -> why its value cannot be a threshold (outside its sanity bounds, or a low
    heart-rate limit not below the high one). A missing or None value is not judged here (it is
    the field's own "required" error)."""
    errors: dict[str, str] = {}
    for name, (low, high, unit) in THRESHOLD_BOUNDS.items():
        value = values.get(name)
        if value is not None and not low <= value <= high:
            errors[name] = f"Must be between {low} and {high} {unit} (sanity bounds)."
    hr_low, hr_high = values.get("hr_low"), values.get("hr_high")
    if hr_low is not None and hr_high is not None and "hr_low" not in errors and hr_low >= hr_high:
        errors["hr_low"] = "Must be below the high heart-rate limit."
    return errors


@dataclass(frozen=True, slots=True)
class AlertFinding:
    """One rule that fired. For a rise, ``value`` is the rise in mmHg, ``threshold`` the rise
    that alerts and ``baseline`` the session's baseline reading."""

    code: AlertCode
    kind: VitalKind
    value: Decimal
    threshold: Decimal
    message: str
    baseline: Decimal | None = None


def evaluate_vitals(
    vitals: Mapping[VitalKind, Decimal],
    baseline: Mapping[VitalKind, Decimal] | None = None,
    thresholds: AlertThresholds = DEFAULT_THRESHOLDS,
) -> list[AlertFinding]:
    """Check the latest reading of each kind. ``vitals`` holds converted values (UCUM units of
    ``codes.map_observation``); a kind that is absent is not judged. The heart-rate rules judge
    ``heart_rate`` and ``pulse_rate`` each (HR_HIGH/HR_LOW with the kind that is abnormal): an
    abnormal pulse is never hidden by a normal ECG rate. Findings come in a fixed order."""
    th = thresholds
    found: list[AlertFinding] = []

    def check(code: AlertCode, kind: VitalKind, fires: bool, limit: Decimal, text: str) -> None:
        if fires:
            found.append(AlertFinding(code, kind, vitals[kind], limit, text))

    sbp, dbp = vitals.get("systolic"), vitals.get("diastolic")
    spo2, rr = vitals.get("spo2"), vitals.get("resp_rate")
    if sbp is not None:
        check("SBP_HIGH", "systolic", sbp >= th.systolic_high, th.systolic_high,
              f"Systolic {sbp} mmHg is at or above {th.systolic_high}")  # fmt: skip
    if dbp is not None:
        check("DBP_HIGH", "diastolic", dbp >= th.diastolic_high, th.diastolic_high,
              f"Diastolic {dbp} mmHg is at or above {th.diastolic_high}")  # fmt: skip
    if spo2 is not None:
        check("SPO2_LOW", "spo2", spo2 < th.spo2_low, th.spo2_low,
              f"SpO2 {spo2} % is below {th.spo2_low}")  # fmt: skip
    hr_kinds: tuple[tuple[VitalKind, str], ...] = (("heart_rate", "Heart rate"), ("pulse_rate", "Pulse rate"))
    for hr_kind, hr_label in hr_kinds:
        hr = vitals.get(hr_kind)
        if hr is None:
            continue
        check("HR_HIGH", hr_kind, hr > th.hr_high, th.hr_high,
              f"{hr_label} {hr} /min is above {th.hr_high}")  # fmt: skip
        check("HR_LOW", hr_kind, hr < th.hr_low, th.hr_low,
              f"{hr_label} {hr} /min is below {th.hr_low}")  # fmt: skip
    if rr is not None:
        check("RR_LOW", "resp_rate", rr < th.rr_low, th.rr_low,
              f"Respiratory rate {rr} /min is below {th.rr_low}")  # fmt: skip
    if baseline:
        found += _rises(vitals, baseline, th)
    return found


def _rises(
    vitals: Mapping[VitalKind, Decimal],
    baseline: Mapping[VitalKind, Decimal],
    th: AlertThresholds,
) -> list[AlertFinding]:
    found: list[AlertFinding] = []
    rules: tuple[tuple[AlertCode, VitalKind, Decimal, str], ...] = (
        ("SBP_RISE", "systolic", th.rise_systolic, "Systolic"),
        ("DBP_RISE", "diastolic", th.rise_diastolic, "Diastolic"),
    )
    for code, kind, limit, label in rules:
        now_value, base = vitals.get(kind), baseline.get(kind)
        if now_value is None or base is None:
            continue
        rise = now_value - base
        if rise >= limit:
            message = (
                f"{label} {now_value} mmHg is {rise} mmHg above the session baseline {base} "
                f"(alert at +{limit})"
            )
            found.append(AlertFinding(code, kind, rise, limit, message, baseline=base))
    return found


def is_feed_stale(
    last_numeric_at: datetime | None,
    now: datetime,
    state: str,
    thresholds: AlertThresholds = DEFAULT_THRESHOLDS,
    *,
    state_since: datetime | None = None,
) -> bool:
    """True when a chair in ``dosing`` or ``monitoring`` has sent no numerics for
    ``stale_after_s`` seconds or more (at exactly 180 s it is stale).

    The clock starts at the later of the last numeric and ``state_since`` (when the session
    entered its state), so a chair is not stale the moment dosing starts; with neither known it
    is stale at once. Other states are never stale. Datetimes must be aware.
    """
    if state not in STALE_FEED_STATES:
        return False
    marks = [t for t in (last_numeric_at, state_since) if t is not None]
    if not marks:
        return True
    return now - max(marks) >= timedelta(seconds=float(thresholds.stale_after_s))
