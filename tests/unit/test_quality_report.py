"""The quality suite's figures from its rows, its table, and its failure on changed outputs."""

from __future__ import annotations

import argparse

import pytest

from lsp_server import bench
from lsp_server.bench import quality, quality_report
from lsp_server.bench.holes import Hole

HOLES = [Hole("a.py", 0, 6, "mid_line", "x = fo", "\n", "o(1)"),
         Hole("a.py", 1, 4, "line_start", "x\n    ", "\n", "return y"),
         Hole("b.py", 0, 0, "line_start", "", "\n", "import 名前")]


def row(text: str, ms: float = 10.0, drafted: int = 4, accepted: int = 2) -> dict:
    return {"text": text, "latency_ms": ms, "finish_reason": "stop", "drafted": drafted, "accepted": accepted,
            "copy_drafted": 0, "copy_accepted": 0}


def rows(spm_plain: list[str] | None = None) -> dict:
    spec = [row("o(1)"), row(" return y"), row("")]
    plain = [row(t, drafted=0, accepted=0) for t in (spm_plain or [r["text"] for r in spec])]
    return {"spm/speculative": spec, "spm/plain": plain, "psm/speculative": spec, "psm/plain": spec}


def test_summarize():
    s = quality_report.summarize(HOLES, rows()["spm/speculative"])
    assert s["holes"] == 3 and s["exact_rate"] == 0.333
    assert s["empty_rate"] == 0.333 and s["leading_whitespace_error_rate"] == 0.333
    assert (s["mid_word_correct_rate"], s["mid_word_correct_counted"]) == (1.0, 1)
    assert s["bracket_imbalance_counted"] == 2  # the empty suggestion is not counted
    assert (s["drafted"], s["accepted"], s["acceptance"]) == (12, 6, 0.5)
    assert s["latency_ms_p50"] == 10.0 and s["finish_reasons"] == {"stop": 3}


def test_plain_decoding_drafts_nothing():
    assert quality_report.summarize(HOLES, rows()["spm/plain"])["acceptance"] is None


def test_by_kind_splits_the_holes():
    s = quality_report.by_kind(HOLES, rows()["spm/speculative"])
    assert (s["all"]["holes"], s["mid_line"]["holes"], s["line_start"]["holes"]) == (3, 1, 2)
    assert s["line_start"]["mid_word_correct_rate"] is None


def test_identical_outputs_pass():
    result = quality_report.pair_result(HOLES, rows(), {})
    assert result["failures"] == [] and result["identical"]["spm"] == {"identical": 3, "of": 3, "differ": []}


def test_a_changed_output_is_a_failure():
    result = quality_report.pair_result(HOLES, rows(["o(1)", " return y", "import x"]), {})
    assert result["identical"]["spm"]["identical"] == 2 and result["identical"]["psm"]["identical"] == 3
    assert result["identical"]["spm"]["differ"] == [{"hole": 2, "speculative": "", "plain": "import x"}]
    assert len(result["failures"]) == 1 and "spm" in result["failures"][0]


def test_a_partial_run_covers_the_first_holes():
    partial = {k: v[:2] for k, v in rows().items()}
    assert quality_report.pair_result(HOLES, partial, {})["configs"]["spm/plain"]["all"]["holes"] == 2


def fake_result(plain: list[str] | None = None) -> dict:
    pair = quality_report.pair_result(HOLES, rows(plain), {"target": "t"})
    return {"pairs": {"demo": pair}, "failures": [f"demo: {f}" for f in pair["failures"]],
            "heldout": {"mid_word_share": {"all": 1 / 3, "mid_line": 1.0, "line_start": 0.0}},
            "lsp": {"pair": "demo", "holes": 2, "same": 2, "differ": []}}


def test_the_table_has_a_row_per_order_and_kind():
    text = quality_report.table(fake_result())
    lines = text.splitlines()
    assert lines[0].split()[:4] == ["pair", "order", "kind", "holes"]
    assert sum(line.startswith("demo  spm") for line in lines) == 3
    assert "spm 3 of 3, psm 3 of 3" in text and "2 of 2 holes answered as by the service" in text
    assert "cursors inside a word: 33% of the holes (100% of the mid-line ones)" in text
    assert "FAILED" not in text


def test_the_command_fails_when_speculation_changed_an_output(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(quality, "quality_suite", lambda args, checkpoint: fake_result(["", "", ""]))
    monkeypatch.setattr(bench, "environment", lambda: {})
    args = argparse.Namespace(suite="quality", out=str(tmp_path / "q.json"), pair=None, quick=True, small=False)
    assert bench.run_bench(args) == 1
    assert "FAILED: demo: spm: speculative output differs" in capsys.readouterr().out
    assert (tmp_path / "q.json").is_file()
    monkeypatch.setattr(quality, "quality_suite", lambda args, checkpoint: fake_result())
    assert bench.run_bench(args) == 0


def test_pairs(tmp_path):
    assert quality.parse_pairs(None) == [("demo", quality.HELDOUT_LIST.parent)]
    (tmp_path / "v2" / "target").mkdir(parents=True)
    (tmp_path / "v2" / "draft").mkdir()
    assert quality.parse_pairs([f"v2={tmp_path / 'v2'}"]) == [("v2", tmp_path / "v2")]
    for bad in ([str(tmp_path / "v2")], [f"v2={tmp_path}"], [f"v2={tmp_path / 'v2'}"] * 2, [f"={tmp_path / 'v2'}"]):
        with pytest.raises(quality.BadArgument):
            quality.parse_pairs(bad)


def test_a_bad_pair_is_a_usage_error(tmp_path, capsys):
    args = argparse.Namespace(suite="quality", out=None, pair=[f"v2={tmp_path}"], quick=True, small=False)
    assert bench.run_bench(args) == 2
    assert "has no target/ and draft/" in capsys.readouterr().err


def test_default_output_names_the_pairs(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "draft").mkdir()
    args = argparse.Namespace(pair=["v1=" + str(quality.HELDOUT_LIST.parent), f"v2={tmp_path}"], quick=False)
    assert quality.default_out(args).as_posix() == "bench/results/quality-v1-v2.json"
    assert quality.default_out(argparse.Namespace(pair=None, quick=True)).name == "quality-demo-quick.json"
