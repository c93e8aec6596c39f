"""FIM prompts at the token level, with the LLaMA-style SentencePiece tokenizer of the fixture pair."""

from __future__ import annotations

import pytest

from lsp_server.prompt import CursorContext, PromptBuilder
from tests.fixtures import common_prefix, corpus_text


@pytest.fixture(scope="module")
def codec(loaded):
    return loaded.codec


def test_spm_and_psm_formats_by_id(codec):
    fim, bos = codec.fim, codec.bos
    ctx = CursorContext(prefix="def add(a, b):\n    return ", suffix="a + b\n\nprint(add(1, 2))\n")
    pre, suf = codec.encode(ctx.prefix), codec.encode_infill(ctx.suffix)
    spm = PromptBuilder(codec, fim_order="spm").build(ctx).target_ids
    psm = PromptBuilder(codec, fim_order="psm").build(ctx).target_ids
    assert spm == [bos, fim.prefix, fim.suffix] + suf + [fim.middle] + pre
    assert psm == [bos, fim.prefix] + pre + [fim.suffix] + suf + [fim.middle]


def test_suffix_has_no_leading_space(codec):
    for suffix in ["a + b\n", "    return x\n", "中文😀\n", ")\n"]:
        ids = codec.encode_infill(suffix)
        assert codec.decode_continuation(ids) == suffix
    assert codec.encode_infill("return") != codec.encode("return")  # encode adds the dummy-prefix space


def test_text_spelling_a_special_is_not_a_special(codec):
    fim = codec.fim
    ctx = CursorContext(prefix="x = '▁<PRE> <s> ▁<EOT>'\n", suffix="▁<SUF>\n")
    p = PromptBuilder(codec).build(ctx)
    specials = {fim.prefix, fim.suffix, fim.middle, fim.end, codec.bos}
    assert not specials & set(p.prefix_ids + p.suffix_ids)
    assert p.target_ids.count(fim.prefix) == 1 and p.target_ids.count(codec.bos) == 1


def test_model_without_fim_gets_a_prefix_only_prompt(codec):
    class NoFim:
        bos, fim = codec.bos, None
        encode, encode_infill = codec.encode, codec.encode_infill

    ctx = CursorContext(prefix="import os\n", suffix="print(1)\n")
    assert PromptBuilder(NoFim()).build(ctx).target_ids == [codec.bos] + codec.encode("import os\n")


def typing_session(codec, fim_order="spm", context=256):
    """Type a real file's line character by character at the end of a long prefix."""
    text = corpus_text()
    start = text.index("def ", 6000)
    prefix, suffix = text[:start], text[start + 400:start + 1200]
    builder = PromptBuilder(codec, context_tokens=context, fim_order=fim_order, draft_positions=200, reserve=40)
    typed = text[start:start + 120]
    return [builder.build(CursorContext(prefix + typed[:i], suffix), "doc") for i in range(len(typed))]


def test_budget_is_respected(codec):
    for p in typing_session(codec):
        assert len(p.target_ids) <= 256 + 4
        assert len(p.draft_ids) <= 200 - 40
        assert p.draft_ids[0] == codec.bos and max(p.draft_ids) < codec.fim.prefix


def test_window_start_is_stable_while_typing(codec):
    prompts = typing_session(codec)
    reuse = [common_prefix(a.target_ids, b.target_ids) / len(b.target_ids) for a, b in zip(prompts, prompts[1:], strict=False)]
    jumps = sum(r < 0.5 for r in reuse)
    assert jumps <= 3  # the window moves in a few large jumps, not every keystroke
    typical = sorted(len(b.target_ids) - common_prefix(a.target_ids, b.target_ids) for a, b in zip(prompts, prompts[1:], strict=False))
    assert typical[len(typical) // 2] <= 3  # median keystroke changes at most a few tokens at the end


def test_draft_view_start_is_stable_while_typing(codec):
    prompts = typing_session(codec)
    changed = sum(common_prefix(a.draft_ids, b.draft_ids) < len(a.draft_ids) - 4 for a, b in zip(prompts, prompts[1:], strict=False))
    assert changed <= 6


def test_psm_changes_before_the_suffix(codec):
    prompts = typing_session(codec, "psm")
    a, b = prompts[10], prompts[11]
    assert len(b.target_ids) - common_prefix(a.target_ids, b.target_ids) > len(b.suffix_ids)  # why SPM is the default
