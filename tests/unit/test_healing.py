"""Token healing's back-up and constraint, on the demo pair's tokenizer (the same code CodeLlama's goes through)."""

from __future__ import annotations

import random

import pytest

from lsp_server.engine.models import _load_tokenizer, demo_paths
from lsp_server.engine.tokenizer import TokenCodec
from lsp_server.healing import WORD_BYTES, Vocabulary, heal, piece_bytes, strip_healed
from lsp_server.prompt import CursorContext, PromptBuilder
from tests.fixtures import corpus_text

NON_ASCII = "s = 'é 中文 😀'\nname_中文 = café\nprint(s, '😀😀')  # 中文\n"


@pytest.fixture(scope="module")
def codec():
    return TokenCodec(_load_tokenizer(str(demo_paths()[0])))


@pytest.fixture(scope="module")
def vocab(codec):
    return Vocabulary(piece_bytes(*codec.pieces()))


def spelled(vocab, ids) -> bytes:
    return b"".join(vocab.pieces[i] for i in ids)


def follows(healing, ids) -> bool:
    """Whether generating `ids` keeps to the constraint at every step."""
    return all((allowed := healing.allowed_after(ids[:j])) is None or ids[j] in allowed for j in range(len(ids)))


@pytest.mark.parametrize("prefix, healed", [
    ("        self.ite", "ite"),  # "self" "." "ite": the partial word
    ("    result = os.path.jo", "jo"),
    ("def get_val", " get_val"),  # the word's tokens, with the space SentencePiece joins to it
    ("    return ", " "),  # a lone space: in training a space goes with the word after it
    ("x = '中", "中"),  # three byte-fallback tokens, one character
    ("x = 'é 😀", "😀"),  # four byte-fallback tokens, one character (the space before is a word boundary)
    ("x = 1\n", ""),  # at a line start nothing is healed: the line rules read the text after a line break
    ("x", ""),  # the window's first token carries the dummy-prefix space, not the document's
])
def test_the_prefix_is_backed_up_to_a_token_boundary(codec, vocab, prefix, healed):
    ids = codec.encode(prefix)
    kept, healing, text = heal(ids, vocab)
    assert text == healed
    assert kept == ids[:len(ids) - len(ids[len(kept):])] and spelled(vocab, ids[len(kept):]) == healed.encode()
    assert (healing is not None) == bool(healed)


def test_the_word_back_up_is_bounded(codec, vocab):
    ids = codec.encode("x = some_really_long_identifier_name_being_typ")
    _, _, text = heal(ids, vocab)
    last = spelled(vocab, ids[-1:])
    assert text.encode() == last or len(text.encode()) <= WORD_BYTES
    assert "some_really" not in text


def test_healing_is_lossless_and_the_original_tokens_keep_to_it(codec, vocab):
    """At many cursor positions of real code and non-ASCII text: the kept ids and the healed text
    are the prefix again, and the prefix's own tokens (and the one-token spellings) keep to the constraint."""
    text = corpus_text()[:20000] + NON_ASCII * 3
    rng = random.Random(0)
    healed_somewhere = 0
    for cut in [rng.randrange(20, len(text)) for _ in range(300)] + list(range(len(text) - len(NON_ASCII), len(text))):
        prefix = text[cut - 200:cut]
        ids = codec.encode(prefix)
        kept, healing, healed = heal(ids, vocab)
        assert codec.decode(kept) + healed == codec.decode(ids), repr(prefix[-20:])
        assert "\n" not in healed and "\r" not in healed
        if healing is None:
            continue
        healed_somewhere += 1
        assert follows(healing, ids[len(kept):])
        assert set(vocab.starting_with(healed.encode())) <= healing.allowed_after([])
    assert healed_somewhere > 200


def test_every_allowed_token_is_consistent_with_the_healed_text(codec, vocab):
    for prefix in ["        self.ite", "x = '中", "name_中文 = caf", "    return "]:
        _, healing, healed = heal(codec.encode(prefix), vocab)
        want = healed.encode()
        for state, allowed in enumerate(healing.allowed):
            rest = want[state:]
            for i in allowed:
                b = vocab.pieces[i]
                assert b.startswith(rest) or (rest.startswith(b) and len(b) < len(rest)), (prefix, state, b)
                assert (i in healing.partial[state]) == (len(b) < len(rest))
        assert not {0, 1, 2} & healing.allowed[0]  # control ids spell no text
        # every id that spells a proper part of the text at the start is allowed there, and leads on
        for i, n in vocab.spelling_part(want):
            assert i in healing.allowed[0] and healing.allowed_after([i]) == healing.allowed[n]


def test_the_ids_starting_with_a_text_are_every_one(vocab):
    """The sorted-run lookup against reading every piece, at the byte range's edges too."""
    edges = Vocabulary([None, b"\xff", b"\xff\xff", b"\xfe\xff", b"\xfe", b"\xfd", b"a"])
    for v in (vocab, edges):
        for text in [b" ", b"s", b"self", b"\xe4", b"\xfe", b"\xff", b"zzzz", b"_", b"\x00"]:
            want = sorted(i for i, b in enumerate(v.pieces) if b and b.startswith(text))
            assert sorted(v.starting_with(text)) == want, text


def test_no_special_id_is_ever_allowed(codec, vocab):
    """"▁<PRE>" is a piece that starts with " <", but no text spells it."""
    fim = codec.fim
    specials = {0, codec.bos, codec.eos, fim.prefix, fim.suffix, fim.middle, fim.end}
    for prefix in ["if a <", "x = a<", "f(a, <"]:
        _, healing, healed = heal(codec.encode(prefix), vocab)
        assert healed and not specials & frozenset().union(*healing.allowed), prefix


def test_a_token_that_spells_the_rest_ends_the_constraint(codec, vocab):
    ids = codec.encode("        self.ite")
    kept, healing, _ = heal(ids, vocab)
    ite = ids[-1]
    assert healing.allowed_after([ite]) is None
    assert healing.allowed_after([ite, 5, 6]) is None
    (i,) = codec.encode_infill("i")
    assert healing.allowed_after([i]) is not None and ite not in healing.allowed_after([i])


def test_the_builder_heals_every_view(codec):
    builder = PromptBuilder(codec, context_tokens=256, draft_positions=200, reserve=40)
    ctx = CursorContext("class Stack:\n    def push(self, item):\n        self.ite", "\n")
    p = builder.build(ctx)
    assert p.healed == "ite" and p.healing is not None
    assert p.target_ids[-len(p.prefix_ids):] == p.prefix_ids and p.draft_ids[1:] == p.prefix_ids
    assert p.context_ids[-len(p.prefix_ids):] == p.prefix_ids
    assert codec.decode_continuation(p.prefix_ids).endswith("self.")
    off = PromptBuilder(codec, context_tokens=256, draft_positions=200, reserve=40, heal=False).build(ctx)
    assert off.healing is None and off.prefix_ids == p.prefix_ids + codec.encode_infill("ite")


def test_typing_inside_a_word_keeps_the_prompt(codec):
    """The healed prompt stops before the word being typed, so its keystrokes reuse the whole cached prompt."""
    builder = PromptBuilder(codec, context_tokens=256)
    prompts = [builder.build(CursorContext("def push(self, item):\n    self." + "items"[:n], "\n")) for n in range(1, 6)]
    assert all(p.target_ids == prompts[0].target_ids for p in prompts)
    assert [p.healed for p in prompts] == ["i", "it", "ite", "item", "items"]


@pytest.mark.parametrize("text, healed, out", [
    ("items = []", "ite", "ms = []"),
    (" 中文'", " 中", "文'"),
    ("it", "ite", ""),  # decoding ended before the healed text was spelled: nothing to show
    ("abc", "", "abc"),
])
def test_strip_healed(text, healed, out):
    assert strip_healed(text, healed) == out


def test_a_vocabulary_without_byte_pieces_is_not_healed():
    assert piece_bytes(["<unk>", "a", "Ġb"], set()) is None
