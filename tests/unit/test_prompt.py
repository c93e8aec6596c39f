"""FIM prompts at the token level, with the LLaMA-style SentencePiece tokenizer of the fixture pair."""

from __future__ import annotations

import pytest

from lsp_server.prompt import CursorContext, PromptBuilder, WindowState
from tests.fixtures import common_prefix, corpus_text


@pytest.fixture(scope="module")
def codec(loaded):
    return loaded.codec


@pytest.mark.parametrize("heal", [False, True])
def test_spm_and_psm_formats_by_id(codec, heal):
    fim, bos = codec.fim, codec.bos
    ctx = CursorContext(prefix="def add(a, b):\n    return ", suffix="a + b\n\nprint(add(1, 2))\n")
    pre, suf = codec.encode(ctx.prefix), codec.encode_infill(ctx.suffix)
    pre = pre[:-1] if heal else pre  # healing leaves out the last token, the lone space
    spm = PromptBuilder(codec, fim_order="spm", heal=heal).build(ctx)
    psm = PromptBuilder(codec, fim_order="psm", heal=heal).build(ctx)
    assert spm.target_ids == [bos, fim.prefix, fim.suffix] + suf + [fim.middle] + pre
    assert psm.target_ids == [bos, fim.prefix] + pre + [fim.suffix] + suf + [fim.middle]
    assert spm.healed == psm.healed == (" " if heal else "")


def test_suffix_has_no_leading_space(codec):
    for suffix in ["a + b\n", "    return x\n", "中文😀\n", ")\n"]:
        ids = codec.encode_infill(suffix)
        assert codec.decode_continuation(ids) == suffix
    assert codec.encode_infill("return") != codec.encode("return")  # encode adds the dummy-prefix space


@pytest.mark.parametrize("fim_order", ["psm", "spm"])
def test_a_long_suffix_is_cut_at_a_line_end(codec, fim_order):
    # Training (and Meta's reference) only ever show suffixes ending at a line's end; a suffix cut
    # inside a line is continued after <MID>, so the fill starts with the suffix's next line.
    suffix = "".join(f"    total_{i} = compute(values[{i}], 'π', 中文)\n" for i in range(200))
    builder = PromptBuilder(codec, context_tokens=256, fim_order=fim_order)
    p = builder.build(CursorContext(prefix="def f(values):\n    ", suffix=suffix))
    text = codec.decode_continuation(p.suffix_ids)
    assert 0 < len(p.suffix_ids) <= 64 and suffix.startswith(text) and text.endswith("\n"), text[-40:]


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
        encode, encode_infill, pieces = codec.encode, codec.encode_infill, codec.pieces

    ctx = CursorContext(prefix="import os\n", suffix="print(1)\n")
    assert PromptBuilder(NoFim()).build(ctx).target_ids == [codec.bos] + codec.encode("import os\n")


def typing_session(codec, fim_order="spm", context=256):
    """Type a real file's line character by character at the end of a long prefix."""
    text = corpus_text()
    start = text.index("def ", 6000)
    prefix, suffix = text[:start], text[start + 400:start + 1200]
    builder = PromptBuilder(codec, context_tokens=context, fim_order=fim_order, draft_positions=200, reserve=40)
    typed, window = text[start:start + 120], WindowState()
    return [builder.build(CursorContext(prefix + typed[:i], suffix), window) for i in range(len(typed))]


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
    # the first keystroke that changes the prompt: inside a word, healing keeps the prefix's ids
    a, b = next((a, b) for a, b in zip(prompts[10:], prompts[11:], strict=False) if a.prefix_ids != b.prefix_ids)
    assert len(b.target_ids) - common_prefix(a.target_ids, b.target_ids) > len(b.suffix_ids)  # why SPM is the default


class SpyCodec:
    """The fixture codec, counting the characters each build hands to the tokenizer."""

    def __init__(self, codec):
        self.codec, self.bos, self.fim = codec, codec.bos, codec.fim
        self.chars = 0

    def encode(self, text):
        self.chars += len(text)
        return self.codec.encode(text)

    def encode_infill(self, text):
        self.chars += len(text)
        return self.codec.encode_infill(text)

    def decode_continuation(self, ids):
        return self.codec.decode_continuation(ids)

    def pieces(self):
        return self.codec.pieces()


def type_into(builder, spy, prefix, suffix, typed):
    """Type `typed` after `prefix`, one build per keystroke: (prompts, characters encoded per build)."""
    prompts, chars, window = [], [], WindowState()
    for i in range(len(typed) + 1):
        spy.chars = 0
        prompts.append(builder.build(CursorContext(prefix + typed[:i], suffix), window))
        chars.append(spy.chars)
    return prompts, chars


@pytest.mark.parametrize("shape", ["code", "one long line"])
def test_a_multi_megabyte_document_costs_only_its_window(codec, shape):
    text = corpus_text()
    doc = text * (3_000_000 // len(text) + 1) if shape == "code" else "x = 1; " * 450_000
    cut = len(doc) * 2 // 3
    prefix, suffix = doc[:cut], doc[cut:]
    spy = SpyCodec(codec)
    builder = PromptBuilder(spy, context_tokens=512, draft_positions=300, reserve=40)
    prompts, chars = type_into(builder, spy, prefix, suffix, "value = compute(a, b)")
    window_chars = 512 * 8  # a token is rarely over 8 characters: the most text a window can use
    assert max(chars) <= 8 * window_chars, chars  # bounded by the window, not by the 2-3 MB document
    assert all(len(p.target_ids) <= 512 + 4 for p in prompts)
    reuse = [common_prefix(a.target_ids, b.target_ids) for a, b in zip(prompts, prompts[1:], strict=False)]
    assert sorted(len(b.target_ids) - r for b, r in zip(prompts[1:], reuse, strict=False))[len(reuse) // 2] <= 3
    assert sum(r < len(b.target_ids) // 2 for b, r in zip(prompts[1:], reuse, strict=False)) <= 2  # jumps, not slides


def test_a_jump_across_a_big_document_costs_only_the_window(codec):
    text = corpus_text()
    doc = text * (2_000_000 // len(text) + 1)
    spy = SpyCodec(codec)
    builder, window = PromptBuilder(spy, context_tokens=512), WindowState()
    for at in (len(doc) - 10, 1000, len(doc) // 2, len(doc) // 2 + 5000, 30):  # far jumps, both ways
        spy.chars = 0
        p = builder.build(CursorContext(doc[:at], doc[at:]), window)
        assert spy.chars <= 8 * 512 * 8, (at, spy.chars)
        assert p.prefix_ids and len(p.target_ids) <= 512 + 4
        assert codec.decode_continuation(p.prefix_ids[-20:]).strip() in doc[max(0, at - 200):at]


def test_an_edit_above_the_window_keeps_its_start(codec):
    text = corpus_text()
    doc = text * 3
    at = len(doc) - 5000
    builder, window = PromptBuilder(codec, context_tokens=256), WindowState()
    before = builder.build(CursorContext(doc[:at], doc[at:]), window)
    edited = "import sys\n" + doc  # e.g. an import added at the top while typing far below
    after = builder.build(CursorContext(edited[:at + 11], edited[at + 11:]), window)
    assert after.prefix_ids == before.prefix_ids  # same window text: the prompt's KV is still good


def test_remembered_windows_are_bounded(codec):
    from lsp_server.document_state import DOCUMENTS_KEPT, DocumentStore

    builder, documents = PromptBuilder(codec, context_tokens=256), DocumentStore()
    for i in range(DOCUMENTS_KEPT + 50):
        builder.build(CursorContext("x = 1\n", ""), documents.window(f"file:///d{i}.py"))
    assert len(documents) == DOCUMENTS_KEPT
