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

``main`` runs named stages (configure, collect corpus, prepare output, train tokenizers, encode
corpus, train the pair, reload checks, summary); the corpus source, the sizes and the device are
parameters, and tests/engine/test_train_script.py runs every stage on a dozen files in seconds.

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
from collections.abc import Callable
from contextlib import contextmanager
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


@dataclass(frozen=True)
class CorpusSource:
    """Where the source files come from and which of them are held out (described in training.json)."""

    description: str
    load: Callable[[], tuple[Path, list[SourceFile], list[str]]]  # (root, files, relpaths not UTF-8)
    is_heldout: Callable[[str], bool]  # by relative path, so the split is the same on any machine
    heldout_rule: str


STDLIB = CorpusSource("Python standard library (*.py, site-packages excluded)", load_stdlib, is_heldout,
                      f"zlib.crc32(relpath.encode('utf-8')) % {HELDOUT_MODULUS} == 0")


@dataclass
class Corpus:
    """The files one run trains on and measures with."""

    source: CorpusSource
    root: Path
    train: list[SourceFile]
    heldout: list[SourceFile]
    heldout_listed: list[str]  # every held-out relpath, also those a smoke run leaves out
    skipped: list[str]  # relpaths that are not UTF-8


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


def make_optimizer(model: LlamaForCausalLM, spec: ModelSpec, device: torch.device) -> torch.optim.AdamW:
    """AdamW(0.9, 0.95) with weight decay 0.1 on matrices only (norm weights are not decayed)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec.lr, betas=(0.9, 0.95), eps=1e-8, fused=device.type == "cuda")


def train_step(model: LlamaForCausalLM, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               lr: float, device: torch.device) -> torch.Tensor:
    """One optimizer step at learning rate ``lr``, gradients clipped to norm 1.0. Returns the loss
    detached and on the device: reading it would sync, so only logging does."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with autocast(device):
        loss = model(input_ids=x, labels=y, use_cache=False).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


class Batches:
    """Training batches on the device, epoch after epoch, from the feeder.

    The next epoch is built in the background only once the step count is known (``ahead``): until
    then the loop is timing its steps, and building an epoch meanwhile would slow them down.
    """

    def __init__(self, feeder: EpochFeeder, run: RunSpec, device: torch.device):
        self.feeder, self.run, self.device = feeder, run, device
        self.ids = self.labels = self.lengths = None
        self.cursor = self.epochs = self.tokens = self.fallbacks = 0
        self.stall = 0.0  # seconds the loop waited for an epoch
        self.requested = False  # whether the next epoch has been asked for

    def ask_ahead(self) -> None:
        if not self.requested:
            self.feeder.request()
            self.requested = True

    def next(self, ahead: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(input ids, labels) of the next ``run.batch`` rows; a new epoch when this one runs out."""
        if self.ids is None or self.cursor + self.run.batch > len(self.ids):
            self._next_epoch(ahead)
        rows = slice(self.cursor, self.cursor + self.run.batch)
        self.tokens += int(self.lengths[rows].sum())
        self.cursor += self.run.batch
        return self.ids[rows], self.labels[rows]

    def _next_epoch(self, ahead: bool) -> None:
        waited = time.perf_counter()
        if not self.requested:
            self.feeder.request()
        rows = self.feeder.next()
        self.stall += time.perf_counter() - waited
        self.requested = False
        if ahead:
            self.ask_ahead()
        self.ids, self.labels = to_device(rows, self.device)
        self.lengths, self.fallbacks = rows.lengths, self.fallbacks + rows.fim_fallbacks
        self.cursor, self.epochs = 0, self.epochs + 1
        require(len(self.ids) >= self.run.batch, "an epoch is smaller than one batch")


class Losses:
    """Training losses kept on the device: the last 50 (the final figure) and those since the last log."""

    def __init__(self, device: torch.device):
        self.device = device
        self.recent: deque = deque(maxlen=50)
        self._reset_window()

    def _reset_window(self) -> None:
        self.window, self.window_steps = torch.zeros((), device=self.device), 0

    def add(self, loss: torch.Tensor) -> None:
        self.recent.append(loss)
        self.window += loss
        self.window_steps += 1

    def take_window(self) -> float:
        """Mean loss since the last call (a sync)."""
        mean = float(self.window) / self.window_steps
        self._reset_window()
        return mean

    def final(self) -> float | None:
        return round(float(torch.stack(list(self.recent)).mean()), 4) if self.recent else None


class Clock:
    """Training time against the budget; evaluations run off the clock."""

    def __init__(self, minutes: float):
        self.budget = minutes * 60
        self.start = time.perf_counter()
        self.marks: dict[int, float] = {}  # step -> time, at the ends of the calibration window

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @contextmanager
    def paused(self):
        paused = time.perf_counter()
        yield
        self.start += time.perf_counter() - paused


class EarlyStop:
    """Held-out evaluations: the curve, the weights with the lowest loss, evaluations since they improved."""

    def __init__(self, name: str, patience: int, heldout_loss: Callable[[], float]):
        self.name, self.patience, self.heldout_loss = name, patience, heldout_loss
        self.curve: list[list] = []
        self.best_loss, self.best_state, self.since_best = float("inf"), None, 0

    def check(self, step: int, model: LlamaForCausalLM) -> bool:
        """Measure the held-out loss and keep the weights if they are the best yet; True: stop now."""
        loss = self.heldout_loss()
        model.train()
        self.curve.append([step, loss])
        if loss < self.best_loss:
            self.best_loss, self.since_best = loss, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.since_best += 1
        log(f"{self.name}: step {step} held-out loss {loss:.4f} (best {self.best_loss:.4f})")
        if self.since_best >= self.patience:
            log(f"{self.name}: held-out loss has not improved for {self.since_best} evaluations: stopping")
        return self.since_best >= self.patience

    def restore_best(self, model: LlamaForCausalLM) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def kept_step(self, last_step: int) -> int:
        return min(self.curve, key=lambda c: c[1])[0] if self.curve else last_step


def planned_steps(clock: Clock, step: int, spec: ModelSpec, run: RunSpec, device: torch.device) -> int | None:
    """The step count that ends the schedule on time, known once the calibration window is timed.

    Called after every step until it answers; the window's ends are timed after a sync."""
    if step not in run.calibrate:
        return None
    sync(device)
    clock.marks[step] = time.perf_counter()
    if step != run.calibrate[1]:
        return None
    a, b = run.calibrate
    per_step = (clock.marks[b] - clock.marks[a]) / (b - a)
    total = step + max(0, int((clock.budget * 0.97 - (clock.marks[b] - clock.start)) / per_step))
    log(f"{spec.name}: {per_step * 1000:.1f} ms/step -> {total} steps in {spec.minutes:g} min")
    return total


def train(model: LlamaForCausalLM, spec: ModelSpec, run: RunSpec, feeder: EpochFeeder, device: torch.device,
          fixed_steps: int | None, heldout_loss: Callable[[], float]) -> dict:
    """AdamW, linear warm-up then cosine decay, bf16 autocast; stops on the step count or the budget.

    Unless ``fixed_steps`` is given, the step count is set once from the time of a few early steps,
    so the schedule reaches its end on time, and the budget is also a hard stop. ``fixed_steps`` runs
    exactly that many steps, however long they take, so a rerun is exact. ``heldout_loss()`` is
    measured every ``run.eval_every`` steps (off the clock): the corpus is small (a few million
    tokens) and a fast GPU goes through it many times, so the model starts to memorise it. The
    weights with the lowest held-out loss are kept, and training stops after ``run.patience``
    evaluations without improvement.
    """
    optimizer = make_optimizer(model, spec, device)
    batches, losses = Batches(feeder, run, device), Losses(device)
    early = EarlyStop(spec.name, run.patience, heldout_loss)
    step, total = 0, fixed_steps
    model.train()
    clock = Clock(spec.minutes)
    while total is None or step < total:
        if fixed_steps is None and clock.elapsed() > clock.budget:
            log(f"{spec.name}: time budget reached at step {step}")
            break
        x, y = batches.next(ahead=total is not None)
        lr = lr_at(step, spec.lr, run.warmup, total or 10**9)
        losses.add(train_step(model, optimizer, x, y, lr, device))
        step += 1
        if total is None and (total := planned_steps(clock, step, spec, run, device)) is not None:
            batches.ask_ahead()
        if total is not None and step % run.eval_every == 0:
            with clock.paused():
                stop = early.check(step, model)
            if stop:
                break
        if step % run.log_every == 0:
            rate = step * run.batch * run.seq_len / clock.elapsed() / 1e3
            log(f"{spec.name}: step {step}/{total or '?'} loss {losses.take_window():.4f} "
                f"lr {lr:.2e} epoch {batches.epochs} {rate:.0f}k tok/s")
    sync(device)
    seconds = clock.elapsed()
    early.restore_best(model)
    return training_stats(step, total, run, batches, losses, early, seconds)


def training_stats(step: int, total: int | None, run: RunSpec, batches: Batches, losses: Losses,
                   early: EarlyStop, seconds: float) -> dict:
    """One model's training summary, as training.json records it."""
    return {
        "steps": step,
        "kept_step": early.kept_step(step),
        "planned_steps": total,
        "epochs_started": batches.epochs,
        "sequences_seen": step * run.batch,
        "tokens_seen": batches.tokens,
        "fim_samples_too_long_used_left_to_right": batches.fallbacks,
        "train_seconds": round(seconds, 1),
        "data_wait_seconds": round(batches.stall, 1),
        "final_train_loss": losses.final(),
        "heldout_curve": early.curve,
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
# Stages: configure -> collect corpus -> prepare output -> train tokenizers -> encode corpus ->
# train the pair -> reload checks -> summary


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


@dataclass(frozen=True)
class Job:
    """What every stage of one run shares: the sizes, where it runs, its seed and its output folder."""

    target: ModelSpec
    draft: ModelSpec
    run: RunSpec
    out: Path
    device: torch.device
    seed: int = 1234
    target_steps: int | None = None  # exact step counts instead of the time budgets
    draft_steps: int | None = None
    smoke: bool = False  # also: a subset of the corpus, and no size limit on the weights


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.machine()})"


def versions() -> dict:
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__, "sentencepiece": spm.__version__}


def configure(args: argparse.Namespace, device: torch.device | None = None) -> Job:
    """The job the command line asks for, on ``device`` (the GPU when there is one)."""
    target, draft, run = build_specs(args)
    transformers.utils.logging.disable_progress_bar()  # keep the log to one line per event
    device = device or default_device()
    log(f"device {device_name(device)}; " + ", ".join(f"{k} {v}" for k, v in versions().items())
        + f"; out {args.out}")
    return Job(target, draft, run, args.out, device, args.seed, args.target_steps, args.draft_steps,
               args.smoke)


def collect_corpus(job: Job, source: CorpusSource = STDLIB) -> Corpus:
    """Read the source files and split them into training and held-out files.

    A smoke run keeps a deterministic twentieth of the training files and the first 12 held-out ones."""
    root, files, skipped = source.load()
    train_files = [f for f in files if not source.is_heldout(f.relpath)]
    heldout_files = [f for f in files if source.is_heldout(f.relpath)]
    if job.smoke:
        train_files = [f for f in train_files if zlib.crc32(f.relpath.encode()) % HELDOUT_MODULUS == 1]
        heldout_files = heldout_files[:12]
    log(f"corpus {root}: {len(files)} files ({len(skipped)} not UTF-8, skipped); "
        f"train {len(train_files)}, held out {len(heldout_files)}")
    listed = [f.relpath for f in files if source.is_heldout(f.relpath)]
    return Corpus(source, root, train_files, heldout_files, listed, skipped)


def prepare_output(job: Job, corpus: Corpus) -> None:
    """Clear what an earlier run wrote to the model folders, and list the held-out files (heldout.json)."""
    for sub in ("target", "draft"):
        (job.out / sub).mkdir(parents=True, exist_ok=True)
        clear_model_dir(job.out / sub)
    listing = json.dumps(corpus.heldout_listed, indent=1) + "\n"
    (job.out / "heldout.json").write_text(listing, encoding="utf-8")


@dataclass
class Tokenizers:
    """The trained tokenizer pair: the encoder training uses, and what the checks found."""

    encoder: PieceEncoder
    loaded_as: dict  # the class each directory loads as, through each supported class
    seconds: float
    heldout_identical: int  # held-out files the fast backend encodes exactly as SentencePiece does


def train_tokenizers(job: Job, corpus: Corpus) -> Tokenizers:
    """One SentencePiece model on the training files, written as the draft's tokenizer and, with the
    four FIM specials appended, as the target's; both reloaded and checked through every class."""
    run, started = job.run, time.perf_counter()
    sp_model = train_sentencepiece([f.text for f in corpus.train], run.vocab, run.sp_sample_bytes, job.seed)
    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    require(sp.get_piece_size() == run.vocab, "SentencePiece vocabulary has the wrong size")
    require(not any("\n" in sp.id_to_piece(i) for i in range(run.vocab)), "a piece contains a newline")
    write_tokenizer(job.out / "draft", sp_model, ())
    write_tokenizer(job.out / "target", sp_model, FIM_PIECES)
    probes = pick_probes(corpus.train, corpus.heldout)
    loaded = check_tokenizers(job.out / "draft", job.out / "target", probes, run.vocab)
    seconds = time.perf_counter() - started
    log(f"tokenizers written and checked ({seconds:.1f}s): {loaded}")
    backend = AutoTokenizer.from_pretrained(job.out / "target", local_files_only=True).backend_tokenizer
    encoder = PieceEncoder(backend)
    texts = [f.text for f in corpus.heldout]
    agree = sum(sp.encode(text) == ids.tolist()
                for text, ids in zip(texts, encoder.enc_many(texts), strict=True))
    return Tokenizers(encoder, loaded, seconds, agree)


def pick_probes(train: list[SourceFile], heldout: list[SourceFile]) -> list[str]:
    """Round-trip probes: real files with tabs, non-ASCII and CR, some held-out files, and a synthetic
    text with the awkward cases. (A literal U+2581 "▁" would decode as a space, as in SentencePiece;
    the stdlib has none.)"""
    probes = [f.text for f in heldout[:3]]
    for wanted in ("\t", "\r", "é"):
        probes += [f.text for f in train if wanted in f.text and "\u2581" not in f.text][:1]
    probes.append("class A:\n\tdef f(self):\n\n        return 'é 中文 😀'  \r\n<s></s><unk> <PRE> <EOT>\n\n\n")
    return probes


@dataclass
class Dataset:
    """The corpus as token ids: training files (epochs are cut from them) and fixed evaluation rows."""

    train: list[Doc]
    heldout: list[Doc]
    eval_ltr: Rows
    eval_fim: Rows


def encode_corpus(job: Job, corpus: Corpus, encoder: PieceEncoder) -> Dataset:
    """Encode every file once, line by line, and cut the fixed held-out evaluation rows."""
    train_docs = build_docs([f.text for f in corpus.train], encoder)
    heldout_docs = build_docs([f.text for f in corpus.heldout], encoder)
    eval_ltr, eval_fim = heldout_sets(heldout_docs, encoder, job.run, job.seed)
    log(f"tokens: train {doc_tokens(train_docs):,}, held out {doc_tokens(heldout_docs):,}; "
        f"eval rows {len(eval_ltr)} left-to-right + {len(eval_fim)} FIM")
    return Dataset(train_docs, heldout_docs, eval_ltr, eval_fim)


def train_pair(job: Job, data: Dataset, encoder: PieceEncoder) -> dict:
    """The target (vocabulary V + the 4 FIM specials), then the draft (V): each trained and saved."""
    vocab = job.run.vocab
    return {spec.name: train_model(job, spec, size, steps, data, encoder)
            for spec, size, steps in ((job.target, vocab + len(FIM_PIECES), job.target_steps),
                                      (job.draft, vocab, job.draft_steps))}


# The model config's fields training.json records.
CONFIG_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "max_position_embeddings", "rope_parameters",
               "tie_word_embeddings", "vocab_size", "dtype")


def train_model(job: Job, spec: ModelSpec, vocab: int, fixed_steps: int | None, data: Dataset,
                encoder: PieceEncoder) -> dict:
    """One model: built from the seed, trained on fresh epochs with early stopping on held-out loss,
    measured on the held-out rows, saved as fp16 safetensors. Returns its training.json entry."""
    run, device = job.run, job.device
    model = make_model(spec, vocab, job.seed).to(device)
    params = param_count(model)
    log(f"{spec.name}: {params:,} parameters, vocab {vocab}, budget {spec.minutes:g} min")
    feeder = EpochFeeder(lambda rng: training_epoch(data.train, encoder, spec, run, rng),
                         f"{job.seed}-{spec.name}")
    try:
        stats = train(model, spec, run, feeder, device, fixed_steps,
                      lambda model=model: evaluate(model, data.eval_ltr, run, device)["loss"])
    finally:
        feeder.close()
    stats["heldout_left_to_right"] = evaluate(model, data.eval_ltr, run, device)
    if spec.fim_rate:
        stats["heldout_fim"] = evaluate(model, data.eval_fim, run, device)
    log(f"{spec.name}: {stats}")
    stats["weight_files"] = save_model(model, job.out / spec.name, run)
    stats.update(parameters=params, vocab_size=vocab, spec=asdict(spec),
                 config={k: v for k, v in model.config.to_dict().items() if k in CONFIG_KEYS})
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return stats


def check_reloads(job: Job, results: dict) -> None:
    """Load each saved model as the server would and record its greedy completions."""
    for name in ("target", "draft"):
        check = check_saved(job.out / name, job.run.vocab, name == "target", job.device)
        results[name]["reload_check"] = check
        log(f"{name} reloaded; greedy completions: {results[name]['reload_check']}")


def write_summary(job: Job, corpus: Corpus, tokens: Tokenizers, data: Dataset, results: dict) -> dict:
    """training.json: the corpus, the tokenizer, how the models were trained and each model's figures."""
    total_bytes = sum(sum(r["weight_files"].values()) for r in results.values())
    if not job.smoke:
        require(total_bytes <= 40_000_000, f"the pair takes {total_bytes:,} bytes, over 40 MB")
    summary = {
        "corpus": corpus_summary(job, corpus, data),
        "tokenizer": tokenizer_summary(job, corpus, tokens),
        "training": training_summary(job),
        "models": results,
        "weights_bytes_total": total_bytes,
        "total_seconds": round(time.perf_counter() - T0, 1),
    }
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    (job.out / "training.json").write_text(text + "\n", encoding="utf-8")
    log("done; training.json:")
    print(text, flush=True)
    return summary


def corpus_summary(job: Job, corpus: Corpus, data: Dataset) -> dict:
    return {
        "source": corpus.source.description,
        "python_version": platform.python_version(),
        "heldout_rule": corpus.source.heldout_rule,
        "files_not_utf8_skipped": len(corpus.skipped),
        "files_train": len(corpus.train),
        "files_heldout": len(corpus.heldout),
        "files_heldout_listed": len(corpus.heldout_listed),
        "tokens_train": doc_tokens(data.train),
        "tokens_heldout": doc_tokens(data.heldout),
        "smoke_subset": job.smoke,
    }


def tokenizer_summary(job: Job, corpus: Corpus, tokens: Tokenizers) -> dict:
    return {
        "type": "SentencePiece BPE (LLaMA settings), byte fallback, identity normalization",
        "vocab_draft": job.run.vocab,
        "vocab_target": job.run.vocab + len(FIM_PIECES),
        "fim_ids": {p: job.run.vocab + i for i, p in enumerate(FIM_PIECES)},
        "sentencepiece_sample_bytes": job.run.sp_sample_bytes,
        "seconds": round(tokens.seconds, 1),
        "heldout_files_identical_to_sentencepiece": f"{tokens.heldout_identical}/{len(corpus.heldout)}",
        "loaded_as": tokens.loaded_as,
    }


# How samples are written, as training.json describes them (the code is Plan.ltr and Plan.fim).
FIM_FORMAT = {
    "psm": "[BOS, PRE] + enc(prefix) + [SUF] + enc_infill(suffix) + [MID] + enc_infill(middle) + [EOT]",
    "spm": "[BOS, PRE, SUF] + enc_infill(suffix) + [MID] + enc(prefix) + enc_infill(middle) + [EOT]",
    "enc_infill": "encode('\\n' + s) without the leading ids of encode('\\n')",
    "holes": "5% empty, else part of one line or the rest of 1-6 lines",
    "loss": "all tokens of every sample (FIM samples included)",
    "heldout_middle_loss": "loss on middle + EOT tokens of held-out FIM rows",
}


def training_summary(job: Job) -> dict:
    run = job.run
    return {
        "device": device_name(job.device),
        "seed": job.seed,
        "seq_len": run.seq_len,
        "batch_sequences": run.batch,
        "optimizer": "AdamW(0.9, 0.95), weight decay 0.1 on matrices, clip 1.0",
        "schedule": f"linear warm-up {run.warmup} steps, cosine to {MIN_LR_FRACTION:g} x peak",
        "precision": "bf16 autocast on CUDA, fp32 master weights; saved as fp16",
        "samples": "one per row, right-padded; each from a run of whole lines of one file",
        "left_to_right": "[BOS] + enc(chunk)",
        "fim": {"share_of_target_samples": job.target.fim_rate, "spm_share_of_fim": FIM_SPM_SHARE,
                **FIM_FORMAT},
        "versions": versions(),
    }


def main() -> None:
    """The stages in order; each logs what it did, and training.json sums them up."""
    job = configure(parse_args())
    corpus = collect_corpus(job)
    prepare_output(job, corpus)
    tokens = train_tokenizers(job, corpus)
    data = encode_corpus(job, corpus, tokens.encoder)
    results = train_pair(job, data, tokens.encoder)
    check_reloads(job, results)
    write_summary(job, corpus, tokens, data, results)


if __name__ == "__main__":
    main()
