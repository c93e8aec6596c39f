"""The command line: `complete --json` and `doctor`, as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "lsp_server", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_complete_json_prints_text_and_stats(pair, tmp_path):
    src = tmp_path / "a.py"
    src.write_text("def add(a, b):\n    return a + b\n\n\nprint(add(1, 2))\n", encoding="utf-8")
    out = run("complete", str(src), "--line", "1", "--character", "11", "--json", "--target", str(pair[0]),
              "--draft", str(pair[1]), "--device", "cpu", "--max-tokens", "8")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1  # stdout carries exactly one JSON object; logs go to stderr
    data = json.loads(lines[0])
    assert isinstance(data["text"], str)
    for key in ("prompt_tokens", "reused_tokens", "prefill_tokens", "generated_tokens", "target_forwards",
                "drafted_tokens", "accepted_tokens", "rounds", "mean_accepted", "prefill_ms", "draft_ms",
                "verify_ms"):
        assert key in data["stats"], key
    assert 1 <= data["stats"]["generated_tokens"] <= 8


def test_complete_reports_bad_position_and_missing_model(pair, tmp_path):
    src = tmp_path / "a.py"
    src.write_text("x = 1\n", encoding="utf-8")
    bad = run("complete", str(src), "--line", "9", "--character", "0", "--target", str(pair[0]))
    assert bad.returncode == 2 and "past the end" in bad.stderr
    missing = run("complete", str(src), "--line", "0", "--character", "0", "--target", str(tmp_path / "nope"),
                  "--draft", "none")
    assert missing.returncode == 3 and "nope" in missing.stderr


def test_doctor_reports_versions_and_models(pair):
    out = run("doctor", "--target", str(pair[0]), "--draft", str(pair[1]), "--device", "cpu")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["versions"]["torch"] and data["device"]["cuda_available"] in (True, False)
    assert data["loaded"]["target"] == str(pair[0]) and data["startup_ms"] > 0


def test_time_budget_is_a_model_option():
    from lsp_server.cli import build_parser, settings_from_args

    for command in ("serve", "complete x.py --line 0 --character 0", "demo", "doctor"):
        args = build_parser().parse_args([*command.split(), "--time-budget-ms", "750"])
        assert settings_from_args(args).time_budget_ms == 750, command
    assert settings_from_args(build_parser().parse_args(["serve"])).time_budget_ms == 2000
