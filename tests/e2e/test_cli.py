"""The command line, as subprocesses or through main(): answers, and clear errors (exit 2) for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lsp_server.cli import main


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

# ---- errors at the command line: a clear message and exit 2, never a traceback ----

SAMPLE_CODE = '''"""Orders and their totals — prix en € (non-ASCII on purpose)."""

from dataclasses import dataclass


@dataclass
class Order:
    customer: str
    amount: float

    def with_tax(self, rate: float) -> float:
        return round(self.amount * (1 + rate), 2)


def total(orders: list[Order]) -> float:
    return sum(order.with_tax(0.2) for order in orders)
'''


@pytest.fixture
def offline_env(monkeypatch):
    """main() marks its own process offline; give the variable back after an in-process call."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


def usage_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    assert stop.value.code == 2
    return capsys.readouterr().err


def test_demo_types_into_any_python_file(pair, tmp_path):
    src = tmp_path / "orders.py"
    src.write_text(SAMPLE_CODE, encoding="utf-8")
    out = run("demo", "--file", str(src), "--target", str(pair[0]), "--draft", str(pair[1]), "--device", "cpu",
              "--max-tokens", "4", timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert "requests: median" in out.stdout and "line 12" in out.stdout, out.stdout


@pytest.mark.parametrize("text,words", [(None, "No such file"), ("# only a comment\n\n", "no line of code")])
def test_demo_refuses_a_file_it_cannot_type_into(tmp_path, text, words):
    src = tmp_path / "nope.py"
    if text is not None:
        src.write_text(text, encoding="utf-8")
    out = run("demo", "--file", str(src))
    assert out.returncode == 2 and words in out.stderr and "nope.py" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_demo_picks_code_lines_spread_over_any_file():
    from lsp_server.tools.demo import SCENARIOS, scenarios_for

    picked = scenarios_for(SAMPLE_CODE)
    lines = SAMPLE_CODE.split("\n")
    assert 3 <= len(picked) <= 5
    assert all(s.line in lines and not s.line.lstrip().startswith("#") for s in picked)
    assert all(len(s.line) - len(s.line.lstrip()) <= s.keep < len(s.line) for s in picked)
    assert len({s.line for s in picked}) == len(picked)
    assert scenarios_for(SAMPLE_CODE + "\n" + SCENARIOS[0].line + "\n") == [SCENARIOS[0]]  # curated first


def test_bench_gpu_refuses_real_shapes_without_a_gpu(monkeypatch, capsys, offline_env):
    import torch

    from lsp_server.bench import gpu as bench_gpu

    runs = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(bench_gpu, "gpu_suite", lambda **kw: runs.append(kw) or {})
    assert main(["bench", "gpu"]) == 2
    assert runs == [] and "--small" in capsys.readouterr().err
    assert main(["bench", "gpu", "--small", "--quick"]) == 0
    assert runs and runs[0]["small"] is True


@pytest.mark.parametrize("value", ["127.0.0.1:notaport", "127.0.0.1:99999", "127.0.0.1:", "localhost:0",
                                   "[::1]"])
def test_serve_refuses_a_bad_tcp_address(value, capsys, offline_env):
    err = usage_error(capsys, "serve", "--tcp", value)
    assert "argument --tcp" in err and "Traceback" not in err, err


@pytest.mark.parametrize("value,address", [("5007", ("127.0.0.1", 5007)), (":5007", ("127.0.0.1", 5007)),
                                           ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:65535", ("::1", 65535))])
def test_tcp_addresses_the_server_accepts(value, address):
    from lsp_server.cli import tcp_address

    assert tcp_address(value) == address


def test_doctor_exits_non_zero_when_its_report_holds_an_error(tmp_path):
    out = run("doctor", "--target", str(tmp_path / "no-such-model"), "--draft", "none", "--device", "cpu")
    assert out.returncode == 3, out.stderr
    assert "no-such-model" in json.loads(out.stdout)["error"]


@pytest.mark.parametrize("flag,value", [("--dtype", "nonsense"), ("--max-tokens", "0"), ("--max-tokens", "many"),
                                        ("--device", "gpu"), ("--temperature", "9"), ("--context-tokens", "10"),
                                        ("--draft-length", "0"), ("--fim-order", "pms")])
def test_bad_flag_values_are_usage_errors_named_after_the_flag(flag, value, capsys, offline_env):
    err = usage_error(capsys, "doctor", "--no-load", flag, value)
    assert f"argument {flag}:" in err and "speclsp." not in err, err


def test_good_flag_values_reach_the_settings(offline_env):
    from lsp_server.cli import build_parser, settings_from_args

    args = build_parser().parse_args(["doctor", "--dtype", "bfloat16", "--max-tokens", "1024", "--device", "cuda:1",
                                      "--temperature", "0.5", "--fim-order", "psm"])
    settings = settings_from_args(args)
    assert (settings.dtype, settings.max_tokens, settings.device, settings.temperature, settings.fim_order) == (
        "bfloat16", 1024, "cuda:1", 0.5, "psm")


def test_only_pull_may_reach_the_network(monkeypatch, capsys, offline_env):
    import huggingface_hub

    fetched = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo, **kw: fetched.append(repo) or "/x")
    assert main(["pull", "someone/model"]) == 0
    assert fetched == ["someone/model"] and "HF_HUB_OFFLINE" not in os.environ
    assert main(["doctor", "--no-load", "--device", "cpu"]) == 0
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # the Hugging Face libraries refuse the network too
