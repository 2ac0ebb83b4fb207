"""Scale scoring against the `ketasafe score` table (contracts/cli.md) and clinical-facts 4."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketasafe.outcomes.exceptions import ScaleAnswersInvalid, UnknownScale
from ketasafe.outcomes.scales import (
    SCALES,
    ScaleResult,
    classify_response,
    max_total,
    percent_change,
    score,
)


def spread(total: int, n: int, hi: int, *, last_zero: bool = False) -> list[int]:
    """n answers (each <= hi) summing to total, filled from item 1; last item 0 if asked."""
    slots = n - 1 if last_zero else n
    assert 0 <= total <= slots * hi
    answers = []
    for _ in range(slots):
        answers.append(min(hi, total))
        total -= answers[-1]
    return answers + ([0] if last_zero else [])


# --- PHQ-9 (facts 4.1) ---------------------------------------------------------------------------

@pytest.mark.parametrize(("total", "band"), [
    (0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
    (15, "moderately_severe"), (19, "moderately_severe"), (20, "severe"), (24, "severe"),
])
def test_phq9_total_falls_in_its_band(total: int, band: str) -> None:
    result = score("phq9", spread(total, 9, 3, last_zero=True))
    assert (result.total, result.severity, result.flags) == (total, band, ())


def test_phq9_maximum_is_27_and_severe() -> None:
    assert score("phq9", [3] * 9) == ScaleResult("phq9", 27, "severe", ("item9_positive",))


def test_phq9_item9_above_zero_is_flagged_whatever_the_total() -> None:
    result = score("phq9", [0] * 8 + [1])
    assert (result.total, result.severity, result.flags) == (1, "minimal", ("item9_positive",))


def test_phq9_item9_zero_is_not_flagged_even_when_severe() -> None:
    assert score("phq9", [3] * 8 + [0]).flags == ()


def test_phq9_fhir_sdc_example_scores_10_with_item9_flagged() -> None:
    path = Path("/work/shared/conformance/fhir/questionnaireresponse-sdc-profile-example-PHQ9.json")
    if not path.exists():
        pytest.skip("shared FHIR conformance example not present")
    values = {0: "not at all", 1: "several days", 2: "more than half the days",
              3: "nearly every day"}
    by_label = {label: value for value, label in values.items()}
    doc = json.loads(path.read_text())
    questions = [q for q in doc["item"][0]["item"] if q["linkId"] != "H1/TS"]
    answers = [by_label[q["answer"][0]["valueCoding"]["display"].lower()] for q in questions]
    # The example's own stored total (13) disagrees with its answers; the answers sum to 10.
    assert score("phq9", answers).as_dict() == {
        "scale": "phq9", "total": 10, "severity": "moderate", "flags": ["item9_positive"],
    }


# --- GAD-7 and MADRS (facts 4.2, 4.3) -----------------------------------------------------------

@pytest.mark.parametrize(("total", "band"), [
    (0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
    (15, "severe"), (21, "severe"),
])
def test_gad7_total_falls_in_its_band(total: int, band: str) -> None:
    assert score("gad7", spread(total, 7, 3)) == ScaleResult("gad7", total, band, ())


@pytest.mark.parametrize(("total", "band"), [
    (0, "normal"), (6, "normal"), (7, "mild"), (19, "mild"), (20, "moderate"), (34, "moderate"),
    (35, "severe"), (60, "severe"),
])
def test_madrs_total_falls_in_its_band(total: int, band: str) -> None:
    assert score("madrs", spread(total, 10, 6)) == ScaleResult("madrs", total, band, ())


# --- QIDS-SR16 (facts 4.4) ----------------------------------------------------------------------

QIDS_DOMAIN_FIRST_ITEMS = (1, 5, 6, 10, 11, 12, 13, 14, 15)  # 1-based first item per domain


def qids_with_total(total: int) -> list[int]:
    answers = [0] * 16
    for item in QIDS_DOMAIN_FIRST_ITEMS:
        answers[item - 1] = min(3, total)
        total -= answers[item - 1]
    return answers


def test_qids_scores_the_highest_item_of_each_multi_item_domain() -> None:
    answers = [0] * 16
    answers[0:4] = [1, 3, 2, 3]  # sleep: max 3, not the sum 9
    answers[5:9] = [2, 0, 1, 0]  # appetite/weight: max 2
    answers[14:16] = [1, 2]  # psychomotor: max 2
    answers[4] = 1  # sad mood, a single-item domain
    assert score("qids-sr16", answers).total == 3 + 2 + 2 + 1


def test_qids_all_items_at_three_is_27_not_48() -> None:
    assert score("qids-sr16", [3] * 16) == ScaleResult("qids-sr16", 27, "very_severe", ())
    assert max_total("qids-sr16") == 27


@pytest.mark.parametrize(("total", "band"), [
    (0, "none"), (5, "none"), (6, "mild"), (10, "mild"), (11, "moderate"), (15, "moderate"),
    (16, "severe"), (20, "severe"), (21, "very_severe"), (27, "very_severe"),
])
def test_qids_total_falls_in_its_band(total: int, band: str) -> None:
    result = score("qids-sr16", qids_with_total(total))
    assert (result.total, result.severity) == (total, band)


@given(st.lists(st.integers(0, 3), min_size=16, max_size=16))
def test_qids_total_is_between_0_and_27_and_at_most_the_item_sum(answers: list[int]) -> None:
    total = score("qids-sr16", answers).total
    assert total is not None and 0 <= total <= min(27, sum(answers))


# --- PCL-5 (facts 4.7) ---------------------------------------------------------------------------

def pcl5_items(rated: dict[int, int]) -> list[int]:
    answers = [0] * 20
    for item, value in rated.items():
        answers[item - 1] = value
    return answers


MINIMAL_DSM5 = {1: 2, 6: 2, 8: 2, 9: 2, 15: 2, 16: 2}  # 1 B, 1 C, 2 D, 2 E


def test_pcl5_minimal_cluster_pattern_meets_dsm5_criteria() -> None:
    result = score("pcl5", pcl5_items(MINIMAL_DSM5))
    assert result == ScaleResult("pcl5", 12, None, ("dsm5_criteria_met",))


@pytest.mark.parametrize("drop", [1, 6, 9, 16])
def test_pcl5_one_cluster_short_does_not_meet_dsm5_criteria(drop: int) -> None:
    rated = {k: v for k, v in MINIMAL_DSM5.items() if k != drop}
    assert score("pcl5", pcl5_items(rated)).flags == ()


def test_pcl5_items_rated_1_do_not_count_towards_a_cluster() -> None:
    rated = {**MINIMAL_DSM5, 9: 1}
    assert "dsm5_criteria_met" not in score("pcl5", pcl5_items(rated)).flags


@pytest.mark.parametrize(("total", "flags"), [(32, ()), (33, ("probable_ptsd",))])
def test_pcl5_probable_ptsd_from_33(total: int, flags: tuple[str, ...]) -> None:
    # Concentrated in cluster B-C-D items 1-8 at 4, so only 1 D item >= 2: criteria not met.
    answers = [0] * 20
    for i in range(8):
        answers[i] = min(4, total)
        total -= answers[i]
    answers[8] = total  # remainder stays below 2 for these totals
    assert score("pcl5", answers).flags == flags


def test_pcl5_flags_come_in_table_order() -> None:
    assert score("pcl5", [4] * 20).flags == ("probable_ptsd", "dsm5_criteria_met")


# --- CADSS and Aldrete (facts 4.5, 4.10) ---------------------------------------------------------

def test_cadss_sums_23_items_without_a_band() -> None:
    assert score("cadss", [4] * 23) == ScaleResult("cadss", 92, None, ())
    assert score("cadss", spread(17, 23, 4)).total == 17


@pytest.mark.parametrize(("total", "flags"), [
    (8, ()), (9, ("discharge_ready",)), (10, ("discharge_ready",)),
])
def test_aldrete_discharge_ready_from_9(total: int, flags: tuple[str, ...]) -> None:
    assert score("aldrete", spread(total, 5, 2)) == ScaleResult("aldrete", total, None, flags)


# --- C-SSRS screener (facts 4.6) -----------------------------------------------------------------

@pytest.mark.parametrize(("answers", "risk"), [
    ([0, 0, 0, 0, 0, 0, 0], "none"),
    ([1, 0, 0, 0, 0, 0, 0], "low"),
    ([0, 1, 0, 0, 0, 0, 0], "low"),
    ([1, 1, 0, 0, 0, 0, 0], "low"),
    ([1, 1, 1, 0, 0, 0, 0], "moderate"),
    ([0, 0, 0, 0, 0, 1, 0], "moderate"),  # behaviour, not in the past 3 months
    ([1, 1, 0, 1, 0, 0, 0], "high"),  # intent
    ([1, 1, 0, 0, 1, 0, 0], "high"),  # plan
    ([0, 0, 0, 0, 0, 1, 1], "high"),  # behaviour in the past 3 months
    ([1, 1, 1, 0, 0, 1, 0], "moderate"),
])
def test_cssrs_risk_level_follows_triage(answers: list[int], risk: str) -> None:
    assert score("cssrs-screen", answers) == ScaleResult("cssrs-screen", None, risk, ())


@pytest.mark.parametrize("answers", [
    [1, 0, 1, 0, 0, 0, 0], [1, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0],
])
def test_cssrs_q3_to_q5_answered_after_no_to_q2_is_refused(answers: list[int]) -> None:
    with pytest.raises(ScaleAnswersInvalid, match=r"^cssrs-screen: Q3-Q5 must be 0 when Q2 is 0$"):
        score("cssrs-screen", answers)


def test_cssrs_within_3_months_answered_after_no_to_q6_is_refused() -> None:
    with pytest.raises(ScaleAnswersInvalid, match="when Q6 is 0"):
        score("cssrs-screen", [1, 1, 0, 0, 0, 0, 1])


def test_cssrs_answers_are_yes_no_only() -> None:
    with pytest.raises(ScaleAnswersInvalid, match=r"^cssrs-screen item 1: 2 is outside 0-1$"):
        score("cssrs-screen", [2, 0, 0, 0, 0, 0, 0])


# --- Invalid input -------------------------------------------------------------------------------

def test_wrong_number_of_answers_is_refused_naming_the_count() -> None:
    with pytest.raises(ScaleAnswersInvalid) as info:
        score("phq9", [0] * 8)
    assert str(info.value) == "phq9: expected 9 answers, got 8"


def test_answer_out_of_range_is_refused_naming_the_item() -> None:
    with pytest.raises(ScaleAnswersInvalid) as info:
        score("phq9", [0, 0, 4, 0, 0, 0, 0, 0, 0])
    assert str(info.value) == "phq9 item 3: 4 is outside 0-3"
    assert (info.value.item, info.value.detail) == (3, "4 is outside 0-3")


@pytest.mark.parametrize("bad", [-1, True, 1.0, "1", None])
def test_non_integer_or_negative_answer_is_refused(bad: object) -> None:
    answers: list[object] = [0] * 7
    answers[6] = bad
    with pytest.raises(ScaleAnswersInvalid, match=r"^gad7 item 7: "):
        score("gad7", answers)  # type: ignore[arg-type]


def test_a_string_of_digits_is_not_a_list_of_answers() -> None:
    with pytest.raises(ScaleAnswersInvalid):
        score("gad7", "0000000")  # type: ignore[arg-type]


def test_unknown_scale_is_refused_as_a_value_error() -> None:
    with pytest.raises(UnknownScale, match=r"^bprs: unknown scale") as info:
        score("bprs", [1] * 18)
    assert isinstance(info.value, ValueError)


def test_as_dict_is_exactly_the_cli_shape() -> None:
    out = score("cssrs-screen", [0] * 7).as_dict()
    assert out == {"scale": "cssrs-screen", "total": None, "severity": "none", "flags": []}
    assert json.loads(json.dumps(out)) == out


# --- Registry (metadata) -------------------------------------------------------------------------

def test_registry_lists_the_eight_contract_scales_with_their_item_counts() -> None:
    counts = {sid: (spec.n_items, spec.item_min, spec.item_max) for sid, spec in SCALES.items()}
    assert counts == {
        "phq9": (9, 0, 3), "gad7": (7, 0, 3), "madrs": (10, 0, 6), "qids-sr16": (16, 0, 3),
        "pcl5": (20, 0, 4), "cadss": (23, 0, 4), "cssrs-screen": (7, 0, 1), "aldrete": (5, 0, 2),
    }


def test_registry_loinc_totals_only_where_confirmed() -> None:
    totals = {sid: spec.loinc_total for sid, spec in SCALES.items()}
    assert totals == {"phq9": "44261-6", "gad7": "70274-6", "madrs": None, "qids-sr16": None,
                      "pcl5": None, "cadss": None, "cssrs-screen": None, "aldrete": None}
    cssrs = SCALES["cssrs-screen"]
    assert [i.loinc for i in cssrs.items] == [
        "93246-7", "93247-5", "93248-3", "93249-1", "93250-9", "93267-3", "93269-9"]
    assert cssrs.loinc_risk_level == "93374-7"
    assert SCALES["phq9"].items[8].loinc == "44260-8"


def test_patient_facing_scales_have_prompts_and_labelled_options() -> None:
    for sid in ("phq9", "gad7", "cssrs-screen"):
        spec = SCALES[sid]
        assert all(item.prompt and not item.prompt.startswith("Item ") for item in spec.items)
        assert [o.value for o in spec.options] == list(range(spec.item_min, spec.item_max + 1))
    assert SCALES["phq9"].options[2].label == "More than half the days"
    assert [o.label for o in SCALES["cssrs-screen"].options] == ["No", "Yes"]
    assert SCALES["madrs"].items[0].prompt == "Item 1"


def test_cssrs_skip_logic_is_described_for_forms() -> None:
    asked_if = [item.asked_if_yes for item in SCALES["cssrs-screen"].items]
    assert asked_if == [None, None, 2, 2, 2, None, 6]


def test_every_scale_names_its_clinical_facts_section() -> None:
    assert all(spec.source.startswith("clinical-facts 4.") for spec in SCALES.values())


# --- Response and remission (facts 4.3) ----------------------------------------------------------

@pytest.mark.parametrize(("baseline", "current", "expected"), [
    (30, 12, Decimal("-60.0")),
    (3, 2, Decimal("-33.3")),
    (16, 15, Decimal("-6.3")),  # -6.25: half away from zero (binary round() would give -6.2)
    (16, 17, Decimal("6.3")),
    (20, 20, Decimal("0.0")),
])
def test_percent_change_is_exact_decimal_rounded_half_away_from_zero(
    baseline: int, current: int, expected: Decimal
) -> None:
    assert percent_change(baseline, current) == expected


def test_percent_change_from_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="baseline"):
        percent_change(0, 5)


@pytest.mark.parametrize(("baseline", "current", "remission_max", "expected"), [
    (30, 12, 12, "remission"),  # at the threshold
    (30, 13, 12, "response"),
    (30, 15, 12, "response"),  # exactly 50%
    (31, 16, 12, "partial"),  # 48.4%
    (32, 24, 9, "partial"),  # exactly 25%
    (32, 25, 9, "none"),
    (30, 35, 9, "none"),  # worse
    (8, 8, 9, "remission"),  # low at baseline: remission is about the current score
])
def test_classify_response(baseline: int, current: int, remission_max: int, expected: str) -> None:
    assert classify_response("madrs", baseline, current, remission_max) == expected


def test_classify_response_remission_threshold_is_the_clinics_choice() -> None:
    assert classify_response("madrs", 30, 10, 12) == "remission"
    assert classify_response("madrs", 30, 10, 9) == "response"


@pytest.mark.parametrize(("scale", "baseline"), [("cadss", 10), ("aldrete", 5), ("phq9", 28)])
def test_classify_response_refuses_scales_without_response_and_impossible_totals(
    scale: str, baseline: int
) -> None:
    with pytest.raises(ScaleAnswersInvalid):
        classify_response(scale, baseline, 1, 0)
