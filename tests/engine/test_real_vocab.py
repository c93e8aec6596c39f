"""Our FIM prompts with the real LLaMA vocabulary, the one CodeLlama extends with its FIM specials.

The fixture tokenizers are trained here and small; this one is Meta's 32000-piece SentencePiece model
(as the GGUF vocabulary llama.cpp tests its tokenizer with, fetched by scripts/fetch_llama_vocab.sh).

SentencePiece itself is the reference (Meta's llama/generation.py calls it). transformers builds every
LLaMA/CodeLlama tokenizer with a Metaspace pre-tokenizer (prepend_scheme "first"), even from a
tokenizer.json whose normalizer is SentencePiece's (Prepend "▁", Replace " " → "▁"): it adds the dummy
prefix only when the text does not already start with a space, so " Hello" loses a space that
SentencePiece keeps (['▁', '▁Hello']). Here 15 of llama.cpp's 47 vectors fail that way; with
SentencePiece's own normalizer put back, all 47 pass. That tokenizer is `meta` below.

Then the product's tokenizer (transformers' own pipeline) gets CodeLlama's 16 extra ids with the FIM
specials at their real ids, and PromptBuilder's prompts must equal the ids of Meta's reference format
built by hand: specials by id, encode(prefix), encode_infilling(suffix) = encode("☺" + suffix)[2:].
They do, except where the prefix window starts with a space (an indented line): there the prompt has
one space fewer than Meta's (a known defect, xfail strict, below).
"""

from __future__ import annotations

import pytest
from tokenizers import AddedToken, normalizers
from transformers import AutoTokenizer

from lsp_server.engine.tokenizer import FimIds, TokenCodec
from lsp_server.prompt import CursorContext, PromptBuilder
from tests.llama_cpp import vocab_dir

VOCAB = "ggml-vocab-llama-spm.gguf"
SEPARATOR = "\n__ggml_vocab_test__\n"  # between the cases of the .inp file
# CodeLlama-7b's tokenizer: 32016 ids, the FIM specials at these (the other 12 extra ids are unused)
CODELLAMA_FIM = {"▁<PRE>": 32007, "▁<SUF>": 32008, "▁<MID>": 32009, "▁<EOT>": 32010}
CODELLAMA_VOCAB = 32016

CASES = [  # (name, prefix, suffix)
    ("leading spaces", "class A:\n    def f(self):\n        ", "    return 1\n\n  x = 2\n"),
    ("space before the cursor", "def add(a, b):\n    return ", " a + b\n"),
    ("suffix starts with a word", "total = ", "value * 2\n"),
    ("emoji and CJK (byte fallback)", "s = '😀 中文", "𝔘 ☺'\nprint(s)  # 日本語\n"),
    ("digits", "n = 1234", "5678 + 3.14159\n"),
    ("tabs and blank lines", "if x:\n\n\t", "\n\n\ty = 0\n"),
    ("file start, no prefix", "", "import os\n"),
    ("no suffix", "import os\nos.", ""),
    pytest.param("window starts with indentation", "    return x", "\n", marks=pytest.mark.xfail(
        strict=True, reason="transformers' Metaspace(prepend_scheme=first) drops the dummy-prefix space "
        "before a leading space; SentencePiece keeps it: the prompt reads one space less")),
]


@pytest.fixture(scope="module")
def llama():
    """Meta's LLaMA tokenizer as transformers builds it from the GGUF vocabulary (32000 ids)."""
    folder = vocab_dir()
    return AutoTokenizer.from_pretrained(str(folder), gguf_file=VOCAB), folder


@pytest.fixture(scope="module")
def meta(llama):
    """The same vocabulary with SentencePiece's own normalizer, as Meta's reference code tokenizes."""
    tok = AutoTokenizer.from_pretrained(str(llama[1]), gguf_file=VOCAB)
    tok.backend_tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.backend_tokenizer.pre_tokenizer = None
    return tok


@pytest.fixture(scope="module")
def codellama(llama):
    """The same tokenizer extended as CodeLlama's: 16 extra ids, the FIM specials at their real ids."""
    tok = AutoTokenizer.from_pretrained(str(llama[1]), gguf_file=VOCAB)
    by_id = {i: name for name, i in CODELLAMA_FIM.items()}
    extra = [by_id.get(i, f"<unused_{i}>") for i in range(len(tok), CODELLAMA_VOCAB)]
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in extra], special_tokens=True)
    assert len(tok) == CODELLAMA_VOCAB and tok.convert_tokens_to_ids(list(CODELLAMA_FIM)) == list(CODELLAMA_FIM.values())
    return tok


def meta_encode(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False) if text else []


def meta_infill(tok, text: str) -> list[int]:
    """Meta's encode_infilling: "☺" comes out as ['▁', '☺'], and dropping both drops the dummy prefix."""
    return meta_encode(tok, "☺" + text)[2:] if text else []


def vectors(folder):
    inputs = (folder / f"{VOCAB}.inp").read_text(encoding="utf-8").split(SEPARATOR)
    inputs[-1] = inputs[-1].removesuffix(SEPARATOR).removesuffix(SEPARATOR.rstrip("\n"))
    outputs = (folder / f"{VOCAB}.out").read_text(encoding="utf-8").split("\n")
    assert len(inputs) > 30 and len(outputs) >= len(inputs)
    return [(text, [int(i) for i in line.split()]) for text, line in zip(inputs, outputs, strict=False)]


def test_sentencepieces_normalizer_reproduces_llama_cpps_vectors(llama, meta):
    cases = vectors(llama[1])
    assert len(meta) == 32000
    wrong = [(text, meta_encode(meta, text), want) for text, want in cases if meta_encode(meta, text) != want]
    assert not wrong, wrong[:3]


def test_transformers_pipeline_differs_only_on_a_leading_space(llama):
    tok, cases = llama[0], vectors(llama[1])
    wrong = [text for text, want in cases if meta_encode(tok, text) != want]
    assert wrong and all(text.startswith(" ") for text in wrong), wrong
    # the dummy prefix plus two spaces is "▁▁▁x" in SentencePiece: here one "▁" is missing
    assert "".join(tok.convert_ids_to_tokens(meta_encode(tok, "  x"))) == "▁▁x"


def test_the_codec_finds_codellamas_specials(codellama):
    codec = TokenCodec(codellama)
    assert (codec.bos, codec.eos) == (1, 2)
    assert codec.fim == FimIds(prefix=32007, suffix=32008, middle=32009, end=32010)
    assert not {1, 32007, 32008, 32009, 32010} & set(codec.encode("x = '▁<PRE> <s> ▁<MID>'"))


@pytest.mark.parametrize(("name", "prefix", "suffix"), CASES)
def test_prompts_equal_metas_format_by_hand(codellama, meta, name, prefix, suffix):
    codec = TokenCodec(codellama)
    ctx = CursorContext(prefix=prefix, suffix=suffix)
    pre, suf = meta_encode(meta, prefix), meta_infill(meta, suffix)
    spm = PromptBuilder(codec, fim_order="spm", heal=False).build(ctx)
    psm = PromptBuilder(codec, fim_order="psm", heal=False).build(ctx)
    assert spm.target_ids == [1, 32007, 32008] + suf + [32009] + pre
    assert psm.target_ids == [1, 32007] + pre + [32008] + suf + [32009]
    assert codec.decode_continuation(suf) == suffix and codec.decode(pre) == prefix


def test_the_suffix_has_no_dummy_prefix(codellama, meta):
    codec = TokenCodec(codellama)
    for suffix in ["    return 1\n", "value\n", " a\n", "中文\n"]:
        ids = codec.encode_infill(suffix)
        assert ids == meta_infill(meta, suffix) and codec.decode_continuation(ids) == suffix
        assert ids != meta_encode(meta, suffix)  # encode reads one more leading space


def test_byte_fallback_and_split_digits(codellama):
    codec = TokenCodec(codellama)
    emoji = codec.encode_infill("😀")
    assert codellama.convert_ids_to_tokens(emoji) == ["<0xF0>", "<0x9F>", "<0x98>", "<0x80>"]
    assert codec.decode_continuation(emoji) == "😀"
    assert codellama.convert_ids_to_tokens(codec.encode_infill("2024")) == ["2", "0", "2", "4"]


@pytest.mark.parametrize("fim_order", ["spm", "psm"])
def test_healing_leaves_out_the_prefixs_last_token(codellama, meta, fim_order):
    codec = TokenCodec(codellama)
    ctx = CursorContext(prefix="def add(a, b):\n    return ", suffix="a + b\n")
    pre = meta_encode(meta, ctx.prefix)
    p = PromptBuilder(codec, fim_order=fim_order).build(ctx)
    assert p.prefix_ids == pre[:len(p.prefix_ids)] and len(p.prefix_ids) < len(pre)
    assert codec.decode(p.prefix_ids) + p.healed == ctx.prefix
