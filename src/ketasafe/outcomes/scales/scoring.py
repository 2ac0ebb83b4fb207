"""Scale scoring: answers in, a ScaleResult out. Pure: no Django, no clock.

The rules follow the `ketasafe score` table in contracts/cli.md, which follows clinical-facts 4.
Totals and bands are integer arithmetic, so there is no rounding anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ketasafe.outcomes.exceptions import ScaleAnswersInvalid
from ketasafe.outcomes.scales.metadata import ScaleSpec, get_spec

__all__ = ["ScaleResult", "score", "validate_answers"]


@dataclass(frozen=True, slots=True)
class ScaleResult:
    scale: str
    total: int | None  # None where the scale has no total (C-SSRS screener)
    severity: str | None  # band, or the C-SSRS risk level; None where the scale has no bands
    flags: tuple[str, ...]  # in the cli.md table's order

    def as_dict(self) -> dict[str, object]:
        """Exactly the `ketasafe score` output shape (cli.md)."""
        return {
            "scale": self.scale,
            "total": self.total,
            "severity": self.severity,
            "flags": list(self.flags),
        }


# Bands are (lowest total, name), ascending; a total belongs to the last band it reaches.
Bands = tuple[tuple[int, str], ...]

PHQ9_BANDS: Bands = (  # facts 4.1
    (0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately_severe"), (20, "severe"),
)
GAD7_BANDS: Bands = ((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe"))  # facts 4.2
MADRS_BANDS: Bands = ((0, "normal"), (7, "mild"), (20, "moderate"), (35, "severe"))  # facts 4.3
QIDS_BANDS: Bands = (  # facts 4.4 (developer site)
    (0, "none"), (6, "mild"), (11, "moderate"), (16, "severe"), (21, "very_severe"),
)

# QIDS-SR16 domains as 1-based item numbers; a domain scores its highest item (facts 4.4).
QIDS_DOMAINS: tuple[tuple[int, ...], ...] = (
    (1, 2, 3, 4),  # sleep
    (5,),  # sad mood
    (6, 7, 8, 9),  # appetite / weight
    (10,), (11,), (12,), (13,), (14,),  # concentration, self-view, suicidality, interest, energy
    (15, 16),  # psychomotor
)

# PCL-5 DSM-5 clusters: (items, how many must be rated >= 2) (facts 4.7).
PCL5_CLUSTERS: tuple[tuple[range, int], ...] = (
    (range(1, 6), 1),  # B: intrusion
    (range(6, 8), 1),  # C: avoidance
    (range(8, 15), 2),  # D: negative alterations in cognition and mood
    (range(15, 21), 2),  # E: arousal and reactivity
)
PCL5_ITEM_ENDORSED = 2  # "moderately" or more counts towards a cluster (facts 4.7)
# The contract takes the top of the 31-33 cut-point range (facts 4.7); the earlier 38 is not used.
PCL5_PROBABLE_PTSD_MIN = 33
ALDRETE_DISCHARGE_MIN = 9  # phase I discharge, facts 4.10 (some use 8; not the contract)


def _band(total: int, bands: Bands) -> str:
    name = bands[0][1]
    for lowest, band in bands:
        if total >= lowest:
            name = band
    return name


def validate_answers(spec: ScaleSpec, answers: Sequence[object]) -> tuple[int, ...]:
    """The answers as a tuple of ints, or ScaleAnswersInvalid naming the first problem.

    Checks the count, the type (an int, never a bool or a float: ``2.0`` is refused rather than
    guessed at) and each item's range, inclusive.
    """
    if isinstance(answers, str | bytes):
        # A string is a Sequence; "123" must not score as three answers.
        raise ScaleAnswersInvalid(spec.id, "answers must be a list of integers")
    if len(answers) != spec.n_items:
        raise ScaleAnswersInvalid(spec.id, f"expected {spec.n_items} answers, got {len(answers)}")
    values: list[int] = []
    for number, value in enumerate(answers, 1):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScaleAnswersInvalid(spec.id, f"{value!r} is not an integer", item=number)
        if not spec.item_min <= value <= spec.item_max:
            raise ScaleAnswersInvalid(
                spec.id, f"{value} is outside {spec.item_min}-{spec.item_max}", item=number
            )
        values.append(value)
    return tuple(values)


def _phq9(a: tuple[int, ...]) -> ScaleResult:
    total = sum(a)
    # Item 9 > 0 needs follow-up whatever the total (facts 4.1).
    flags = ("item9_positive",) if a[8] > 0 else ()
    return ScaleResult("phq9", total, _band(total, PHQ9_BANDS), flags)


def _gad7(a: tuple[int, ...]) -> ScaleResult:
    total = sum(a)
    return ScaleResult("gad7", total, _band(total, GAD7_BANDS), ())


def _madrs(a: tuple[int, ...]) -> ScaleResult:
    total = sum(a)
    return ScaleResult("madrs", total, _band(total, MADRS_BANDS), ())


def _qids(a: tuple[int, ...]) -> ScaleResult:
    total = sum(max(a[i - 1] for i in domain) for domain in QIDS_DOMAINS)
    return ScaleResult("qids-sr16", total, _band(total, QIDS_BANDS), ())


def _pcl5(a: tuple[int, ...]) -> ScaleResult:
    total = sum(a)
    flags: list[str] = []
    if total >= PCL5_PROBABLE_PTSD_MIN:
        flags.append("probable_ptsd")
    if all(
        sum(1 for i in items if a[i - 1] >= PCL5_ITEM_ENDORSED) >= needed
        for items, needed in PCL5_CLUSTERS
    ):
        flags.append("dsm5_criteria_met")
    # No empirically derived severity bands exist (facts 4.7): severity stays None.
    return ScaleResult("pcl5", total, None, tuple(flags))


def _cadss(a: tuple[int, ...]) -> ScaleResult:
    # No confirmed cut-off for "dissociation" (facts 4.5, 7 item 4): a total, no band.
    return ScaleResult("cadss", sum(a), None, ())


def cssrs_risk(a: tuple[int, ...]) -> str:
    """Risk level from valid screener answers (facts 4.6 triage, cli.md)."""
    q1, q2, q3, q4, q5, q6, recent = a
    if q4 or q5 or (q6 and recent):
        return "high"
    if q3 or (q6 and not recent):
        return "moderate"
    if q1 or q2:
        return "low"
    return "none"


def _cssrs(a: tuple[int, ...]) -> ScaleResult:
    # The screener skips Q3-Q5 after "no" to Q2 and the 3-month question after "no" to Q6
    # (facts 4.6). An answer to a skipped question means the form was not filled as asked, so it
    # is refused rather than scored: a guessed risk level is worse than none.
    if a[1] == 0 and any(a[2:5]):
        raise ScaleAnswersInvalid("cssrs-screen", "Q3-Q5 must be 0 when Q2 is 0")
    if a[5] == 0 and a[6]:
        raise ScaleAnswersInvalid("cssrs-screen", "'within 3 months' must be 0 when Q6 is 0")
    return ScaleResult("cssrs-screen", None, cssrs_risk(a), ())


def _aldrete(a: tuple[int, ...]) -> ScaleResult:
    total = sum(a)
    flags = ("discharge_ready",) if total >= ALDRETE_DISCHARGE_MIN else ()
    return ScaleResult("aldrete", total, None, flags)


_SCORERS: dict[str, Callable[[tuple[int, ...]], ScaleResult]] = {
    "phq9": _phq9,
    "gad7": _gad7,
    "madrs": _madrs,
    "qids-sr16": _qids,
    "pcl5": _pcl5,
    "cadss": _cadss,
    "cssrs-screen": _cssrs,
    "aldrete": _aldrete,
}


def score(scale_id: str, answers: Sequence[int]) -> ScaleResult:
    """Score one completed scale from its answers in item order.

    Raises UnknownScale for an unknown id and ScaleAnswersInvalid (a ValueError) for a wrong
    count, a non-integer, a value out of range, or (C-SSRS) an answer the screener skips.
    """
    spec = get_spec(scale_id)
    return _SCORERS[spec.id](validate_answers(spec, answers))
