"""The embedded demo pair: loads offline, mirrors the real pair's vocabularies, completes real code."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from lsp_server.config import Settings
from lsp_server.engine.models import demo_paths, load_models, resolve_sources
from lsp_server.engine.tokenizer import FIM_TOKENS
from lsp_server.prompt import CursorContext
from lsp_server.service import CompletionService

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo():
    os.environ["HF_HUB_OFFLINE"] = "1"
    return load_models(Settings(device="cpu", dtype="float32"))


def test_default_is_the_demo_pair_when_the_real_one_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty Hugging Face cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    target, draft, notices = resolve_sources(Settings())
    assert (target, draft) == tuple(str(p) for p in demo_paths())
    assert any("speclsp pull" in n for n in notices)


def test_loads_offline_and_mirrors_the_real_vocabularies(demo):
    v = demo.draft.config.vocab_size
    assert demo.target.config.vocab_size == v + 4  # like 32016 = 32000 + FIM specials
    fim = demo.codec.fim
    assert [fim.prefix, fim.suffix, fim.middle, fim.end] == list(range(v, v + 4))
    assert demo.codec.tok.convert_ids_to_tokens(list(range(v, v + 4))) == list(FIM_TOKENS)
    assert demo.draft_vocab == v  # check_pair passed: shared ids mean the same text
    assert demo.info["target"] == str(demo_paths()[0]) and demo.info["fim"] is True


def test_weights_are_safetensors_and_small():
    files = [p for d in demo_paths() for p in d.iterdir()]
    weights = [p for p in files if p.suffix == ".safetensors"]
    assert weights and not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl")]
    assert max(p.stat().st_size for p in weights) <= 16 << 20
    assert sum(p.stat().st_size for p in weights) <= 40 << 20


CASES = [  # (prefix, suffix): held-out-style snippets; the completed line must be valid Python
    ("import os\n\n\ndef read_file(path):\n    with open(path) as f:\n        return f.", "\n"),
    ("class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self.items.",
     "\n"),
    ("for i in range(", "):\n    print(i)\n"),
    ("def add(a, b):\n    return a", "\n"),
]


def completed_line_parses(prefix: str, completion: str, suffix: str) -> bool:
    line = (prefix.split("\n")[-1] + completion + suffix.split("\n")[0]).strip()
    try:
        ast.parse(line + ("\n    pass" if line.endswith(":") else ""))
        return True
    except SyntaxError:
        return False


def test_completions_of_real_code_parse():
    service = CompletionService(Settings(device="cpu", dtype="float32", max_tokens=32, time_budget_ms=60_000))
    service.load()
    results = []
    for k, (prefix, suffix) in enumerate(CASES):
        text = service.compute(CursorContext(prefix, suffix), f"case{k}").text
        results.append((text, completed_line_parses(prefix, text, suffix)))
    assert all(text for text, _ in results)
    assert sum(ok for _, ok in results) >= 3, results


def test_model_card_quotes_the_evaluation_script_and_the_quality_suite():
    """docs/demo-models.md's numbers come from scripts/eval_demo_pair.py's JSON and from
    `speclsp bench quality`'s, not from hand."""
    result = json.loads((ROOT / "bench" / "results" / "demo-eval.json").read_text())
    quality = json.loads((ROOT / "bench" / "results" / "quality-demo-quick.json").read_text())
    spm = quality["pairs"]["demo"]["configs"]["spm/speculative"]["all"]
    card = (ROOT / "docs" / "demo-models.md").read_text(encoding="utf-8")
    for value in (result["loss_target"]["loss"], result["loss_draft"]["loss"],
                  result["acceptance"]["mean_tokens_per_target_forward"], spm["edit_similarity"],
                  spm["mid_word_correct_rate"]):
        assert str(value) in card, value
