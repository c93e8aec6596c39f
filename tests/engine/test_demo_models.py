"""The embedded demo pair: loads offline, mirrors the real pair's vocabularies, completes real code."""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

import pytest

from lsp_server.config import Settings
from lsp_server.engine.models import demo_paths, load_models, resolve_sources
from lsp_server.engine.tokenizer import FIM_TOKENS
from lsp_server.postprocess import make_stop
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


MID_WORD = [  # (prefix, the rest of the word being typed at the cursor); the rest of the line is not typed yet
    ("class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self.ite", "ms"),
    ("import os\n\ndef read(path):\n    with open(path) as f:\n        return f.rea", "d"),
    ("def add(a, b):\n    retu", "rn"),
    ("import sys\n\ndef main():\n    args = sys.ar", "gv"),
    ("def area(width, height):\n    return wid", "th"),
]


def test_a_cursor_inside_a_word_continues_the_word():
    """Token healing: the suggestion, put at the cursor, makes the word right, with no space and
    nothing typed written again; and typing on inside the word reuses the whole cached prompt."""
    service = CompletionService(Settings(device="cpu", dtype="float32", max_tokens=16, time_budget_ms=60_000))
    service.load()
    right = 0
    for k, (prefix, rest) in enumerate(MID_WORD):
        text = service.compute(CursorContext(prefix, "\n"), f"word{k}").text
        word, typed = re.match(r"\w*", text).group(), re.search(r"\w*$", prefix).group()
        assert not text[:1].isspace() and not word.startswith(typed[-1] + rest), (prefix[-10:], text)
        right += word == rest
    assert right >= 4, right
    typed_on = service.compute(CursorContext(MID_WORD[0][0] + "m", "\n"), "word0")
    assert typed_on.stats["reused_tokens"] == typed_on.stats["prompt_tokens"] - 1
    assert typed_on.text.startswith("s")


def test_a_cursor_inside_a_character_run_heals_whole_characters():
    service = CompletionService(Settings(device="cpu", dtype="float32", max_tokens=16, time_budget_ms=60_000))
    service.load()
    prompt = service.prompt(CursorContext("s = '中文 😀'\nprint(s)\nt = '中", "'\n"), "cjk")
    assert prompt.healed == "中"
    text = service.compute(CursorContext("s = '中文 😀'\nprint(s)\nt = '中", "'\n"), "cjk").text
    assert "\ufffd" not in text and not text.startswith("中")


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


def test_the_stop_rules_read_the_text_after_the_cursor(monkeypatch):
    """With healing the first tokens re-spell text the line already holds; the stop check must not
    see it, or a healed "(" is counted twice by the bracket rule and decoding stops where the cut
    would not."""
    from lsp_server import service as service_module

    seen: list[str] = []

    def spy(decode, ctx):
        stop = make_stop(decode, ctx)
        return lambda ids: seen.append(decode(ids)) or stop(ids)

    monkeypatch.setattr(service_module, "make_stop", spy)
    service = CompletionService(Settings(device="cpu", dtype="float32", max_tokens=12, time_budget_ms=60_000))
    service.load()
    ctx = CursorContext("def area(width, height):\n    return max(", "\n")
    prompt = service.prompt(ctx, "paren")
    assert prompt.healed.endswith("(")
    text = service.compute(ctx, "paren").text
    assert seen and all(not s.startswith(prompt.healed) for s in seen if s), (prompt.healed, seen[:3])
    assert text == "" or seen[-1].startswith(text)
