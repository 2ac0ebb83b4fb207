"""Change from baseline: response and remission (facts 4.3). Pure, exact arithmetic.

Response is a fall of at least 50% from baseline [C, facts 4.3]. Remission has several published
definitions (MADRS <=12, <=9 or <=10; QIDS <=5), so the threshold is the clinic's choice, passed in
and to be recorded with the result (facts 4.3: "let the clinic choose the definition").
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from ketasafe.outcomes.exceptions import ScaleAnswersInvalid
from ketasafe.outcomes.scales.metadata import get_spec

__all__ = [
    "PARTIAL_RESPONSE_MIN_PERCENT",
    "RESPONSE_MIN_PERCENT",
    "RESPONSE_SCALES",
    "Classification",
    "classify_response",
    "percent_change",
]

Classification = Literal["remission", "response", "partial", "none"]

RESPONSE_MIN_PERCENT = 50  # facts 4.3 [C]
# A 25-49% fall as "partial response" is common usage, not a fact in clinical-facts [U]; it is a
# keyword argument so a clinic can change it.
PARTIAL_RESPONSE_MIN_PERCENT = 25

# Symptom scales where a lower total is better. CADSS (a side-effect measure), Aldrete (higher is
# better) and the C-SSRS screener (no total) have no "response".
RESPONSE_SCALES = frozenset({"phq9", "gad7", "madrs", "qids-sr16", "pcl5"})

_TENTH = Decimal("0.1")


def percent_change(baseline: int, current: int) -> Decimal:
    """(current - baseline) / baseline x 100, rounded to 0.1 half away from zero.

    Negative means improvement on a symptom scale (30 -> 12 is -60.0). Raises ValueError when
    baseline is 0, because a change from nothing has no percentage.
    """
    if baseline == 0:
        raise ValueError("percent change needs a baseline above 0")
    exact = (Decimal(current) - Decimal(baseline)) * 100 / Decimal(baseline)
    # ROUND_HALF_UP on Decimal rounds half away from zero, for negative values too.
    return exact.quantize(_TENTH, rounding=ROUND_HALF_UP)


def _fell_by_at_least(baseline: int, current: int, percent: int) -> bool:
    # Integer comparison, so 50% of an odd baseline is not subject to rounding:
    # (baseline - current) / baseline >= percent / 100.
    return (baseline - current) * 100 >= percent * baseline


def classify_response(
    scale_id: str,
    baseline: int,
    current: int,
    remission_max: int,
    *,
    partial_min_percent: int = PARTIAL_RESPONSE_MIN_PERCENT,
) -> Classification:
    """"remission" when current <= remission_max; else "response" for a >=50% fall from baseline;
    else "partial" for a fall of at least ``partial_min_percent``; else "none".

    Totals and the threshold must lie within the scale's total range; the scale must be one where
    lower is better (RESPONSE_SCALES). Raises ScaleAnswersInvalid otherwise.
    """
    spec = get_spec(scale_id)
    if spec.id not in RESPONSE_SCALES:
        raise ScaleAnswersInvalid(spec.id, "response and remission are not defined for this scale")
    top = max_total(spec.id)
    for name, value in (("baseline", baseline), ("current", current),
                        ("remission_max", remission_max)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScaleAnswersInvalid(spec.id, f"{name} {value!r} is not an integer")
        if not 0 <= value <= top:
            raise ScaleAnswersInvalid(spec.id, f"{name} {value} is outside 0-{top}")
    if not 0 < partial_min_percent < RESPONSE_MIN_PERCENT:
        raise ValueError(f"partial_min_percent {partial_min_percent} is outside 1-49")
    if current <= remission_max:
        return "remission"
    if baseline == 0:
        return "none"  # nothing to fall from
    if _fell_by_at_least(baseline, current, RESPONSE_MIN_PERCENT):
        return "response"
    if _fell_by_at_least(baseline, current, partial_min_percent):
        return "partial"
    return "none"


def max_total(scale_id: str) -> int:
    """Highest possible total. QIDS-SR16 sums 9 domains, not 16 items (facts 4.4)."""
    spec = get_spec(scale_id)
    if spec.id == "qids-sr16":
        return 27
    return spec.n_items * spec.item_max
