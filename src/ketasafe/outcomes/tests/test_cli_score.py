"""`ketasafe score SCALE ANSWER...` (contracts/cli.md): result JSON and exit 0, or one error line
and exit 2. Runs the command class directly: no database, no settings."""

from __future__ import annotations

import json

import pytest

from ketasafe.outcomes.management.commands.score import Command


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        Command().run_from_argv(["ketasafe", "score", *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_score_prints_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["phq9", "2", "2", "1", "2", "1", "2", "1", "1", "1"], capsys)
    assert (code, err) == (0, "")
    assert json.loads(out) == {"scale": "phq9", "total": 13, "severity": "moderate",
                               "flags": ["item9_positive"]}


def test_cssrs_prints_null_total_and_the_risk(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["cssrs-screen", "1", "1", "0", "1", "0", "0", "0"], capsys)
    assert code == 0
    assert json.loads(out) == {"scale": "cssrs-screen", "total": None, "severity": "high",
                               "flags": []}


@pytest.mark.parametrize(("argv", "message"), [
    (["phq9", "0", "0"], "phq9: expected 9 answers, got 2"),
    (["phq9"], "phq9: expected 9 answers, got 0"),
    (["gad7", "0", "0", "0", "0", "0", "0", "4"], "gad7 item 7: 4 is outside 0-3"),
    (["gad7", "0", "0", "0", "0", "0", "0", "-1"], "gad7 item 7: -1 is outside 0-3"),
    (["gad7", "0", "x", "0", "0", "0", "0", "0"], "gad7 item 2: 'x' is not an integer"),
    (["gad7", "0", "1.0", "0", "0", "0", "0", "0"], "gad7 item 2: '1.0' is not an integer"),
    (["cssrs-screen", "1", "0", "1", "0", "0", "0", "0"],
     "cssrs-screen: Q3-Q5 must be 0 when Q2 is 0"),
])
def test_bad_answers_exit_2_with_one_line(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [f"CommandError: {message}"]


def test_unknown_scale_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["bprs", "1"], capsys)
    assert code == 2 and "bprs: unknown scale" in err
