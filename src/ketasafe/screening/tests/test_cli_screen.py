"""`ketasafe screen FILE|-` (contracts/cli.md): decision JSON on stdout and exit 0; one error
line naming the field on stderr and exit 2. Runs the command class directly, so no database and
no settings are needed."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from ketasafe.screening.management.commands.screen import Command

from .builders import CONTRACT_EXAMPLE


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        Command().run_from_argv(["ketasafe", "screen", *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_screen_file_prints_the_decision(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(CONTRACT_EXAMPLE))
    code, out, err = run([str(path)], capsys)
    assert (code, err) == (0, "")
    decision = json.loads(out)
    assert decision["decision"] == "needs_review"
    assert [f["rule"] for f in decision["findings"]] == ["PHQ9-ITEM9"]


def test_screen_reads_standard_input_for_dash(monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(CONTRACT_EXAMPLE).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, _ = run(["-"], capsys)
    assert code == 0 and json.loads(out)["rules_version"] == "default-v1"


def test_invalid_intake_exits_2_with_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = json.loads(json.dumps(CONTRACT_EXAMPLE))
    bad["patient"]["weight_kg"] = 400
    path = tmp_path / "intake.json"
    path.write_text(json.dumps(bad))
    code, out, err = run([str(path)], capsys)
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == ["CommandError: patient.weight_kg: 400 is outside 20-350"]


def test_bad_json_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "intake.json"
    path.write_text("{not json")
    code, _, err = run([str(path)], capsys)
    assert code == 2 and "JSON: " in err and len(err.strip().splitlines()) == 1


def test_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run([str(tmp_path / "missing.json")], capsys)
    assert code == 2 and "missing.json: cannot read" in err
