"""Screening rules: an Intake in, a Decision out (contracts/screening-rules-v1.md). Pure.

No Django import and no clock: the assessment date is part of the intake. Thresholds that
clinical-facts marks unconfirmed [U] or clinician judgement live in a versioned RuleSet, never in
rule code (facts preamble: "store every threshold as versioned configuration that names its
source"). Code lists live in codes.py.

Invariants:
- ``default-v1`` never changes; a clinic derives a new named version.
- A derived rule set may raise a severity, never lower it (a lowered severity could let an
  ineligible patient through; a raised one only asks for more review).
- A rule fires at most once per screening and lists every matching code in its evidence.
- The output depends only on the intake's content, not on the order of its lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType

from ketasafe.outcomes.scales import score
from ketasafe.screening import codes
from ketasafe.screening.codes import CodeTable
from ketasafe.screening.exceptions import RuleSetInvalid
from ketasafe.screening.intake import ConditionStatus, HepaticImpairment, Intake, Sex

__all__ = [
    "DEFAULT_V1", "RULES", "THRESHOLDS", "Decision", "Finding", "Outcome", "RuleSet", "RuleSpec",
    "Severity", "ThresholdSpec", "age_on", "screen",
]


class Severity(StrEnum):
    CONTRAINDICATION = "contraindication"
    WARNING = "warning"
    CAUTION = "caution"

    @property
    def rank(self) -> int:
        """0 is the most severe: the order findings are listed in (contract, Output)."""
        return _RANK[self]


_RANK = {Severity.CONTRAINDICATION: 0, Severity.WARNING: 1, Severity.CAUTION: 2}


class Outcome(StrEnum):
    INELIGIBLE = "ineligible"  # any contraindication
    NEEDS_REVIEW = "needs_review"  # any warning, no contraindication
    ELIGIBLE = "eligible"  # a prescriber still signs it (contract)



@dataclass(frozen=True, slots=True)
class ThresholdSpec:
    key: str
    default: int
    hard_min: int  # a derived rule set may not go outside [hard_min, hard_max]
    hard_max: int
    unit: str
    description: str
    source: str


_THRESHOLD_SPECS = (
    ThresholdSpec("bp_crisis_systolic", 180, 150, 250, "mmHg",
                  "BP-CRISIS fires when systolic >= this",
                  "clinical-facts 2.3 [U]: clinic examples (>180/110), not a guideline value"),
    ThresholdSpec("bp_crisis_diastolic", 110, 90, 150, "mmHg",
                  "BP-CRISIS fires when diastolic >= this",
                  "clinical-facts 2.3 [U]: clinic examples (>180/110), not a guideline value"),
    ThresholdSpec("bp_high_systolic", 140, 110, 200, "mmHg",
                  "BP-HIGH fires when systolic > this (under the older-patient age)",
                  "clinical-facts 1.4: label example SBP >140, a clinician-judgement threshold"),
    ThresholdSpec("bp_high_systolic_older", 150, 110, 200, "mmHg",
                  "BP-HIGH fires when systolic > this at or above bp_high_older_age",
                  "clinical-facts 1.4: phase 3 TRD trials withheld at >150 in older patients"),
    ThresholdSpec("bp_high_older_age", 65, 50, 90, "years",
                  "age from which bp_high_systolic_older applies (contract: age >= 65)",
                  "clinical-facts 1.4 (trials: 'older than 65'); contract BP-HIGH"),
    ThresholdSpec("bp_high_diastolic", 90, 60, 130, "mmHg",
                  "BP-HIGH fires when diastolic > this",
                  "clinical-facts 1.4: label example DBP >90"),
    ThresholdSpec("tachycardia_heart_rate", 110, 80, 180, "/min",
                  "TACHYCARDIA fires when heart rate > this",
                  "clinical-facts 2.3 [U]: HR >110 quoted from Sanacora 2017, unconfirmed"),
    ThresholdSpec("low_spo2", 92, 85, 98, "%",
                  "LOW-SPO2 fires when SpO2 < this",
                  "clinical-facts 1.6 (trial SpO2 <93%), 4.10 (Aldrete >92% on room air); "
                  "clinic judgement"),
    ThresholdSpec("pregnancy_unknown_max_age", 55, 45, 65, "years",
                  "PREGNANCY-UNKNOWN fires for a female patient younger than this",
                  "contract PREGNANCY-UNKNOWN; clinic judgement, not in clinical-facts"),
    ThresholdSpec("age_caution", 65, 50, 90, "years",
                  "AGE-65-PLUS fires at age >= this",
                  "clinical-facts 1.3 (28 mg start at >=65 outside the US), 2.3 (older age "
                  "predicted BP rise)"),
)
THRESHOLDS: Mapping[str, ThresholdSpec] = MappingProxyType({t.key: t for t in _THRESHOLD_SPECS})

# Orderings a derived rule set must keep, or one rule would shadow another.
_THRESHOLD_ORDER = (("bp_high_systolic", "bp_crisis_systolic"),
                    ("bp_high_systolic_older", "bp_crisis_systolic"),
                    ("bp_high_diastolic", "bp_crisis_diastolic"))


_C, _W, _K = Severity.CONTRAINDICATION, Severity.WARNING, Severity.CAUTION


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    severity: Severity  # default in default-v1
    title: str
    message: str  # shown to staff with the finding
    source: str  # "clinical-facts X.Y"
    codes: tuple[CodeTable, ...] = ()
    thresholds: tuple[str, ...] = ()
    # Per-protocol severity that overrides the rule set's when it is more severe (contract
    # "protocols" column). Only ever raises: the effective severity is the more severe of the two.
    protocol_severities: Mapping[str, Severity] = field(
        default_factory=lambda: MappingProxyType({})
    )


def _r(rule_id: str, severity: Severity, title: str, message: str, source: str,
       tables: tuple[CodeTable, ...] = (), thresholds: tuple[str, ...] = (),
       protocols: Mapping[str, Severity] | None = None) -> RuleSpec:
    return RuleSpec(rule_id, severity, title, message, f"clinical-facts {source}", tables,
                    thresholds, MappingProxyType(dict(protocols or {})))


_RULE_SPECS = (
    _r("AGE-UNDER-18", _C, "Under 18", "Patient is under 18: not approved for under-18s", "1.1"),
    _r("ALLERGY-KETAMINE", _C, "Ketamine or esketamine allergy",
       "Recorded hypersensitivity to ketamine or esketamine", "1.7", (codes.ALLERGY_SUBSTANCES,)),
    _r("ANEURYSM", _C, "Aneurysmal vascular disease",
       "Aneurysmal vascular disease: contraindicated (BP rise)", "1.7", (codes.ANEURYSM,)),
    _r("AVM", _C, "Arteriovenous malformation",
       "Arteriovenous malformation: contraindicated (BP rise)", "1.7", (codes.AVM,)),
    _r("INTRACRANIAL-HEMORRHAGE", _C, "Intracranial haemorrhage",
       "History of intracranial haemorrhage: contraindicated", "1.7",
       (codes.INTRACRANIAL_HEMORRHAGE,)),
    _r("PREGNANCY", _C, "Pregnant", "Patient is pregnant: treatment not recommended", "1.8"),
    _r("PREGNANCY-UNKNOWN", _W, "Pregnancy status not recorded",
       "Pregnancy status is not recorded: confirm before treatment", "1.8",
       thresholds=("pregnancy_unknown_max_age",)),
    _r("BREASTFEEDING", _W, "Breastfeeding",
       "Patient is breastfeeding: not recommended; prescriber review", "1.8"),
    _r("PSYCHOSIS-ACTIVE", _C, "Active psychotic disorder",
       "Active psychotic disorder: do not treat", "1.8", (codes.PSYCHOSIS,)),
    _r("PSYCHOSIS-HISTORY", _W, "History of psychotic disorder",
       "History of psychotic disorder: assess benefit against risk", "1.8", (codes.PSYCHOSIS,)),
    _r("MANIA-ACTIVE", _C, "Current mania", "Current manic episode: do not treat", "2.2",
       (codes.MANIA,)),
    # Chronic-pain consensus: no serial infusions while substance abuse is active (facts 3), so
    # the CRPS protocol makes it a contraindication.
    _r("SUD-ACTIVE", _W, "Active substance use disorder",
       "Active substance use disorder: assess abuse risk; prescriber attestation needed", "1.8",
       (codes.SUBSTANCE_USE,), protocols={"iv-ketamine-crps": _C}),
    _r("SUD-HISTORY", _K, "History of substance use disorder",
       "History of substance use disorder: monitor for misuse", "5", (codes.SUBSTANCE_USE,)),
    _r("HEPATIC-SEVERE", _C, "Severe hepatic impairment",
       "Severe hepatic impairment (Child-Pugh C): not recommended", "1.8",
       (codes.HEPATIC_FAILURE,)),
    _r("HEPATIC-MODERATE", _W, "Moderate hepatic impairment",
       "Moderate hepatic impairment (Child-Pugh B): may need longer monitoring", "1.8"),
    _r("CARDIAC-UNSTABLE", _C, "Unstable cardiac disease",
       "Unstable angina, recent MI or acute heart failure: do not treat", "1.8",
       (codes.CARDIAC_UNSTABLE,)),
    _r("HEART-FAILURE", _W, "Heart failure",
       "Heart failure: weigh the risk of a BP rise", "1.8", (codes.HEART_FAILURE,)),
    _r("ARRHYTHMIA", _W, "Cardiac arrhythmia", "Cardiac arrhythmia: prescriber review", "2.2",
       (codes.ARRHYTHMIA,)),
    _r("RAISED-ICP", _W, "Raised intracranial pressure",
       "Raised intracranial pressure: a further rise could be a serious risk", "1.4",
       (codes.RAISED_ICP,)),
    _r("GLAUCOMA", _W, "Glaucoma", "Glaucoma: ketamine raises intraocular pressure", "3",
       (codes.GLAUCOMA,)),
    _r("CYSTITIS", _W, "Cystitis", "Cystitis: ketamine can cause bladder inflammation", "1.8",
       (codes.CYSTITIS,)),
    _r("BP-CRISIS", _C, "Blood pressure in crisis range",
       "Blood pressure in the crisis range: do not dose", "2.3",
       thresholds=("bp_crisis_systolic", "bp_crisis_diastolic")),
    _r("BP-HIGH", _W, "Blood pressure raised",
       "Blood pressure above the pre-dose limit: prescriber must weigh the BP rise", "1.4",
       thresholds=("bp_high_systolic", "bp_high_systolic_older", "bp_high_older_age",
                   "bp_high_diastolic")),
    _r("TACHYCARDIA", _W, "Tachycardia", "Heart rate above the pre-dose limit", "2.3",
       thresholds=("tachycardia_heart_rate",)),
    _r("LOW-SPO2", _W, "Low oxygen saturation", "SpO2 below the pre-dose limit", "1.6",
       thresholds=("low_spo2",)),
    _r("PHQ9-ITEM9", _W, "PHQ-9 item 9 positive",
       "PHQ-9 item 9 is positive: complete a C-SSRS and review before treatment", "4.1"),
    _r("CSSRS-HIGH-RISK", _W, "C-SSRS high risk",
       "C-SSRS screener gives high suicide risk: immediate evaluation and safety precautions",
       "4.6"),
    _r("BENZODIAZEPINE", _K, "Benzodiazepine",
       "Benzodiazepine: more sedation; may blunt the effect", "5", (codes.BENZODIAZEPINE,)),
    _r("Z-DRUG", _K, "Z-drug hypnotic", "Non-benzodiazepine hypnotic: more sedation", "5",
       (codes.Z_DRUG,)),
    _r("OPIOID", _K, "Opioid", "Opioid: more sedation and respiratory depression", "5",
       (codes.OPIOID,)),
    _r("STIMULANT", _K, "Psychostimulant", "Psychostimulant: monitor BP closely", "5",
       (codes.STIMULANT,)),
    _r("MAOI", _K, "MAO inhibitor", "MAO inhibitor: monitor BP closely", "5", (codes.MAOI,)),
    _r("LAMOTRIGINE", _K, "Lamotrigine", "Lamotrigine: may reduce ketamine's effects; record",
       "5", (codes.LAMOTRIGINE,)),
    _r("AGE-65-PLUS", _K, "Aged 65 or over",
       "Aged 65 or over: larger BP rise more likely; monitor closely", "1.3",
       thresholds=("age_caution",)),
)
RULES: Mapping[str, RuleSpec] = MappingProxyType({r.id: r for r in _RULE_SPECS})


DEFAULT_VERSION = "default-v1"
_VERSION_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _check_threshold(key: str, value: object) -> int:
    spec = THRESHOLDS.get(key)
    if spec is None:
        raise RuleSetInvalid(f"unknown threshold {key!r}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleSetInvalid(f"threshold {key}: {value!r} is not an integer")
    if not spec.hard_min <= value <= spec.hard_max:
        raise RuleSetInvalid(
            f"threshold {key}: {value} is outside {spec.hard_min}-{spec.hard_max} {spec.unit}"
        )
    return value


def _check_severity(rule_id: str, value: object, floor: Severity) -> Severity:
    if rule_id not in RULES:
        raise RuleSetInvalid(f"unknown rule {rule_id!r}")
    if not isinstance(value, str) or value not in {s.value for s in Severity}:
        raise RuleSetInvalid(f"rule {rule_id}: unknown severity {value!r}")
    severity = Severity(value)
    if severity.rank > floor.rank:
        raise RuleSetInvalid(
            f"rule {rule_id}: severity cannot be lowered from {floor.value} to {severity.value}"
        )
    return severity


@dataclass(frozen=True)
class RuleSet:
    """A named, immutable set of thresholds and severities.

    Construction checks the invariants: every threshold known, present and within its hard range;
    every rule given a severity no lower than its default-v1 severity. ``derive`` is how a
    clinic makes a new version.
    """

    version: str
    thresholds: Mapping[str, int]
    severities: Mapping[str, Severity]

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not _VERSION_SHAPE.fullmatch(self.version):
            raise RuleSetInvalid(
                f"version {self.version!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )
        thresholds = {key: _check_threshold(key, v) for key, v in self.thresholds.items()}
        missing = sorted(set(THRESHOLDS) - set(thresholds))
        if missing:
            raise RuleSetInvalid(f"thresholds missing: {', '.join(missing)}")
        for low, high in _THRESHOLD_ORDER:
            if thresholds[low] >= thresholds[high]:
                raise RuleSetInvalid(f"threshold {low} must be below {high}")
        # The floor is default-v1's severity, so even a hand-built RuleSet cannot lower one.
        severities = {rule_id: _check_severity(rule_id, value, RULES[rule_id].severity
                                               if rule_id in RULES else Severity.CAUTION)
                      for rule_id, value in self.severities.items()}
        missing = sorted(set(RULES) - set(severities))
        if missing:
            raise RuleSetInvalid(f"severities missing: {', '.join(missing)}")
        # Read-only copies, so a caller's dict cannot change a rule set after the fact.
        object.__setattr__(self, "thresholds", MappingProxyType(thresholds))
        object.__setattr__(self, "severities", MappingProxyType(severities))

    def derive(self, version: str, *, thresholds: Mapping[str, int] | None = None,
               severities: Mapping[str, Severity | str] | None = None) -> RuleSet:
        """A new rule set named ``version`` with some thresholds and severities changed.

        Raises RuleSetInvalid for a reused version name, an unknown threshold or rule, a
        threshold outside its hard range, or a severity lower than this set's.
        """
        if version in (self.version, DEFAULT_VERSION):
            raise RuleSetInvalid(f"version {version!r} is taken: a changed rule set needs a name")
        new_severities = dict(self.severities)
        for rule_id, severity in (severities or {}).items():
            floor = self.severities.get(rule_id, Severity.CAUTION)  # raise-only, from this set
            new_severities[rule_id] = _check_severity(rule_id, severity, floor)
        # Threshold keys and ranges are checked by the new set's __post_init__.
        return RuleSet(version, {**self.thresholds, **(thresholds or {})}, new_severities)

    def severity_for(self, rule_id: str, protocol: str) -> Severity:
        """The rule's severity under this set for ``protocol``: the more severe of the set's and
        the rule's protocol-specific one."""
        base = self.severities[rule_id]
        special = RULES[rule_id].protocol_severities.get(protocol)
        return special if special is not None and special.rank < base.rank else base


DEFAULT_V1 = RuleSet(DEFAULT_VERSION, {t.key: t.default for t in _THRESHOLD_SPECS},
                     {r.id: r.severity for r in _RULE_SPECS})


Evidence = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    source: str
    evidence: Evidence

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "source": self.source,
            "evidence": _plain(self.evidence),
        }


def _plain(value: object) -> object:
    """A fresh JSON-ready copy: mappings to dicts, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Decision:
    protocol: str
    rules_version: str
    decision: Outcome
    findings: tuple[Finding, ...]

    def as_dict(self) -> dict[str, object]:
        """Exactly the contract's output shape (screening-rules-v1.md, Output)."""
        return {
            "protocol": self.protocol,
            "rules_version": self.rules_version,
            "decision": self.decision.value,
            "findings": [f.as_dict() for f in self.findings],
        }


def age_on(birth_date: date, on: date) -> int:
    """Whole years on ``on``. A 29 February birthday is reached on 1 March in common years,
    because (3, 1) is the first (month, day) after (2, 29) (contract, Matching)."""
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - int(before_birthday)



@dataclass(frozen=True, slots=True)
class _Context:
    intake: Intake
    age: int
    t: Mapping[str, int]  # the rule set's thresholds


_A, _H, _R = ConditionStatus.ACTIVE, ConditionStatus.HISTORY, ConditionStatus.RESOLVED
# Which condition statuses each code rule reads. The contract default is active + history;
# resolved counts only where a rule says so (intracranial haemorrhage: "history of" is the
# contraindication, facts 1.7; SUD history: facts 1.8 "any history").
_ACTIVE, _ACTIVE_OR_HISTORY = frozenset({_A}), frozenset({_A, _H})
_CONDITION_RULES: Mapping[str, frozenset[ConditionStatus]] = MappingProxyType({
    "ANEURYSM": _ACTIVE_OR_HISTORY, "AVM": _ACTIVE_OR_HISTORY,
    "INTRACRANIAL-HEMORRHAGE": frozenset({_A, _H, _R}),
    "PSYCHOSIS-ACTIVE": _ACTIVE, "PSYCHOSIS-HISTORY": frozenset({_H}), "MANIA-ACTIVE": _ACTIVE,
    "SUD-ACTIVE": _ACTIVE, "SUD-HISTORY": frozenset({_H, _R}),
    "CARDIAC-UNSTABLE": _ACTIVE, "HEART-FAILURE": _ACTIVE, "ARRHYTHMIA": _ACTIVE,
    "RAISED-ICP": _ACTIVE, "GLAUCOMA": _ACTIVE, "CYSTITIS": _ACTIVE,
})
# HEART-FAILURE leaves acute heart failure to CARDIAC-UNSTABLE, so one code fires one rule.
_CONDITION_EXCLUDES: Mapping[str, CodeTable] = MappingProxyType(
    {"HEART-FAILURE": codes.CARDIAC_UNSTABLE}
)
_MEDICATION_RULES = ("BENZODIAZEPINE", "Z-DRUG", "OPIOID", "STIMULANT", "MAOI", "LAMOTRIGINE")


def _matching_conditions(intake: Intake, table: CodeTable, statuses: frozenset[ConditionStatus],
                         exclude: CodeTable | None = None) -> list[str]:
    # Sorted and de-duplicated, so evidence does not depend on the order of the intake's list.
    return sorted({
        c.code for c in intake.conditions
        if c.status in statuses and codes.matches(c.code, table)
        and not (exclude is not None and codes.matches(c.code, exclude))
    })


def _condition_check(rule_id: str) -> Callable[[_Context], Evidence | None]:
    table = RULES[rule_id].codes[0]
    statuses = _CONDITION_RULES[rule_id]
    exclude = _CONDITION_EXCLUDES.get(rule_id)

    def check(ctx: _Context) -> Evidence | None:
        found = _matching_conditions(ctx.intake, table, statuses, exclude)
        return {"codes": found} if found else None

    return check


def _medication_check(rule_id: str) -> Callable[[_Context], Evidence | None]:
    table = RULES[rule_id].codes[0]

    def check(ctx: _Context) -> Evidence | None:
        found = sorted({m.atc for m in ctx.intake.medications if codes.matches(m.atc, table)})
        return {"atc": found} if found else None

    return check


def _age_under_18(ctx: _Context) -> Evidence | None:
    # 18 is the label's approval age (facts 1.1), not clinic judgement: not a threshold.
    return {"age": ctx.age, "threshold": 18} if ctx.age < 18 else None


def _age_65_plus(ctx: _Context) -> Evidence | None:
    limit = ctx.t["age_caution"]
    return {"age": ctx.age, "threshold": limit} if ctx.age >= limit else None


def _allergy(ctx: _Context) -> Evidence | None:
    # Exact match after trimming and case-folding (contract): "ketamine hcl" is not matched, and
    # must be reviewed by a person, because a substring match would also catch unrelated names.
    listed = {code.casefold() for code in codes.ALLERGY_SUBSTANCES.prefixes}
    found = sorted({a.substance.strip() for a in ctx.intake.allergies
                    if a.substance.strip().casefold() in listed})
    return {"substances": found} if found else None


def _pregnancy(ctx: _Context) -> Evidence | None:
    return {"pregnant": True} if ctx.intake.patient.pregnant is True else None


def _pregnancy_unknown(ctx: _Context) -> Evidence | None:
    patient = ctx.intake.patient
    limit = ctx.t["pregnancy_unknown_max_age"]
    if patient.sex is Sex.FEMALE and ctx.age < limit and patient.pregnant is None:
        return {"sex": patient.sex.value, "age": ctx.age, "threshold": limit, "pregnant": None}
    return None


def _breastfeeding(ctx: _Context) -> Evidence | None:
    return {"breastfeeding": True} if ctx.intake.patient.breastfeeding is True else None


def _hepatic_severe(ctx: _Context) -> Evidence | None:
    evidence: dict[str, object] = {}
    if ctx.intake.hepatic_impairment is HepaticImpairment.SEVERE:
        evidence["hepatic_impairment"] = HepaticImpairment.SEVERE.value
    found = _matching_conditions(ctx.intake, codes.HEPATIC_FAILURE, frozenset({_A}))
    if found:
        evidence["codes"] = found
    return evidence or None


def _hepatic_moderate(ctx: _Context) -> Evidence | None:
    # Active K72 with a "moderate" grade is severe: only one hepatic finding (contract).
    if ctx.intake.hepatic_impairment is HepaticImpairment.MODERATE and _hepatic_severe(ctx) is None:
        return {"hepatic_impairment": HepaticImpairment.MODERATE.value}
    return None


_Hit = tuple[str, float, int]  # (vital name, value, threshold it crossed)


def _vital_evidence(hits: list[_Hit]) -> Evidence | None:
    """One vital: {"systolic": 182, "threshold": 180}. Two (systolic and diastolic both over):
    each value with its own "<name>_threshold"."""
    if not hits:
        return None
    if len(hits) == 1:
        name, value, limit = hits[0]
        return {name: value, "threshold": limit}
    evidence: dict[str, object] = {}
    for name, value, limit in hits:
        evidence[name] = value
        evidence[f"{name}_threshold"] = limit
    return evidence


def _bp_crisis(ctx: _Context) -> Evidence | None:
    v = ctx.intake.vitals
    if v is None:
        return None
    hits: list[_Hit] = []
    # Missing values never fire (contract); comparisons are inclusive for the crisis range.
    if v.systolic is not None and v.systolic >= ctx.t["bp_crisis_systolic"]:
        hits.append(("systolic", v.systolic, ctx.t["bp_crisis_systolic"]))
    if v.diastolic is not None and v.diastolic >= ctx.t["bp_crisis_diastolic"]:
        hits.append(("diastolic", v.diastolic, ctx.t["bp_crisis_diastolic"]))
    return _vital_evidence(hits)


def _bp_high(ctx: _Context) -> Evidence | None:
    v = ctx.intake.vitals
    if v is None or _bp_crisis(ctx) is not None:
        return None
    older = ctx.age >= ctx.t["bp_high_older_age"]
    systolic_limit = ctx.t["bp_high_systolic_older" if older else "bp_high_systolic"]
    hits: list[_Hit] = []
    if v.systolic is not None and v.systolic > systolic_limit:
        hits.append(("systolic", v.systolic, systolic_limit))
    if v.diastolic is not None and v.diastolic > ctx.t["bp_high_diastolic"]:
        hits.append(("diastolic", v.diastolic, ctx.t["bp_high_diastolic"]))
    evidence = _vital_evidence(hits)
    if evidence is not None and older:
        # Say why the systolic limit is the older patients' one.
        return {**evidence, "age": ctx.age}
    return evidence


def _tachycardia(ctx: _Context) -> Evidence | None:
    v = ctx.intake.vitals
    limit = ctx.t["tachycardia_heart_rate"]
    if v is not None and v.heart_rate is not None and v.heart_rate > limit:
        return {"heart_rate": v.heart_rate, "threshold": limit}
    return None


def _low_spo2(ctx: _Context) -> Evidence | None:
    v = ctx.intake.vitals
    limit = ctx.t["low_spo2"]
    if v is not None and v.spo2 is not None and v.spo2 < limit:
        return {"spo2": v.spo2, "threshold": limit}
    return None


def _phq9_item9(ctx: _Context) -> Evidence | None:
    phq9 = ctx.intake.scales.phq9
    if phq9 is not None and phq9[8] > 0:  # facts 4.1: any score > 0, whatever the total
        return {"phq9_item9": phq9[8]}
    return None


def _cssrs_high(ctx: _Context) -> Evidence | None:
    answers = ctx.intake.scales.cssrs_screen
    if answers is None:
        return None
    risk = score("cssrs-screen", answers).severity
    return {"risk": risk, "answers": list(answers)} if risk == "high" else None


# One check per rule id in RULES (a test holds this).
_CHECKS: Mapping[str, Callable[[_Context], Evidence | None]] = MappingProxyType({
    "AGE-UNDER-18": _age_under_18, "ALLERGY-KETAMINE": _allergy, "PREGNANCY": _pregnancy,
    "PREGNANCY-UNKNOWN": _pregnancy_unknown, "BREASTFEEDING": _breastfeeding,
    "HEPATIC-SEVERE": _hepatic_severe, "HEPATIC-MODERATE": _hepatic_moderate,
    "BP-CRISIS": _bp_crisis, "BP-HIGH": _bp_high, "TACHYCARDIA": _tachycardia,
    "LOW-SPO2": _low_spo2, "PHQ9-ITEM9": _phq9_item9, "CSSRS-HIGH-RISK": _cssrs_high,
    "AGE-65-PLUS": _age_65_plus,
    **{rule_id: _condition_check(rule_id) for rule_id in _CONDITION_RULES},
    **{rule_id: _medication_check(rule_id) for rule_id in _MEDICATION_RULES},
})


def screen(intake: Intake, ruleset: RuleSet = DEFAULT_V1) -> Decision:
    """Screen one intake under ``ruleset``.

    Guarantees: each rule fires at most once; findings are ordered by severity (contraindication,
    warning, caution) then rule id; the decision is ``ineligible`` on any contraindication,
    else ``needs_review`` on any warning, else ``eligible``.
    """
    ctx = _Context(intake, age_on(intake.patient.birth_date, intake.assessed_on),
                   ruleset.thresholds)
    findings: list[Finding] = []
    for rule_id, check in _CHECKS.items():
        evidence = check(ctx)
        if evidence is None:
            continue
        spec = RULES[rule_id]
        findings.append(Finding(rule_id, ruleset.severity_for(rule_id, intake.protocol),
                                spec.message, spec.source, MappingProxyType(dict(evidence))))
    findings.sort(key=lambda f: (f.severity.rank, f.rule))
    severities = {f.severity for f in findings}
    if Severity.CONTRAINDICATION in severities:
        outcome = Outcome.INELIGIBLE
    elif Severity.WARNING in severities:
        outcome = Outcome.NEEDS_REVIEW
    else:
        outcome = Outcome.ELIGIBLE
    return Decision(intake.protocol, ruleset.version, outcome, tuple(findings))
