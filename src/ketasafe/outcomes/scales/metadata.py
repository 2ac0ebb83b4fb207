"""What each scale is: items, answer ranges, wording and codes (STYLE.md 13: codes are data).

Every entry names the clinical-facts section it comes from. LOINC codes appear only where
clinical-facts marks them confirmed [C]; where the facts say [U] the code is None, never a guess
(facts 4.3, 4.4, 4.6, 4.7 and section 7 item 6 list the codes that could not be confirmed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ketasafe.outcomes.exceptions import UnknownScale

__all__ = ["SCALES", "AnswerOption", "ItemSpec", "ScaleSpec", "get_spec"]


@dataclass(frozen=True, slots=True)
class AnswerOption:
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class ItemSpec:
    number: int  # 1-based, the order answers are given in
    prompt: str
    loinc: str | None = None
    # Skip logic for forms: the item is only asked when item ``asked_if_yes`` was answered 1
    # (C-SSRS screener, facts 4.6). None means always asked.
    asked_if_yes: int | None = None


@dataclass(frozen=True, slots=True)
class ScaleSpec:
    id: str
    title: str
    item_min: int
    item_max: int
    items: tuple[ItemSpec, ...]
    options: tuple[AnswerOption, ...]
    source: str
    stem: str = ""
    loinc_total: str | None = None
    # C-SSRS has no total; its result is a risk level with its own code (facts 4.6).
    loinc_risk_level: str | None = None

    @property
    def n_items(self) -> int:
        return len(self.items)


def _numbered(n: int, names: tuple[str, ...] = ()) -> tuple[ItemSpec, ...]:
    """Generic "Item N" prompts for clinician-rated or licensed scales whose wording we do not
    ship (MADRS, QIDS-SR16, PCL-5, CADSS); ``names`` adds a short descriptor where the contract
    names the items (Aldrete, cli.md)."""
    return tuple(
        ItemSpec(i, f"Item {i} ({names[i - 1]})" if names else f"Item {i}") for i in range(1, n + 1)
    )


def _numeric_options(lo: int, hi: int) -> tuple[AnswerOption, ...]:
    return tuple(AnswerOption(v, str(v)) for v in range(lo, hi + 1))


# PHQ-9 and GAD-7 share the frequency options (facts 4.1, 4.2). Their wording is public domain
# (Pfizer released it for free use), so patients can answer it on a form.
_FREQUENCY = (
    AnswerOption(0, "Not at all"),
    AnswerOption(1, "Several days"),
    AnswerOption(2, "More than half the days"),
    AnswerOption(3, "Nearly every day"),
)

_PHQ9_PROMPTS = (
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself, or that you are a failure or have let yourself or your family "
    "down",
    "Trouble concentrating on things, such as reading the newspaper or watching television",
    "Moving or speaking so slowly that other people could have noticed? Or the opposite, being so "
    "fidgety or restless that you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead or of hurting yourself in some way",
)
# Only items 1, 2 and 9 have item codes confirmed in facts 4.1.
_PHQ9_ITEM_LOINC: dict[int, str] = {1: "44250-9", 2: "44255-8", 9: "44260-8"}

_GAD7_PROMPTS = (
    "Feeling nervous, anxious or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid as if something awful might happen",
)

# C-SSRS screener wording and item LOINC codes as stored in facts 4.6. Q3-Q5 are asked only
# after a yes to Q2, and "within the past 3 months" only after a yes to Q6 (the screener's skip
# logic, which scoring also enforces).
_CSSRS_ITEMS = (
    ItemSpec(1, "Have you wished you were dead, or wished you could go to sleep and not wake up?",
             "93246-7"),
    ItemSpec(2, "Have you actually had any thoughts of killing yourself?", "93247-5"),
    ItemSpec(3, "Have you been thinking about how you might do this?", "93248-3", asked_if_yes=2),
    ItemSpec(4, "Have you had these thoughts and had some intention of acting on them?",
             "93249-1", asked_if_yes=2),
    ItemSpec(5, "Have you started to work out, or worked out, the details of how to kill "
                "yourself, and do you intend to carry out this plan?", "93250-9", asked_if_yes=2),
    ItemSpec(6, "Have you ever done anything, started to do anything, or prepared to do anything "
                "to end your life?", "93267-3"),
    ItemSpec(7, "Was this within the past 3 months?", "93269-9", asked_if_yes=6),
)
_YES_NO = (AnswerOption(0, "No"), AnswerOption(1, "Yes"))

_SPECS = (
    ScaleSpec(
        id="phq9", title="Patient Health Questionnaire-9 (PHQ-9)", item_min=0, item_max=3,
        items=tuple(
            ItemSpec(i, p, _PHQ9_ITEM_LOINC.get(i)) for i, p in enumerate(_PHQ9_PROMPTS, 1)
        ),
        options=_FREQUENCY, source="clinical-facts 4.1", loinc_total="44261-6",
        stem="Over the last 2 weeks, how often have you been bothered by any of the following "
             "problems?",
    ),
    ScaleSpec(
        id="gad7", title="Generalized Anxiety Disorder-7 (GAD-7)", item_min=0, item_max=3,
        items=tuple(ItemSpec(i, p) for i, p in enumerate(_GAD7_PROMPTS, 1)),
        options=_FREQUENCY, source="clinical-facts 4.2", loinc_total="70274-6",
        stem="Over the last 2 weeks, how often have you been bothered by the following problems?",
    ),
    ScaleSpec(
        id="madrs", title="Montgomery-Asberg Depression Rating Scale (MADRS)", item_min=0,
        item_max=6, items=_numbered(10), options=_numeric_options(0, 6),
        source="clinical-facts 4.3",
    ),
    ScaleSpec(
        id="qids-sr16",
        title="Quick Inventory of Depressive Symptomatology, self-report (QIDS-SR16)",
        item_min=0, item_max=3, items=_numbered(16), options=_numeric_options(0, 3),
        source="clinical-facts 4.4",
    ),
    ScaleSpec(
        id="pcl5", title="PTSD Checklist for DSM-5 (PCL-5)", item_min=0, item_max=4,
        items=_numbered(20), options=_numeric_options(0, 4), source="clinical-facts 4.7",
    ),
    ScaleSpec(
        id="cadss", title="Clinician-Administered Dissociative States Scale (CADSS, 23 items)",
        item_min=0, item_max=4, items=_numbered(23), options=_numeric_options(0, 4),
        source="clinical-facts 4.5",
    ),
    ScaleSpec(
        id="cssrs-screen", title="Columbia Suicide Severity Rating Scale, screener (C-SSRS)",
        item_min=0, item_max=1, items=_CSSRS_ITEMS, options=_YES_NO,
        source="clinical-facts 4.6", loinc_risk_level="93374-7",
        stem="Questions 1-5 ask about the past month.",
    ),
    ScaleSpec(
        id="aldrete", title="Modified Aldrete score", item_min=0, item_max=2,
        items=_numbered(5, ("activity", "respiration", "circulation", "consciousness", "SpO2")),
        options=_numeric_options(0, 2), source="clinical-facts 4.10",
    ),
)

# Read-only: the registry is shared by forms, the CLI and FHIR mapping.
SCALES: Mapping[str, ScaleSpec] = MappingProxyType({spec.id: spec for spec in _SPECS})


def get_spec(scale_id: str) -> ScaleSpec:
    """The spec for ``scale_id``, or UnknownScale naming the known ids."""
    try:
        return SCALES[scale_id]
    except KeyError:
        known = ", ".join(SCALES)
        raise UnknownScale(scale_id, f"unknown scale (known: {known})") from None
