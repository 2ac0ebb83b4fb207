"""Rating-scale scoring (clinical-facts 4; contract: `ketasafe score` in contracts/cli.md).

Pure: imports nothing from Django and never reads the clock.
"""

from ketasafe.outcomes.exceptions import ScaleAnswersInvalid, UnknownScale
from ketasafe.outcomes.scales.change import (
    RESPONSE_SCALES,
    Classification,
    classify_response,
    max_total,
    percent_change,
)
from ketasafe.outcomes.scales.metadata import SCALES, AnswerOption, ItemSpec, ScaleSpec, get_spec
from ketasafe.outcomes.scales.scoring import ScaleResult, cssrs_risk, score, validate_answers

__all__ = [
    "RESPONSE_SCALES",
    "SCALES",
    "AnswerOption",
    "Classification",
    "ItemSpec",
    "ScaleAnswersInvalid",
    "ScaleResult",
    "ScaleSpec",
    "UnknownScale",
    "classify_response",
    "cssrs_risk",
    "get_spec",
    "max_total",
    "percent_change",
    "score",
    "validate_answers",
]
