"""Code tables for screening (STYLE.md 13: codes are data, one table per kind, each sourced).

Every table is a CodeTable of (code, label) pairs. ICD-10-CM codes and WHO ATC codes are *prefixes*:
a patient's code matches when, with dots removed and case ignored, it starts with the listed code
(contracts/screening-rules-v1.md, Matching). Labels are the ICD-10-CM / ATC category titles, for
display only; matching uses the code.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTRACT = "contracts/screening-rules-v1.md"


@dataclass(frozen=True, slots=True)
class CodeTable:
    name: str
    system: str  # "icd-10-cm", "atc", or "text" for free-text tables
    codes: tuple[tuple[str, str], ...]
    source: str

    @property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.codes)


def normalize_code(code: str) -> str:
    """Code as compared: dots and surrounding spaces removed, upper case."""
    return code.strip().replace(".", "").upper()


def matches(code: str, table: CodeTable) -> bool:
    """True when ``code`` starts with any of ``table``'s codes after normalisation."""
    norm = normalize_code(code)
    return any(norm.startswith(normalize_code(prefix)) for prefix in table.prefixes)


ICD = "icd-10-cm"
ATC = "atc"

# --- Protocols the rule set knows (contract "Protocols it knows"). -------------------------
PROTOCOLS = CodeTable(
    "protocols", "text",
    (
        ("esketamine-trd", "SPRAVATO nasal spray, treatment-resistant depression"),
        ("esketamine-mdsi", "SPRAVATO nasal spray, depression with acute suicidal ideation"),
        ("iv-ketamine-depression", "IV racemic ketamine, 0.5 mg/kg over 40 min"),
        ("iv-ketamine-crps", "IV racemic ketamine for CRPS, 0.35 mg/kg/h for 4 h"),
    ),
    f"{CONTRACT} Protocols; clinical-facts 1, 2, 3",
)

# --- Allergies: exact match after trim and case-fold, not prefix. ----------------------------
ALLERGY_SUBSTANCES = CodeTable(
    "allergy-ketamine", "text",
    (("ketamine", "ketamine (racemic)"), ("esketamine", "esketamine (S-ketamine)")),
    "clinical-facts 1.7 (hypersensitivity to esketamine or ketamine); "
    f"{CONTRACT} ALLERGY-KETAMINE",
)

# --- ICD-10-CM condition tables, one per rule group. -----------------------------------------
ANEURYSM = CodeTable(
    "aneurysm", ICD,
    (
        ("I67.1", "Cerebral aneurysm, nonruptured"),
        ("I71", "Aortic aneurysm and dissection"),
        ("I72", "Other aneurysm"),
        ("I77.81", "Aortic ectasia"),
    ),
    f"clinical-facts 1.7 (aneurysmal vascular disease); {CONTRACT} ANEURYSM",
)
AVM = CodeTable(
    "avm", ICD,
    (
        ("Q28.2", "Arteriovenous malformation of cerebral vessels"),
        ("Q28.3", "Other malformations of cerebral vessels"),
    ),
    f"clinical-facts 1.7 (arteriovenous malformation); {CONTRACT} AVM",
)
INTRACRANIAL_HEMORRHAGE = CodeTable(
    "intracranial-hemorrhage", ICD,
    (
        ("I60", "Nontraumatic subarachnoid hemorrhage"),
        ("I61", "Nontraumatic intracerebral hemorrhage"),
        ("I62", "Other and unspecified nontraumatic intracranial hemorrhage"),
    ),
    f"clinical-facts 1.7 (history of intracerebral haemorrhage); {CONTRACT} "
    "INTRACRANIAL-HEMORRHAGE",
)
PSYCHOSIS = CodeTable(
    "psychosis", ICD,
    (
        ("F20", "Schizophrenia"),
        ("F22", "Delusional disorders"),
        ("F23", "Brief psychotic disorder"),
        ("F24", "Shared psychotic disorder"),
        ("F25", "Schizoaffective disorders"),
        ("F28", "Other psychotic disorder not due to a substance or known physiological condition"),
        ("F29", "Unspecified psychosis not due to a substance or known physiological condition"),
    ),
    f"clinical-facts 1.8, 2.2, 3 (psychosis); {CONTRACT} PSYCHOSIS-ACTIVE, PSYCHOSIS-HISTORY",
)
MANIA = CodeTable(
    "mania", ICD,
    (
        ("F30", "Manic episode"),
        ("F31.1", "Bipolar disorder, current episode manic without psychotic features"),
        ("F31.2", "Bipolar disorder, current episode manic severe with psychotic features"),
    ),
    f"clinical-facts 2.2 (current psychosis or mania); {CONTRACT} MANIA-ACTIVE",
)
# F17 (nicotine dependence) is deliberately absent: it carries no ketamine abuse signal (contract).
SUBSTANCE_USE = CodeTable(
    "substance-use", ICD,
    (
        ("F10", "Alcohol related disorders"),
        ("F11", "Opioid related disorders"),
        ("F12", "Cannabis related disorders"),
        ("F13", "Sedative, hypnotic, or anxiolytic related disorders"),
        ("F14", "Cocaine related disorders"),
        ("F15", "Other stimulant related disorders"),
        ("F16", "Hallucinogen related disorders"),
        ("F18", "Inhalant related disorders"),
        ("F19", "Other psychoactive substance related disorders"),
    ),
    f"clinical-facts 1.8, 3, 5 (substance use disorder); {CONTRACT} SUD-ACTIVE, SUD-HISTORY",
)
HEPATIC_FAILURE = CodeTable(
    "hepatic-failure", ICD,
    (("K72", "Hepatic failure, not elsewhere classified"),),
    f"clinical-facts 1.8, 3 (severe hepatic impairment); {CONTRACT} HEPATIC-SEVERE",
)
CARDIAC_UNSTABLE = CodeTable(
    "cardiac-unstable", ICD,
    (
        ("I20.0", "Unstable angina"),
        ("I21", "Acute myocardial infarction"),
        ("I22", "Subsequent ST elevation and non-ST elevation myocardial infarction"),
        ("I50.21", "Acute systolic (congestive) heart failure"),
        ("I50.23", "Acute on chronic systolic (congestive) heart failure"),
        ("I50.31", "Acute diastolic (congestive) heart failure"),
        ("I50.33", "Acute on chronic diastolic (congestive) heart failure"),
        ("I50.41", "Acute combined systolic and diastolic (congestive) heart failure"),
        ("I50.43", "Acute on chronic combined systolic and diastolic (congestive) heart failure"),
    ),
    f"clinical-facts 1.8, 2.2, 3 (poorly controlled cardiovascular disease); {CONTRACT} "
    "CARDIAC-UNSTABLE",
)
HEART_FAILURE = CodeTable(
    "heart-failure", ICD,
    (("I50", "Heart failure"),),
    f"clinical-facts 1.8 (cardiovascular conditions: weigh the BP risk); {CONTRACT} HEART-FAILURE",
)
ARRHYTHMIA = CodeTable(
    "arrhythmia", ICD,
    (
        ("I47", "Paroxysmal tachycardia"),
        ("I48", "Atrial fibrillation and flutter"),
        ("I49", "Other cardiac arrhythmias"),
    ),
    f"clinical-facts 2.2 (significant arrhythmia); {CONTRACT} ARRHYTHMIA",
)
RAISED_ICP = CodeTable(
    "raised-icp", ICD,
    (
        ("G91", "Hydrocephalus"),
        ("G93.2", "Benign intracranial hypertension"),
        ("G93.6", "Cerebral edema"),
    ),
    f"clinical-facts 1.4, 3 (intracranial pressure); {CONTRACT} RAISED-ICP",
)
GLAUCOMA = CodeTable(
    "glaucoma", ICD,
    (("H40", "Glaucoma"),),
    f"clinical-facts 3, 6.1 (intraocular pressure); {CONTRACT} GLAUCOMA",
)
CYSTITIS = CodeTable(
    "cystitis", ICD,
    (("N30", "Cystitis"),),
    f"clinical-facts 1.8, 5 (ulcerative or interstitial cystitis); {CONTRACT} CYSTITIS",
)

# --- WHO ATC medication tables (clinical-facts 5; the SPRAVATO PMF asks for these classes). ----
BENZODIAZEPINE = CodeTable(
    "benzodiazepine", ATC,
    (
        ("N05BA", "Benzodiazepine derivatives (anxiolytics)"),
        ("N05CD", "Benzodiazepine derivatives (hypnotics and sedatives)"),
    ),
    f"clinical-facts 5 (CNS depressants; may blunt efficacy), 1.9 (PMF); {CONTRACT} BENZODIAZEPINE",
)
Z_DRUG = CodeTable(
    "z-drug", ATC,
    (("N05CF", "Benzodiazepine related drugs"),),
    f"clinical-facts 5 (sedative hypnotics), 1.9 (PMF non-benzodiazepine hypnotics); {CONTRACT} "
    "Z-DRUG",
)
OPIOID = CodeTable(
    "opioid", ATC,
    (("N02A", "Opioids"), ("N07BC", "Drugs used in opioid dependence")),
    f"clinical-facts 5 (CNS depressants), 1.9 (PMF video guidance); {CONTRACT} OPIOID",
)
STIMULANT = CodeTable(
    "stimulant", ATC,
    (("N06BA", "Centrally acting sympathomimetics"),),
    f"clinical-facts 5 (psychostimulants raise BP); {CONTRACT} STIMULANT",
)
MAOI = CodeTable(
    "maoi", ATC,
    (
        ("N06AF", "Monoamine oxidase inhibitors, non-selective"),
        ("N06AG", "Monoamine oxidase A inhibitors"),
        ("N04BD", "Monoamine oxidase B inhibitors"),
    ),
    f"clinical-facts 5 (MAOIs raise BP); {CONTRACT} MAOI",
)
LAMOTRIGINE = CodeTable(
    "lamotrigine", ATC,
    (("N03AX09", "Lamotrigine"),),
    f"clinical-facts 5 (may reduce ketamine's effects); {CONTRACT} LAMOTRIGINE",
)

ICD10CM: tuple[CodeTable, ...] = (
    ANEURYSM, AVM, INTRACRANIAL_HEMORRHAGE, PSYCHOSIS, MANIA, SUBSTANCE_USE, HEPATIC_FAILURE,
    CARDIAC_UNSTABLE, HEART_FAILURE, ARRHYTHMIA, RAISED_ICP, GLAUCOMA, CYSTITIS,
)
ATC_TABLES: tuple[CodeTable, ...] = (
    BENZODIAZEPINE, Z_DRUG, OPIOID, STIMULANT, MAOI, LAMOTRIGINE,
)
