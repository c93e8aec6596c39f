#!/usr/bin/env python3
"""Train the embedded demo model pair: a small FIM-capable target and a tiny left-to-right draft.

Why this exists
---------------
speclsp serves CodeLlama-7b as the target model with AMD-Llama-135m-code as its speculative draft.
The machines that build and test the product cannot download those weights, so the package ships a
stand-in pair under ``lsp_server/models/demo/{target,draft}`` that goes through the same code paths:

* both are ``LlamaForCausalLM`` checkpoints (fp16, sharded safetensors) with LLaMA-style SentencePiece
  BPE tokenizers that load offline through ``AutoTokenizer``, ``LlamaTokenizer`` and (target)
  ``CodeLlamaTokenizer``;
* the target vocabulary is the draft vocabulary plus four fill-in-the-middle specials appended at the
  end (``▁<PRE> ▁<SUF> ▁<MID> ▁<EOT>`` at ids V..V+3), like 32016 vs 32000 for the real pair, and
  every id below V means the same text in both tokenizers;
* the target is trained on FIM prompts (PSM and SPM) as well as left-to-right code, the draft on
  left-to-right code only, and the draft has the shorter position limit, as in the real pair.

Everything is built from scratch and seeded (``--seed``). The corpus is the Python standard library
of the interpreter running this script and nothing else; files whose relative path hashes to
``zlib.crc32(relpath) % 20 == 0`` are held out, so the split is the same on any machine, and are used
to measure each model's loss on unseen code. Training runs against time budgets (``--target-minutes``,
``--draft-minutes``): a few timed steps fix the number of steps, so the cosine schedule ends on time
on any GPU; ``--target-steps`` / ``--draft-steps`` replace the budgets with exact step counts, e.g. to
repeat a run exactly (``planned_steps`` in training.json).

Outputs in ``--out``: ``target/``, ``draft/`` (model + tokenizer files), ``heldout.json`` (held-out
relpaths) and ``training.json`` (corpus, tokenizer, per-model training summary; also printed).

Usage (one H100, about 7 minutes in all)::

    python3 scripts/train_demo_pair.py --out lsp_server/models/demo

Quick end-to-end test on CPU with tiny models (about half a minute)::

    python3 scripts/train_demo_pair.py --smoke --out /tmp/demo_smoke

Needs only torch, transformers (5.x), tokenizers, sentencepiece, safetensors and numpy.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import queue
import random
import struct
import sysconfig
import threading
import time
import zlib
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm
import tokenizers
import torch
import transformers
from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE
from transformers import (
    AutoTokenizer,
    CodeLlamaTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaTokenizer,
)

UNK, BOS, EOS = 0, 1, 2
SPECIAL_PIECES = ("<unk>", "<s>", "</s>")
# Appended after the shared vocabulary, in CodeLlama's order (there ▁<PRE>=32007 ... ▁<EOT>=32010).
FIM_PIECES = ("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>")
HELDOUT_MODULUS = 20
REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {message}", flush=True)


def require(condition: bool, message: str) -> None:
    """Like assert, but never stripped by ``python -O``: a failed check must stop the build."""
    if not condition:
        raise RuntimeError(message)


# --------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hidden: int
    layers: int
    heads: int
    ffn: int
    max_positions: int
    rope_theta: float
    tie_embeddings: bool
    fim_rate: float  # share of training samples in FIM format (the rest are left to right)
    lr: float
    minutes: float


@dataclass(frozen=True)
class RunSpec:
    vocab: int
    seq_len: int
    batch: int  # sequences per optimizer step
    warmup: int  # linear warm-up steps, then cosine decay to MIN_LR_FRACTION of the peak
    sp_sample_bytes: int  # SentencePiece trains on a random sample of lines this large
    eval_rows: int  # cap on held-out sequences per evaluation set
    log_every: int
    # Steps between which the step time is measured. The window ends by the end of warm-up, the last
    # point before the schedule depends on the step count, and is long enough to ride out a slow start.
    calibrate: tuple[int, int]
    max_shard_size: str
    eval_every: int = 100  # steps between held-out evaluations; the best weights are the ones kept
    patience: int = 4  # evaluations without improvement before training stops early


MIN_LR_FRACTION = 0.1
FIM_SPM_SHARE = 0.5  # of FIM samples, the share in suffix-prefix-middle order
FIM_OVERHEAD = 5  # BOS PRE SUF MID EOT
CHUNK_SLACK = 6  # cutting a line for a hole can cost a token or two on each side of the cut


def build_specs(args: argparse.Namespace) -> tuple[ModelSpec, ModelSpec, RunSpec]:
    if args.smoke:
        run = RunSpec(vocab=args.vocab or 512, seq_len=256, batch=8, warmup=20, sp_sample_bytes=1_000_000,
                      eval_rows=32, log_every=20, calibrate=(5, 20), max_shard_size="15MB", eval_every=20)
        target = ModelSpec("target", hidden=64, layers=2, heads=2, ffn=160, max_positions=4096,
                           rope_theta=1e6, tie_embeddings=False, fim_rate=0.5, lr=3e-3, minutes=0.15)
        draft = ModelSpec("draft", hidden=32, layers=1, heads=2, ffn=96, max_positions=1024,
                          rope_theta=1e4, tie_embeddings=True, fim_rate=0.0, lr=3e-3, minutes=0.08)
    else:
        run = RunSpec(vocab=args.vocab or 4096, seq_len=512, batch=64, warmup=150, sp_sample_bytes=6_000_000,
                      eval_rows=4096, log_every=200, calibrate=(20, 150), max_shard_size="15MB")
        # ~14M parameters: head dim 64 like CodeLlama; untied embeddings like CodeLlama.
        target = ModelSpec("target", hidden=384, layers=6, heads=6, ffn=1024, max_positions=4096,
                           rope_theta=1e6, tie_embeddings=False, fim_rate=0.5, lr=1.5e-3, minutes=4.0)
        # ~0.93M parameters, ~15x fewer than the target. Tied embeddings keep the ratio above 10x:
        # at this size the embedding matrix is more than half of the model.
        draft = ModelSpec("draft", hidden=128, layers=2, heads=2, ffn=352, max_positions=1024,
                          rope_theta=1e4, tie_embeddings=True, fim_rate=0.0, lr=3e-3, minutes=1.5)
    if args.target_minutes is not None:
        target = ModelSpec(**{**asdict(target), "minutes": args.target_minutes})
    if args.draft_minutes is not None:
        draft = ModelSpec(**{**asdict(draft), "minutes": args.draft_minutes})
    require(run.calibrate[1] <= run.warmup, "the step time must be known before warm-up ends")
    return target, draft, run


# --------------------------------------------------------------------------------------------------
# Corpus


@dataclass
class SourceFile:
    relpath: str
    text: str


def is_heldout(relpath: str) -> bool:
    # Depends only on the path relative to the stdlib root, so the split is the same on any machine.
    return zlib.crc32(relpath.encode("utf-8")) % HELDOUT_MODULUS == 0


def load_stdlib() -> tuple[Path, list[SourceFile], list[str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files, skipped = [], []
    paths = {path.relative_to(root).as_posix(): path for path in root.rglob("*.py")}
    for relpath, path in sorted(paths.items()):  # sorted by relpath: the same order on any machine
        if "site-packages" in relpath.split("/"):
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            skipped.append(relpath)  # a few test files are deliberately not UTF-8
            continue
        files.append(SourceFile(relpath, text))
    return root, files, skipped


def split_lines(text: str) -> list[str]:
    """Lines with their "\\n" kept; only "\\n" separates lines (a "\\r" stays part of its line)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


# --------------------------------------------------------------------------------------------------
# Tokenizer


def train_sentencepiece(texts: list[str], vocab: int, sample_bytes: int, seed: int) -> bytes:
    """LLaMA-style SentencePiece BPE, trained on a seeded random sample of lines.

    Training on lines (as LLaMA did) keeps "\\n" out of the vocabulary: it becomes the byte token
    <0x0A>, which never merges with anything. ``PieceEncoder`` relies on that.
    """
    lines = [line for text in texts for line in text.split("\n") if line.strip()]
    random.Random(f"{seed}-sentencepiece").shuffle(lines)
    sample, size = [], 0
    for line in lines:
        if size >= sample_bytes:
            break
        sample.append(line)
        size += len(line.encode("utf-8")) + 1
    if hasattr(spm, "set_random_generator_seed"):  # BPE training draws nothing random here; belt and braces
        spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sample),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab,
        byte_fallback=True,
        add_dummy_prefix=True,
        split_digits=True,
        normalization_rule_name="identity",  # no NFKC: code must come back byte for byte
        remove_extra_whitespaces=False,  # indentation matters
        allow_whitespace_only_pieces=True,  # so runs of indentation become single pieces
        character_coverage=0.9999,  # rare characters go through byte fallback
        unk_id=UNK,
        bos_id=BOS,
        eos_id=EOS,
        pad_id=-1,
        max_sentence_length=1 << 14,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=1,  # the learned merges differ with the thread count; one thread is reproducible
        minloglevel=2,
    )
    return model.getvalue()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def append_control_pieces(model: bytes, pieces: tuple[str, ...]) -> bytes:
    """Append CONTROL pieces to a serialized SentencePiece model, without needing protobuf.

    ``ModelProto.pieces`` is field 1 (a repeated message); protobuf parsers append repeated fields in
    the order they appear, wherever they are, so records added at the end get ids V, V+1, ...
    A CONTROL piece is never produced from text and decodes to nothing, like <s>.
    """
    out = bytearray(model)
    for piece in pieces:
        raw = piece.encode("utf-8")
        message = b"\x0a" + _varint(len(raw)) + raw  # piece
        message += b"\x15" + struct.pack("<f", 0.0)  # score
        message += b"\x18" + _varint(3)  # type = CONTROL
        out += b"\x0a" + _varint(len(message)) + message
    return bytes(out)


def bpe_merges(sp: spm.SentencePieceProcessor) -> list[tuple[str, str]]:
    """Merges equivalent to SentencePiece BPE (the same derivation transformers uses).

    SentencePiece merges the pair whose union is the best-scored piece, and its piece ids are in
    score order, so every split of a piece into two pieces is a merge ranked by the piece's id.
    """
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    mergeable = {p: i for i, p in enumerate(pieces)
                 if not (sp.is_unknown(i) or sp.is_control(i) or sp.is_byte(i))}
    merges = []
    for piece in pieces:
        if piece not in mergeable:
            continue
        splits = sorted(
            (mergeable[piece[:k]], mergeable[piece[k:]])
            for k in range(1, len(piece))
            if piece[:k] in mergeable and piece[k:] in mergeable
        )
        merges.extend((pieces[left], pieces[right]) for left, right in splits)
    return merges


def build_backend(sp: spm.SentencePieceProcessor, extra: tuple[str, ...]) -> Tokenizer:
    """The fast tokenizer, with exactly the pipeline transformers 5's LlamaTokenizer rebuilds.

    transformers 5 takes only vocab, merges and post-processor from tokenizer.json when it loads
    through LlamaTokenizer/CodeLlamaTokenizer and sets up the rest itself. Writing the same pipeline
    here makes every loading path (those classes, AutoTokenizer, raw ``tokenizers``) agree.
    """
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab = {piece: i for i, piece in enumerate([*pieces, *extra])}
    backend = Tokenizer(BPE(vocab=vocab, merges=bpe_merges(sp), unk_token="<unk>", fuse_unk=True,
                            byte_fallback=True))
    backend.normalizer = None
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    backend.decoder = decoders.Sequence([
        decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0),
    ])
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", BOS)])
    backend.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in (*SPECIAL_PIECES, *extra)])
    return backend


def write_tokenizer(directory: Path, sp_model: bytes, extra: tuple[str, ...]) -> None:
    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    vocab = sp.get_piece_size()
    build_backend(sp, extra).save(str(directory / "tokenizer.json"))
    # tokenizer.model mirrors CodeLlama's, whose SentencePiece model already holds the FIM pieces.
    (directory / "tokenizer.model").write_bytes(append_control_pieces(sp_model, extra))

    def added(content: str) -> dict:
        return {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
                "single_word": False, "special": True}

    specials = {**{i: p for i, p in enumerate(SPECIAL_PIECES)}, **{vocab + i: p for i, p in enumerate(extra)}}
    config = {
        "tokenizer_class": "CodeLlamaTokenizer" if extra else "LlamaTokenizer",
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "legacy": False,  # dummy prefix only at the start of the text, not after special tokens
        "add_prefix_space": True,
        "clean_up_tokenization_spaces": False,
        # Text is never read as control tokens: "<s>" in a file (the stdlib has some) stays text, and
        # the FIM specials can only be put in a prompt by id.
        "split_special_tokens": True,
        # model_max_length is left unset (unbounded), as in CodeLlama's files: the server encodes whole
        # files and trims to the model's window itself; the limit is max_position_embeddings.
        "added_tokens_decoder": {str(i): added(p) for i, p in specials.items()},
    }
    special_map = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    if extra:
        config.update(prefix_token=extra[0], suffix_token=extra[1], middle_token=extra[2], eot_token=extra[3],
                      fill_token=None)  # CodeLlamaTokenizer would otherwise add "<FILL_ME>" as token V+4
        special_map["additional_special_tokens"] = list(extra)
    for name, data in (("tokenizer_config.json", config), ("special_tokens_map.json", special_map)):
        (directory / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class PieceEncoder:
    """Token ids, without BOS/EOS, for the two ways a piece of code appears in a sample.

    ``enc(s)``: s opens the text, so SentencePiece's dummy prefix applies ("x" -> "▁x").
    ``enc_infill(s)``: s continues earlier text (suffix and middle of a FIM sample), so no dummy
    prefix: encode "\\n" + s and drop the leading ids of "\\n" (checked to be a prefix).

    The newline is the byte token <0x0A> and takes part in no merge, so a text's tokens are its
    lines' tokens: enc(a + b) == enc(a) + enc_infill(b) when a ends with "\\n". Samples are therefore
    assembled from per-line ids; only lines cut by a FIM hole are encoded again.
    """

    def __init__(self, backend: Tokenizer):
        self._encode_batch = getattr(backend, "encode_batch_fast", backend.encode_batch)
        self.newline = backend.encode("\n", add_special_tokens=False).ids

    def enc_many(self, texts: list[str]) -> list[np.ndarray]:
        return [np.array(e.ids, np.int32) for e in self._encode_batch(texts, add_special_tokens=False)]

    def enc_infill_many(self, texts: list[str]) -> list[np.ndarray]:
        n = len(self.newline)
        out = []
        for encoding in self._encode_batch(["\n" + t for t in texts], add_special_tokens=False):
            ids = encoding.ids
            require(ids[:n] == self.newline, "encode('\\n' + s) does not start with encode('\\n')")
            out.append(np.array(ids[n:], np.int32))
        return out

    def enc_table(self, first: set[str], rest: set[str]) -> tuple[dict, dict]:
        first_list, rest_list = sorted(first), sorted(rest)
        return (dict(zip(first_list, self.enc_many(first_list), strict=True)),
                dict(zip(rest_list, self.enc_infill_many(rest_list), strict=True)))


def check_tokenizers(draft_dir: Path, target_dir: Path, probes: list[str], vocab: int) -> dict:
    """Reload both directories through every supported class and check they agree and round-trip."""
    loaders = {"draft": (draft_dir, [AutoTokenizer, LlamaTokenizer]),
               "target": (target_dir, [AutoTokenizer, LlamaTokenizer, CodeLlamaTokenizer])}
    reference = [None] * len(probes)
    loaded = {}
    for kind, (directory, classes) in loaders.items():
        for cls in classes:
            tok = cls.from_pretrained(directory, local_files_only=True)
            where = f"{kind} via {cls.__name__} ({type(tok).__name__})"
            size = vocab + (len(FIM_PIECES) if kind == "target" else 0)
            require(len(tok) == size, f"{where}: {len(tok)} tokens, expected {size}")
            require((tok.unk_token_id, tok.bos_token_id, tok.eos_token_id) == (UNK, BOS, EOS), f"{where}: ids")
            # The dummy prefix: "x" encodes as "▁x" (one piece once the vocabulary has it; the tiny
            # smoke vocabulary may spell it "▁" "x").
            pieces = tok.convert_ids_to_tokens(tok.encode("x", add_special_tokens=False))
            expected = ["▁x"] if "▁x" in tok.get_vocab() else ["▁", "x"]
            require(pieces == expected, f"{where}: 'x' encodes as {pieces}, expected {expected}")
            require(tok.encode("x")[0] == BOS, f"{where}: BOS not added")
            for i, text in enumerate(probes):
                ids = tok.encode(text, add_special_tokens=False)
                require(max(ids) < vocab, f"{where}: id >= V from ordinary text")
                require(tok.decode(ids) == text, f"{where}: round trip fails on probe {i}")
                reference[i] = reference[i] or ids
                require(ids == reference[i], f"{where}: ids differ from the draft tokenizer on probe {i}")
            literal = tok.encode("".join(FIM_PIECES) + " <PRE> <s>", add_special_tokens=False)
            require(max(literal) < vocab, f"{where}: special token produced from text")
            if kind == "target":
                ids = [tok.convert_tokens_to_ids(p) for p in FIM_PIECES]
                require(ids == list(range(vocab, vocab + 4)), f"{where}: FIM ids {ids}")
                require(set(ids) <= set(tok.all_special_ids), f"{where}: FIM tokens are not special")
            loaded[f"{kind}:{cls.__name__}"] = type(tok).__name__
    # Training encodes through the raw backend (fast batch path): it must agree with tok.encode.
    encoder = PieceEncoder(AutoTokenizer.from_pretrained(target_dir, local_files_only=True).backend_tokenizer)
    require([list(ids) for ids in encoder.enc_many(probes)] == reference, "backend batch encode differs")
    for text in probes:  # the property PieceEncoder relies on
        lines = split_lines(text)
        first, rest = encoder.enc_table({lines[0]}, set(lines[1:]))
        joined = np.concatenate([first[lines[0]], *(rest[line] for line in lines[1:])])
        require(joined.tolist() == encoder.enc_many([text])[0].tolist(), "per-line encoding differs")
    return loaded


# --------------------------------------------------------------------------------------------------
# Training samples


@dataclass
class Doc:
    """A source file as lines, with the enc_infill ids of every line concatenated."""

    lines: list[str]
    rest: np.ndarray
    starts: np.ndarray  # starts[i]: offset of line i in ``rest``; starts[-1] == len(rest)

    def span(self, a: int, b: int) -> np.ndarray:
        """enc_infill of lines a..b-1."""
        return self.rest[self.starts[a]:self.starts[b]]


def build_docs(texts: list[str], encoder: PieceEncoder) -> list[Doc]:
    all_lines = [split_lines(text) for text in texts]
    _, table = encoder.enc_table(set(), {line for lines in all_lines for line in lines})
    docs = []
    for lines in all_lines:
        if not lines:
            continue
        ids = [table[line] for line in lines]
        starts = np.zeros(len(lines) + 1, np.int64)
        np.cumsum([len(x) for x in ids], out=starts[1:])
        docs.append(Doc(lines, np.concatenate(ids), starts))
    return docs


def doc_tokens(docs: list[Doc]) -> int:
    # Counted without each file's dummy prefix, which changes a file's count by at most one token.
    return int(sum(len(doc.rest) for doc in docs))


def chunk_ranges(doc: Doc, first_budget: int, budget: int) -> list[tuple[int, int]]:
    """Greedy runs of whole lines of at most ``budget`` tokens (a longer line is a run on its own)."""
    ranges, a, limit = [], 0, first_budget
    n = len(doc.lines)
    while a < n:
        b = int(np.searchsorted(doc.starts, doc.starts[a] + limit, side="right")) - 1
        b = min(max(b, a + 1), n)
        ranges.append((a, b))
        a, limit = b, budget
    return ranges


@dataclass
class Plan:
    """One sample of lines a..b-1 of a doc; a FIM sample also has a hole.

    The hole starts at column c of line i and ends at column e of line j (e may be the full line,
    newline included). prefix = text before the hole, middle = the hole, suffix = text after it.
    """

    doc: Doc
    a: int
    b: int
    hole: tuple[int, int, int, int] | None = None
    suffix_first: bool = False

    def needs(self) -> tuple[list[str], list[str]]:
        """Strings to encode: (with dummy prefix, without)."""
        lines = self.doc.lines
        first = [lines[self.a]]
        if self.hole is None:
            return first, []
        i, c, j, e = self.hole
        first.append(lines[self.a][:c] if i == self.a else lines[self.a])
        rest = [lines[i][:c], lines[j][e:]]
        rest += [lines[i][c:e]] if i == j else [lines[i][c:], lines[j][:e]]
        return first, rest

    def ltr(self, enc: dict) -> np.ndarray:
        head = enc[self.doc.lines[self.a]]
        return np.concatenate([[BOS], head, self.doc.span(self.a + 1, self.b)]).astype(np.int32)

    def fim(self, enc: dict, enc_infill: dict, vocab: int) -> tuple[np.ndarray, int]:
        """Token ids and the index where middle + EOT start."""
        pre, suf, mid, eot = range(vocab, vocab + 4)
        lines, i, c, j, e = self.doc.lines, *self.hole
        if i == self.a:
            prefix = [enc[lines[i][:c]]]
        else:
            prefix = [enc[lines[self.a]], self.doc.span(self.a + 1, i), enc_infill[lines[i][:c]]]
        if i == j:
            middle = [enc_infill[lines[i][c:e]]]
        else:
            middle = [enc_infill[lines[i][c:]], self.doc.span(i + 1, j), enc_infill[lines[j][:e]]]
        suffix = [enc_infill[lines[j][e:]], self.doc.span(j + 1, self.b)]
        if self.suffix_first:  # SPM: [BOS, PRE, SUF] suffix [MID] prefix middle [EOT]
            parts = [[BOS, pre, suf], *suffix, [mid], *prefix]
        else:  # PSM: [BOS, PRE] prefix [SUF] suffix [MID] middle [EOT]
            parts = [[BOS, pre], *prefix, [suf], *suffix, [mid]]
        head = np.concatenate(parts)
        return np.concatenate([head, *middle, [eot]]).astype(np.int32), len(head)


def random_hole(doc: Doc, a: int, b: int, rng: random.Random) -> tuple[int, int, int, int]:
    """A hole shaped like a completion request: empty (5%), part of a line, or the rest of 1-6 lines."""
    lines = doc.lines
    i = rng.randrange(a, b)
    body = len(lines[i].rstrip("\n"))
    c = rng.randint(0, body)  # the cursor
    shape = rng.random()
    if shape < 0.05:  # nothing to insert: the model should answer EOT at once
        return i, c, i, c
    if shape < 0.5 and c < body:  # within the line: to its end, or a span inside it
        return i, c, i, (body if rng.random() < 0.5 else rng.randint(c + 1, body))
    j = min(i + rng.randint(1, 6) - 1, b - 1)  # the rest of this line and up to 5 more
    end = len(lines[j]) if rng.random() < 0.5 else len(lines[j].rstrip("\n"))
    if j == i and end <= c:  # cursor at the end of its line: the hole takes the newline at least
        end = len(lines[j])
    return i, c, j, end


@dataclass
class Rows:
    """One sample per row, right-padded: every sample starts at position 0 with BOS, as prompts do."""

    ids: np.ndarray  # (n, seq_len) int32, padded with EOS
    lengths: np.ndarray  # (n,) real tokens per row
    hole_starts: np.ndarray  # (n,) first middle token of a FIM row; == length for left-to-right rows
    fim_fallbacks: int = 0  # FIM samples too long for a row, used left to right instead

    def __len__(self) -> int:
        return len(self.ids)


def make_rows(plans: list[Plan], encoder: PieceEncoder, seq_len: int, vocab: int) -> Rows:
    first, rest = set(), set()
    for plan in plans:
        f, r = plan.needs()
        first.update(f)
        rest.update(r)
    enc, enc_infill = encoder.enc_table(first, rest)
    ids = np.full((len(plans), seq_len), EOS, np.int32)
    lengths = np.zeros(len(plans), np.int64)
    hole_starts = np.zeros(len(plans), np.int64)
    fallbacks = 0
    for row, plan in enumerate(plans):
        sample, hole = None, None
        if plan.hole is not None:
            sample, hole = plan.fim(enc, enc_infill, vocab)
            if len(sample) > seq_len:
                sample, fallbacks = None, fallbacks + 1
        if sample is None:
            sample = plan.ltr(enc)[:seq_len]  # a run of one very long line may not fit: truncate
            hole = len(sample)
        ids[row, :len(sample)] = sample
        lengths[row], hole_starts[row] = len(sample), hole
    return Rows(ids, lengths, hole_starts, fallbacks)


def chunk_budget(run: RunSpec) -> int:
    # The same for both models, so the draft sees the same kind of context as the target.
    return run.seq_len - FIM_OVERHEAD - CHUNK_SLACK


def training_epoch(docs: list[Doc], encoder: PieceEncoder, spec: ModelSpec, run: RunSpec,
                   rng: random.Random) -> Rows:
    """A fresh pass over the training files: new chunk boundaries, new holes, shuffled."""
    budget = chunk_budget(run)
    plans = []
    for doc in docs:
        # A random first run shifts all of a file's chunk boundaries from one epoch to the next.
        for a, b in chunk_ranges(doc, rng.randint(budget // 4, budget), budget):
            plan = Plan(doc, a, b)
            if rng.random() < spec.fim_rate:
                plan.hole = random_hole(doc, a, b, rng)
                plan.suffix_first = rng.random() < FIM_SPM_SHARE
            plans.append(plan)
    rng.shuffle(plans)
    return make_rows(plans, encoder, run.seq_len, run.vocab)


def heldout_sets(docs: list[Doc], encoder: PieceEncoder, run: RunSpec, seed: int) -> tuple[Rows, Rows]:
    """Fixed evaluation rows: held-out chunks (at most ``eval_rows``) left to right, and the same
    chunks as FIM samples (alternately PSM and SPM)."""
    rng = random.Random(f"{seed}-heldout")
    budget = chunk_budget(run)
    ranges = [(doc, a, b) for doc in docs for a, b in chunk_ranges(doc, budget, budget)]
    rng.shuffle(ranges)
    ranges = ranges[:run.eval_rows]
    ltr = [Plan(doc, a, b) for doc, a, b in ranges]
    fim = [Plan(doc, a, b, random_hole(doc, a, b, rng), k % 2 == 1) for k, (doc, a, b) in enumerate(ranges)]
    return make_rows(ltr, encoder, run.seq_len, run.vocab), make_rows(fim, encoder, run.seq_len, run.vocab)


class EpochFeeder:
    """Builds training epochs on a background thread, one ahead, while the accelerator trains.

    An epoch is built only when asked for (``request``), so the training loop can keep the CPU quiet
    while it times its first steps. Epoch k comes from its own seeded generator, so its content does
    not depend on timing.
    """

    def __init__(self, build, seed_tag: str):
        self._requests = threading.Semaphore(0)
        self._ready: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(build, seed_tag), daemon=True)
        self._thread.start()

    def _run(self, build, seed_tag: str) -> None:
        epoch = 0
        while True:
            while not self._requests.acquire(timeout=0.2):
                if self._stop.is_set():
                    return
            if self._stop.is_set():
                return
            try:
                item = build(random.Random(f"{seed_tag}-epoch{epoch}"))
            except Exception as exc:  # handed to the training loop, which re-raises it
                item = exc
            self._ready.put(item)
            epoch += 1

    def request(self) -> None:
        self._requests.release()

    def next(self) -> Rows:
        item = self._ready.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------------------------------
# Models


def make_model(spec: ModelSpec, vocab: int, seed: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=spec.hidden,
        intermediate_size=spec.ffn,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        head_dim=spec.hidden // spec.heads,
        max_position_embeddings=spec.max_positions,
        rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta},
        rms_norm_eps=1e-5,
        tie_word_embeddings=spec.tie_embeddings,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=None,
        attention_bias=False,
        mlp_bias=False,
        initializer_range=0.02,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # tied weights are counted once


def autocast(device: torch.device):
    # bf16 on CUDA; plain fp32 on CPU, where bf16 autocast is slow and the smoke models are tiny.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def lr_at(step: int, peak: float, warmup: int, total: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def to_device(rows: Rows, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.from_numpy(rows.ids).to(device=device, dtype=torch.long)
    lengths = torch.from_numpy(rows.lengths).to(device)
    positions = torch.arange(ids.shape[1], device=device)
    labels = ids.masked_fill(positions[None, :] >= lengths[:, None], -100)  # no loss on padding
    return ids, labels


def train(model: LlamaForCausalLM, spec: ModelSpec, run: RunSpec, feeder: EpochFeeder, device: torch.device,
          fixed_steps: int | None, heldout_loss) -> dict:
    """AdamW, linear warm-up then cosine decay, bf16 autocast; stops on the step count or the budget.

    Unless ``fixed_steps`` is given, the step count is set once from the time of a few early steps,
    so the schedule reaches its end on time, and the budget is also a hard stop. ``fixed_steps`` runs
    exactly that many steps, however long they take, so a rerun is exact. ``heldout_loss()`` is
    measured every ``run.eval_every`` steps (off the clock): the corpus is small (a few million
    tokens) and a fast GPU goes through it many times, so the model starts to memorise it. The
    weights with the lowest held-out loss are kept, and training stops after ``run.patience``
    evaluations without improvement.
    """
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")
    budget = spec.minutes * 60
    total = fixed_steps
    step, epochs, tokens, fallbacks, stall = 0, 0, 0, 0, 0.0
    recent: deque = deque(maxlen=50)
    window_loss, window_steps = torch.zeros((), device=device), 0
    ids = labels = lengths = None
    cursor = 0
    requested = False  # whether the next epoch has been asked for
    curve = []
    best_loss, best_state, since_best = float("inf"), None, 0
    model.train()
    start = time.perf_counter()
    marks = {}
    while total is None or step < total:
        if fixed_steps is None and time.perf_counter() - start > budget:
            log(f"{spec.name}: time budget reached at step {step}")
            break
        if ids is None or cursor + run.batch > len(ids):
            waited = time.perf_counter()
            if not requested:
                feeder.request()
            rows = feeder.next()
            stall += time.perf_counter() - waited
            # Build the next epoch meanwhile, unless the step time is still being measured.
            requested = total is not None
            if requested:
                feeder.request()
            ids, labels = to_device(rows, device)
            lengths, fallbacks = rows.lengths, fallbacks + rows.fim_fallbacks
            cursor, epochs = 0, epochs + 1
            require(len(ids) >= run.batch, "an epoch is smaller than one batch")
        x, y = ids[cursor:cursor + run.batch], labels[cursor:cursor + run.batch]
        tokens += int(lengths[cursor:cursor + run.batch].sum())
        cursor += run.batch
        lr = lr_at(step, spec.lr, run.warmup, total or 10**9)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with autocast(device):
            loss = model(input_ids=x, labels=y, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        recent.append(loss.detach())
        window_loss += loss.detach()
        window_steps += 1
        if total is None and step in run.calibrate:
            sync(device)
            marks[step] = time.perf_counter()
            if step == run.calibrate[1]:
                a, b = run.calibrate
                per_step = (marks[b] - marks[a]) / (b - a)
                total = step + max(0, int((budget * 0.97 - (marks[b] - start)) / per_step))
                log(f"{spec.name}: {per_step * 1000:.1f} ms/step -> {total} steps in {spec.minutes:g} min")
                if not requested:
                    feeder.request()
                    requested = True
        if total is not None and step % run.eval_every == 0:
            paused = time.perf_counter()
            curve.append([step, heldout_loss()])
            model.train()
            if curve[-1][1] < best_loss:
                best_loss, since_best = curve[-1][1], 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
            log(f"{spec.name}: step {step} held-out loss {curve[-1][1]:.4f} (best {best_loss:.4f})")
            start += time.perf_counter() - paused  # evaluation does not eat into the training budget
            if since_best >= run.patience:
                log(f"{spec.name}: held-out loss has not improved for {since_best} evaluations: stopping")
                break
        if step % run.log_every == 0:
            elapsed = time.perf_counter() - start
            log(f"{spec.name}: step {step}/{total or '?'} loss {float(window_loss) / window_steps:.4f} "
                f"lr {lr:.2e} epoch {epochs} {step * run.batch * run.seq_len / elapsed / 1e3:.0f}k tok/s")
            window_loss, window_steps = torch.zeros((), device=device), 0
    sync(device)
    seconds = time.perf_counter() - start
    if best_state is not None:
        model.load_state_dict(best_state)
    return {
        "steps": step,
        "kept_step": min(curve, key=lambda c: c[1])[0] if curve else step,
        "planned_steps": total,
        "epochs_started": epochs,
        "sequences_seen": step * run.batch,
        "tokens_seen": tokens,
        "fim_samples_too_long_used_left_to_right": fallbacks,
        "train_seconds": round(seconds, 1),
        "data_wait_seconds": round(stall, 1),
        "final_train_loss": round(float(torch.stack(list(recent)).mean()), 4) if recent else None,
        "heldout_curve": curve,
    }


@torch.no_grad()
def evaluate(model: LlamaForCausalLM, rows: Rows, run: RunSpec, device: torch.device) -> dict:
    """Mean next-token loss over all real tokens, and over middle + EOT tokens of FIM rows."""
    model.eval()
    sums = {"all": 0.0, "hole": 0.0}
    counts = {"all": 0, "hole": 0}
    ids_all, _ = to_device(rows, device)
    lengths = torch.from_numpy(rows.lengths).to(device)
    holes = torch.from_numpy(rows.hole_starts).to(device)
    positions = torch.arange(1, run.seq_len, device=device)
    for s in range(0, len(rows), run.batch):
        ids = ids_all[s:s + run.batch]
        with autocast(device):
            logits = model(input_ids=ids, use_cache=False).logits
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), ids[:, 1:], reduction="none")
        real = positions[None, :] < lengths[s:s + run.batch, None]
        hole = real & (positions[None, :] >= holes[s:s + run.batch, None])
        for key, mask in (("all", real), ("hole", hole)):
            sums[key] += float(nll[mask].sum())
            counts[key] += int(mask.sum())
    model.train()
    result = {"loss": round(sums["all"] / max(1, counts["all"]), 4), "tokens": counts["all"]}
    if counts["hole"]:
        result["middle_loss"] = round(sums["hole"] / counts["hole"], 4)
    return result


def clear_model_dir(directory: Path) -> None:
    """Remove files a previous run wrote here (a stale shard would break loading); nothing else."""
    names = {"config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json",
             "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"}
    for path in directory.glob("*"):
        if path.name in names or (path.name.startswith("model-") and path.name.endswith(".safetensors")):
            path.unlink()


def save_model(model: LlamaForCausalLM, directory: Path, run: RunSpec) -> dict:
    model = model.to(torch.float16)
    require(all(torch.isfinite(p).all() for p in model.parameters()), "a weight overflows fp16")
    model.config.dtype = torch.float16
    model.config.use_cache = True
    # transformers 5 always writes safetensors (the old safe_serialization flag is gone).
    model.save_pretrained(directory, max_shard_size=run.max_shard_size)
    for path in directory.iterdir():
        path.chmod(0o644)  # weights are written owner-only; these files are meant to be shipped
    files = {p.name: p.stat().st_size for p in sorted(directory.glob("*.safetensors"))}
    require(bool(files), "no safetensors written")
    require(max(files.values()) <= 16 * 2**20, f"a weight file is over 16 MiB: {files}")
    return files


def check_saved(directory: Path, vocab: int, fim: bool, device: torch.device) -> dict:
    """Load as the server would (offline, from the directory) and greedily complete a prompt."""
    tok = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = LlamaForCausalLM.from_pretrained(directory, local_files_only=True)
    require(model.dtype == torch.float16, f"{directory.name} loads as {model.dtype}, not float16")
    require(model.config.vocab_size == len(tok), f"{directory.name}: model/tokenizer vocab sizes differ")
    # fp16 matmuls are not available everywhere on CPU; the smoke check runs in fp32 there.
    model = model.to(device=device, dtype=torch.float16 if device.type == "cuda" else torch.float32).eval()
    encoder = PieceEncoder(tok.backend_tokenizer)

    def complete(prompt: list[int], stop: list[int]) -> str:
        ids = torch.tensor([prompt], device=device)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
                             eos_token_id=stop, pad_token_id=EOS)
        return tok.decode(out[0, len(prompt):], skip_special_tokens=True)

    prefix, suffix = "def is_even(n):\n    ", "\n\nprint(is_even(4))\n"
    result = {"left_to_right": complete([BOS, *encoder.enc_many([prefix])[0].tolist()], [EOS])}
    if fim:
        pre, suf, mid, eot = range(vocab, vocab + 4)
        prompt = [BOS, pre, *encoder.enc_many([prefix])[0].tolist(), suf,
                  *encoder.enc_infill_many([suffix])[0].tolist(), mid]
        result["infill"] = complete(prompt, [eot, EOS])
    return result


# --------------------------------------------------------------------------------------------------
# Main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "lsp_server" / "models" / "demo")
    parser.add_argument("--vocab", type=int, default=None, help="shared vocabulary size V (4096; smoke 512)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--smoke", action="store_true", help="tiny vocabulary, models and corpus (CPU test)")
    parser.add_argument("--target-minutes", type=float, default=None, help="target training budget (4.0)")
    parser.add_argument("--draft-minutes", type=float, default=None, help="draft training budget (1.5)")
    parser.add_argument("--target-steps", type=int, default=None,
                        help="exact step count instead of the time budget (reproduces a run exactly)")
    parser.add_argument("--draft-steps", type=int, default=None,
                        help="exact step count instead of the time budget (reproduces a run exactly)")
    return parser.parse_args()


def pick_probes(train: list[SourceFile], heldout: list[SourceFile]) -> list[str]:
    """Round-trip probes: real files with tabs, non-ASCII and CR, some held-out files, and a synthetic
    text with the awkward cases. (A literal U+2581 "▁" would decode as a space, as in SentencePiece;
    the stdlib has none.)"""
    probes = [f.text for f in heldout[:3]]
    for wanted in ("\t", "\r", "é"):
        probes += [f.text for f in train if wanted in f.text and "\u2581" not in f.text][:1]
    probes.append("class A:\n\tdef f(self):\n\n        return 'é 中文 😀'  \r\n<s></s><unk> <PRE> <EOT>\n\n\n")
    return probes


def main() -> None:
    args = parse_args()
    target_spec, draft_spec, run = build_specs(args)
    transformers.utils.logging.disable_progress_bar()  # keep the log to one line per event
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.machine()})"
    out: Path = args.out
    log(f"device {device_name}; torch {torch.__version__}, transformers {transformers.__version__}, "
        f"tokenizers {tokenizers.__version__}, sentencepiece {spm.__version__}; out {out}")

    # Corpus ------------------------------------------------------------------------------------
    root, files, skipped = load_stdlib()
    train_files = [f for f in files if not is_heldout(f.relpath)]
    heldout_files = [f for f in files if is_heldout(f.relpath)]
    if args.smoke:  # a deterministic twentieth of the training files, and a few held-out ones
        train_files = [f for f in train_files if zlib.crc32(f.relpath.encode()) % HELDOUT_MODULUS == 1]
        heldout_files = heldout_files[:12]
    log(f"stdlib {root}: {len(files)} files ({len(skipped)} not UTF-8, skipped); "
        f"train {len(train_files)}, held out {len(heldout_files)}")
    for sub in ("target", "draft"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        clear_model_dir(out / sub)
    heldout_all = [f.relpath for f in files if is_heldout(f.relpath)]
    (out / "heldout.json").write_text(json.dumps(heldout_all, indent=1) + "\n", encoding="utf-8")

    # Tokenizers --------------------------------------------------------------------------------
    started = time.perf_counter()
    sp_model = train_sentencepiece([f.text for f in train_files], run.vocab, run.sp_sample_bytes, args.seed)
    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    require(sp.get_piece_size() == run.vocab, "SentencePiece vocabulary has the wrong size")
    require(not any("\n" in sp.id_to_piece(i) for i in range(run.vocab)), "a piece contains a newline")
    write_tokenizer(out / "draft", sp_model, ())
    write_tokenizer(out / "target", sp_model, FIM_PIECES)
    loaded = check_tokenizers(out / "draft", out / "target", pick_probes(train_files, heldout_files), run.vocab)
    tokenizer_seconds = time.perf_counter() - started
    log(f"tokenizers written and checked ({tokenizer_seconds:.1f}s): {loaded}")
    backend = AutoTokenizer.from_pretrained(out / "target", local_files_only=True).backend_tokenizer
    encoder = PieceEncoder(backend)
    agree = sum(sp.encode(f.text) == e.tolist()
                for f, e in zip(heldout_files, encoder.enc_many([f.text for f in heldout_files]), strict=True))

    # Data --------------------------------------------------------------------------------------
    train_docs = build_docs([f.text for f in train_files], encoder)
    heldout_docs = build_docs([f.text for f in heldout_files], encoder)
    eval_ltr, eval_fim = heldout_sets(heldout_docs, encoder, run, args.seed)
    log(f"tokens: train {doc_tokens(train_docs):,}, held out {doc_tokens(heldout_docs):,}; "
        f"eval rows {len(eval_ltr)} left-to-right + {len(eval_fim)} FIM")

    # Models ------------------------------------------------------------------------------------
    results = {}
    for spec, vocab, fixed in ((target_spec, run.vocab + len(FIM_PIECES), args.target_steps),
                               (draft_spec, run.vocab, args.draft_steps)):
        model = make_model(spec, vocab, args.seed).to(device)
        params = param_count(model)
        log(f"{spec.name}: {params:,} parameters, vocab {vocab}, budget {spec.minutes:g} min")
        feeder = EpochFeeder(
            lambda rng, spec=spec: training_epoch(train_docs, encoder, spec, run, rng),
            f"{args.seed}-{spec.name}")
        try:
            stats = train(model, spec, run, feeder, device, fixed,
                          lambda model=model: evaluate(model, eval_ltr, run, device)["loss"])
        finally:
            feeder.close()
        stats["heldout_left_to_right"] = evaluate(model, eval_ltr, run, device)
        if spec.fim_rate:
            stats["heldout_fim"] = evaluate(model, eval_fim, run, device)
        log(f"{spec.name}: {stats}")
        stats["weight_files"] = save_model(model, out / spec.name, run)
        stats.update(parameters=params, vocab_size=vocab, spec=asdict(spec),
                     config={k: v for k, v in model.config.to_dict().items()
                             if k in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                      "num_attention_heads", "num_key_value_heads", "head_dim",
                                      "max_position_embeddings", "rope_parameters", "tie_word_embeddings",
                                      "vocab_size", "dtype")})
        results[spec.name] = stats
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    # Reload and summarize --------------------------------------------------------------------
    for name in ("target", "draft"):
        results[name]["reload_check"] = check_saved(out / name, run.vocab, name == "target", device)
        log(f"{name} reloaded; greedy completions: {results[name]['reload_check']}")
    total_bytes = sum(sum(r["weight_files"].values()) for r in results.values())
    if not args.smoke:
        require(total_bytes <= 40_000_000, f"the pair takes {total_bytes:,} bytes, over 40 MB")
    summary = {
        "corpus": {
            "source": "Python standard library (*.py, site-packages excluded)",
            "python_version": platform.python_version(),
            "heldout_rule": f"zlib.crc32(relpath.encode('utf-8')) % {HELDOUT_MODULUS} == 0",
            "files_not_utf8_skipped": len(skipped),
            "files_train": len(train_files),
            "files_heldout": len(heldout_files),
            "files_heldout_listed": len(heldout_all),
            "tokens_train": doc_tokens(train_docs),
            "tokens_heldout": doc_tokens(heldout_docs),
            "smoke_subset": args.smoke,
        },
        "tokenizer": {
            "type": "SentencePiece BPE (LLaMA settings), byte fallback, identity normalization",
            "vocab_draft": run.vocab,
            "vocab_target": run.vocab + len(FIM_PIECES),
            "fim_ids": {p: run.vocab + i for i, p in enumerate(FIM_PIECES)},
            "sentencepiece_sample_bytes": run.sp_sample_bytes,
            "seconds": round(tokenizer_seconds, 1),
            "heldout_files_identical_to_sentencepiece": f"{agree}/{len(heldout_files)}",
            "loaded_as": loaded,
        },
        "training": {
            "device": device_name,
            "seed": args.seed,
            "seq_len": run.seq_len,
            "batch_sequences": run.batch,
            "optimizer": "AdamW(0.9, 0.95), weight decay 0.1 on matrices, clip 1.0",
            "schedule": f"linear warm-up {run.warmup} steps, cosine to {MIN_LR_FRACTION:g} x peak",
            "precision": "bf16 autocast on CUDA, fp32 master weights; saved as fp16",
            "samples": "one per row, right-padded; each from a run of whole lines of one file",
            "left_to_right": "[BOS] + enc(chunk)",
            "fim": {"share_of_target_samples": target_spec.fim_rate, "spm_share_of_fim": FIM_SPM_SHARE,
                    "psm": "[BOS, PRE] + enc(prefix) + [SUF] + enc_infill(suffix) + [MID] + enc_infill(middle)"
                           " + [EOT]",
                    "spm": "[BOS, PRE, SUF] + enc_infill(suffix) + [MID] + enc(prefix) + enc_infill(middle)"
                           " + [EOT]",
                    "enc_infill": "encode('\\n' + s) without the leading ids of encode('\\n')",
                    "holes": "5% empty, else part of one line or the rest of 1-6 lines",
                    "loss": "all tokens of every sample (FIM samples included)",
                    "heldout_middle_loss": "loss on middle + EOT tokens of held-out FIM rows"},
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "tokenizers": tokenizers.__version__, "sentencepiece": spm.__version__},
        },
        "models": results,
        "weights_bytes_total": total_bytes,
        "total_seconds": round(time.perf_counter() - T0, 1),
    }
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    (out / "training.json").write_text(text + "\n", encoding="utf-8")
    log("done; training.json:")
    print(text, flush=True)


if __name__ == "__main__":
    main()
