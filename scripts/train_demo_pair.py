#!/usr/bin/env python3
"""Train the embedded demo model pair: a small FIM-capable target and a tiny left-to-right draft.

Why this exists
---------------
speclsp serves CodeLlama-7b as the target model with AMD-Llama-135m-code as its speculative draft.
The machines that build and test the product cannot download those weights, so the package ships a
stand-in pair under ``lsp_server/models/demo/{target,draft}`` that goes through the same code paths:

* both are ``LlamaForCausalLM`` checkpoints (int8 weight files, see below) with LLaMA-style SentencePiece
  BPE tokenizers that load offline through ``AutoTokenizer``, ``LlamaTokenizer`` and (target)
  ``CodeLlamaTokenizer``;
* the target vocabulary is the draft vocabulary plus four fill-in-the-middle specials appended at the
  end (``▁<PRE> ▁<SUF> ▁<MID> ▁<EOT>`` at ids V..V+3), like 32016 vs 32000 for the real pair, and
  every id below V means the same text in both tokenizers;
* the target is trained on FIM prompts (PSM and SPM) as well as left-to-right code, the draft on
  left-to-right code only, and the draft has the shorter position limit, as in the real pair.

Everything is built from scratch and seeded (``--seed``). The corpus (``--source``):

* ``python-env`` (default): every ``*.py`` of the interpreter running this script, standard library
  and site-packages (scripts/demo_corpus.py), deduplicated by content, without files over 1 MB, not
  UTF-8, generated or vendored; grouped by package (a distribution, or ``stdlib.<module>``), each
  package's licence read from its installed metadata and recorded in training.json; packages whose
  licence is not permissive or not stated are left out. Whole packages are held out
  (``zlib.crc32(package) % 20 == 0``), so the held-out loss is measured on another project's code.
  Byte caps bound what is tokenized (``RunSpec.max_train_bytes``).
* ``stdlib``: the standard library only, held out by path (the first demo pair's corpus).

The corpus is tokenized by ``--workers`` processes. Training runs against time budgets: with
``--minutes``, the time left once the corpus is encoded (less a reserve for evaluation and saving)
is split 70/30 between target and draft; otherwise ``--target-minutes`` / ``--draft-minutes``. A
few timed steps fix the number of steps, so the cosine schedule ends on time on any GPU; held-out
loss is measured every ``eval_every`` steps and the best weights are kept (early stopping); the
target's held-out FIM rows are measured then too, PSM and SPM apart, down to the first middle token
(``evaluate``), since a target can learn to fill in one order and not the other. Every
batch's ids are checked on the host before the device uses them (``check_batch``).
``--target-steps`` / ``--draft-steps`` replace the budgets with exact step counts, e.g. to repeat a
run exactly (``planned_steps`` in training.json).

Outputs in ``--out``: ``target/``, ``draft/`` (tokenizer files, ``config.json`` and the weights as
int8 rows with fp16 scales, lsp_server/engine/int8.py, which the product dequantizes at load),
``heldout.json`` (the held-out files, read by lsp_server/bench/heldout.py), ``train.log`` (every
log line, as it happens) and ``training.json`` (corpus and licences, tokenizer, per-model training
summary; rewritten after each stage with ``"complete": false`` until the run ends).

Usage (one H200, about 11 minutes in all)::

    python3 scripts/train_demo_pair.py --source python-env --out /tmp/v2 --minutes 11

Quick end-to-end test on CPU with tiny models and a capped corpus (about half a minute)::

    python3 scripts/train_demo_pair.py --smoke --out /tmp/demo_smoke

``main`` runs named stages (configure, collect corpus, prepare output, train tokenizers, encode
corpus, train the pair, reload checks, summary); the corpus source, the sizes and the device are
parameters, and tests/engine/test_train_script.py runs every stage on a dozen files in seconds.

Needs only torch, transformers (5.x), tokenizers, sentencepiece, safetensors and numpy (and this
repository's lsp_server/engine/int8.py, which needs nothing more).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import multiprocessing
import os
import platform
import queue
import random
import struct
import sys
import sysconfig
import threading
import time
import traceback
import zlib
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import sentencepiece as spm
import tokenizers
import torch
import transformers
from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import BPE
from transformers import (
    AutoConfig,
    AutoTokenizer,
    CodeLlamaTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaTokenizer,
)

# The corpus scan (next to this file) and the product's int8 weight files (one format, one reader).
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import demo_corpus  # noqa: E402

from lsp_server.engine import int8  # noqa: E402

UNK, BOS, EOS = 0, 1, 2
SPECIAL_PIECES = ("<unk>", "<s>", "</s>")
# Appended after the shared vocabulary, in CodeLlama's order (there ▁<PRE>=32007 ... ▁<EOT>=32010).
FIM_PIECES = ("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>")
HELDOUT_MODULUS = 20
REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = time.perf_counter()
LOG_LINES: list[str] = []  # kept until the output folder is known, then written to train.log
LOG_FILE: list = []  # the open train.log, once there is one


def log(message: str) -> None:
    line = f"[{time.perf_counter() - T0:7.1f}s] {message}"
    print(line, flush=True)
    if LOG_FILE:
        LOG_FILE[0].write(line + "\n")
        LOG_FILE[0].flush()  # a run that dies still leaves its log
    else:
        LOG_LINES.append(line)


def open_log(path: Path) -> None:
    """From now on every line also goes to ``path`` (the lines logged so far first)."""
    if LOG_FILE:
        LOG_FILE.pop().close()
    LOG_FILE.append(path.open("w", encoding="utf-8"))
    for line in LOG_LINES:
        LOG_FILE[0].write(line + "\n")
    LOG_FILE[0].flush()


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
    # Caps on the text read into training and evaluation (0: none). They bound tokenization and
    # epoch building; files past a cap are a stable sample's tail (see cap_files).
    max_train_bytes: int = 0
    max_heldout_bytes: int = 0


MIN_LR_FRACTION = 0.1
FIM_SPM_SHARE = 0.5  # of FIM samples, the share in suffix-prefix-middle order
FIM_OVERHEAD = 5  # BOS PRE SUF MID EOT
CHUNK_SLACK = 6  # cutting a line for a hole can cost a token or two on each side of the cut


def build_specs(args: argparse.Namespace) -> tuple[ModelSpec, ModelSpec, RunSpec]:
    if args.smoke:
        run = RunSpec(vocab=args.vocab or 512, seq_len=256, batch=8, warmup=20, sp_sample_bytes=1_000_000,
                      eval_rows=32, log_every=20, calibrate=(5, 20), max_shard_size="15MB", eval_every=20,
                      max_train_bytes=3_000_000, max_heldout_bytes=500_000)
        target = ModelSpec("target", hidden=64, layers=2, heads=2, ffn=160, max_positions=4096,
                           rope_theta=1e6, tie_embeddings=False, fim_rate=0.5, lr=3e-3, minutes=0.15)
        draft = ModelSpec("draft", hidden=32, layers=1, heads=2, ffn=96, max_positions=1024,
                          rope_theta=1e4, tie_embeddings=True, fim_rate=0.0, lr=3e-3, minutes=0.08)
    else:
        # 64 x 1024 tokens a step. The caps: ~480M characters is ~150M tokens at the ~3.2 characters
        # per token an 8k vocabulary gives on Python, about what the target sees in 6 minutes on one
        # H200 (so it trains on fresh code, not on repeats), and 16 processes tokenize it in well
        # under a minute. Evaluation rows are 512 chunks, so 8M held-out characters are plenty.
        run = RunSpec(vocab=args.vocab or 8192, seq_len=1024, batch=64, warmup=200, sp_sample_bytes=12_000_000,
                      eval_rows=512, log_every=100, calibrate=(30, 200), max_shard_size="15MB", eval_every=250,
                      max_train_bytes=480_000_000, max_heldout_bytes=8_000_000)
        # The sizes follow from the repository limit: 32 MB for both folders, weights as int8 (one
        # byte a parameter) plus ~1.5 MB of tokenizer files, so ~29M parameters for the pair.
        # Target ~23.5M: head dim 64 like CodeLlama; tied embeddings (8192 x 512 = 4.2M once, not
        # twice) buy a sixth layer.
        target = ModelSpec("target", hidden=512, layers=6, heads=8, ffn=1408, max_positions=4096,
                           rope_theta=1e6, tie_embeddings=True, fim_rate=0.5, lr=1.5e-3, minutes=6.0)
        # Draft ~5.3M parameters, ~4.4x fewer than the target (AMD-Llama-135m is ~50x smaller than
        # CodeLlama-7b, but a draft this small must still agree with the target often to be useful).
        draft = ModelSpec("draft", hidden=256, layers=4, heads=4, ffn=704, max_positions=2048,
                          rope_theta=1e4, tie_embeddings=True, fim_rate=0.0, lr=2.5e-3, minutes=2.5)
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
    relpath: str  # relative to its root directory
    text: str
    root: str = "stdlib"  # "stdlib" or "site" (a site-packages directory)
    package: str | None = None  # for sources that group files by package


@dataclass
class Loaded:
    """What a corpus source read: the files, and what it left out and why."""

    root: str  # where the files were read, for the log
    files: list[SourceFile]
    skipped: dict[str, int]  # reason -> files
    packages: dict[str, dict] = field(default_factory=dict)  # name -> licence, held out, files, bytes


def is_heldout(file: SourceFile) -> bool:
    # Depends only on the path relative to the stdlib root, so the split is the same on any machine.
    return zlib.crc32(file.relpath.encode("utf-8")) % HELDOUT_MODULUS == 0


def load_stdlib() -> Loaded:
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
    return Loaded(str(root), files, {"not UTF-8": len(skipped)})


def load_python_env(stdlib: Path | None = None, sites: list[Path] | None = None) -> Loaded:
    """The "python-env" source (scripts/demo_corpus.py): this interpreter's stdlib and site-packages."""
    scan = demo_corpus.scan_python_env(stdlib, sites)
    files = [SourceFile(f.relpath, f.text, f.root, f.package) for f in scan.files]
    site_list = ", ".join(str(s) for s in (sites if sites is not None else demo_corpus.site_dirs()))
    where = f"{stdlib or sysconfig.get_paths()['stdlib']} + site-packages {site_list}"
    return Loaded(where, files, scan.skipped, {name: asdict(p) for name, p in scan.packages.items()})


def is_heldout_package(file: SourceFile) -> bool:
    return demo_corpus.is_heldout_package(file.package or "")


@dataclass(frozen=True)
class CorpusSource:
    """Where the source files come from and which of them are held out (described in training.json)."""

    description: str
    load: Callable[[], Loaded]
    is_heldout: Callable[[SourceFile], bool]  # by name, so the split is the same on any machine
    heldout_rule: str


STDLIB = CorpusSource("Python standard library (*.py, site-packages excluded)", load_stdlib, is_heldout,
                      f"zlib.crc32(relpath.encode('utf-8')) % {HELDOUT_MODULUS} == 0")
PYTHON_ENV = CorpusSource(
    "Python files of the interpreter running the script: standard library and site-packages (*.py), "
    "deduplicated by content; packages whose licence is not permissive (or not stated) left out",
    load_python_env, is_heldout_package,
    f"whole packages: zlib.crc32(package.encode('utf-8')) % {demo_corpus.HELDOUT_MODULUS} == 0, the package "
    "being a site-packages distribution (normalized name) or 'stdlib.<top-level module>'")
SOURCES = {"stdlib": STDLIB, "python-env": PYTHON_ENV}


@dataclass
class Corpus:
    """The files one run trains on and measures with."""

    source: CorpusSource
    loaded: Loaded
    train: list[SourceFile]  # within the byte cap
    heldout: list[SourceFile]  # within the byte cap: the files evaluation rows are cut from
    heldout_listed: list  # every held-out file, also those a cap or a smoke run leaves out (heldout.json)
    capped: dict[str, int]  # files left out by the byte caps: {"train": n, "heldout": n}

    @property
    def skipped(self) -> dict[str, int]:
        return self.loaded.skipped


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
    rng = random.Random(f"{seed}-sentencepiece")
    # A random set of whole files three times the sample, so a big corpus is never split whole.
    order = list(range(len(texts)))
    rng.shuffle(order)
    chosen, size = [], 0
    for i in order:
        if size >= 3 * sample_bytes:
            break
        chosen.append(texts[i])
        size += len(texts[i])
    lines = [line for text in chosen for line in text.split("\n") if line.strip()]
    rng.shuffle(lines)
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
        # A copy that reads text as text: "<s>" or "▁<PRE>" in a file (transformers' CodeLlama
        # tokenizer has the FIM pieces literally) must not become BOS or a FIM id. The flag is not
        # serialized, so a tokenizer rebuilt from JSON in a worker process needs it set again here.
        self.backend = Tokenizer.from_str(backend.to_str())
        self.backend.encode_special_tokens = True
        self._encode_batch = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        self.newline = self.backend.encode("\n", add_special_tokens=False).ids

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


def encode_lines(texts: list[str], encoder: PieceEncoder) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per text: (enc_infill ids of its lines concatenated, line starts), or None for an empty text.
    Each distinct line is encoded once."""
    all_lines = [split_lines(text) for text in texts]
    _, table = encoder.enc_table(set(), {line for lines in all_lines for line in lines})
    out = []
    for lines in all_lines:
        if not lines:
            out.append(None)
            continue
        ids = [table[line] for line in lines]
        starts = np.zeros(len(lines) + 1, np.int64)
        np.cumsum([len(x) for x in ids], out=starts[1:])
        out.append((np.concatenate(ids).astype(np.int32), starts))
    return out


def build_docs(texts: list[str], encoder: PieceEncoder, workers: int = 1) -> list[Doc]:
    """The texts as Docs (empty texts dropped), encoded by ``workers`` processes when there are more
    than one; the result does not depend on the number of workers."""
    encoded = encode_in_processes(texts, encoder, workers) if workers > 1 else None
    if encoded is None:
        encoded = encode_lines(texts, encoder)
    return [Doc(split_lines(text), *enc) for text, enc in zip(texts, encoded, strict=True) if enc is not None]


_FORKED: dict = {}  # what the worker processes inherit: the texts and the tokenizer, as JSON


def _encode_slice(bounds: tuple[int, int]) -> list:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process: the processes are the parallelism
    encoder = _FORKED.get("encoder")
    if encoder is None:
        encoder = _FORKED["encoder"] = PieceEncoder(Tokenizer.from_str(_FORKED["tokenizer"]))
    return encode_lines(_FORKED["texts"][bounds[0]:bounds[1]], encoder)


def slices(texts: list[str], pieces: int) -> list[tuple[int, int]]:
    """Consecutive index ranges of about equal text length."""
    total = sum(map(len, texts)) or 1
    bounds, start, size = [], 0, 0
    for i, text in enumerate(texts):
        size += len(text)
        if size >= total * (len(bounds) + 1) / pieces or i == len(texts) - 1:
            bounds.append((start, i + 1))
            start = i + 1
    return bounds


def encode_in_processes(texts: list[str], encoder: PieceEncoder, workers: int, timeout: float = 900) -> list | None:
    """encode_lines over forked worker processes (they inherit the texts; only token ids come back).
    None if the pool fails or stalls, and the caller encodes in this process instead."""
    _FORKED.update(texts=texts, tokenizer=encoder.backend.to_str())
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map_async(_encode_slice, slices(texts, 4 * workers)).get(timeout)
        return [enc for part in parts for enc in part]
    except Exception as exc:  # noqa: BLE001 - any failure of the pool: encode here, slower
        log(f"tokenizing in {workers} processes failed ({type(exc).__name__}: {exc}); tokenizing in this one")
        return None
    finally:
        _FORKED.clear()


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
    suffix_first: np.ndarray | None = None  # (n,) bool: a FIM row in SPM order (None: no row is)

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
    suffix_first = np.array([plan.suffix_first for plan in plans], bool)
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
    return Rows(ids, lengths, hole_starts, fallbacks, suffix_first)


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
    rows = make_rows(plans, encoder, run.seq_len, run.vocab)
    if not spec.fim_rate:
        check_left_to_right(rows, run.vocab, spec.name)
    return rows


def check_left_to_right(rows: Rows, vocab: int, name: str) -> None:
    """A model trained without FIM (the draft) must never see a FIM id (vocab..vocab+3), not even
    one spelled out in a source file: the draft's embedding has only ``vocab`` rows."""
    fim = rows.ids >= vocab
    if fim.any():
        row, col = (int(k) for k in np.argwhere(fim)[0])
        raise ValueError(f"{name}: FIM id {int(rows.ids[row, col])} in a left-to-right row ({row}, position {col})")


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


IGNORE = -100  # the label transformers' loss skips: padding


def labels_for(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The labels of rows of ids: the ids themselves, IGNORE on padding (no loss there)."""
    positions = np.arange(ids.shape[1])
    return np.where(positions[None, :] < lengths[:, None], ids, IGNORE).astype(np.int64)


def check_batch(ids: np.ndarray, labels: np.ndarray, vocab: int, where: str) -> None:
    """Every input id in [0, vocab), every label in [0, vocab) or IGNORE, checked on the host.

    An id out of range on the GPU ends in an opaque, asynchronous device-side assert far from its
    cause; this names the batch (``where``) and the bad value instead. Microseconds a batch."""
    bad_ids = (ids < 0) | (ids >= vocab)
    bad_labels = ((labels < 0) | (labels >= vocab)) & (labels != IGNORE)
    for what, values, bad in (("input id", ids, bad_ids), ("label", labels, bad_labels)):
        if bad.any():
            row, col = (int(k) for k in np.argwhere(bad)[0])
            raise ValueError(f"{where}: {what} {int(values[row, col])} at row {row}, position {col} "
                             f"is outside [0, {vocab}) ({int(bad.sum())} such values in the batch)")


def to_device(rows: Rows, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.from_numpy(rows.ids).to(device=device, dtype=torch.long)
    labels = torch.from_numpy(labels_for(rows.ids, rows.lengths)).to(device)
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

    def __init__(self, feeder: EpochFeeder, run: RunSpec, device: torch.device, name: str, vocab: int):
        self.feeder, self.run, self.device = feeder, run, device
        self.name, self.vocab = name, vocab  # the model fed, and its vocabulary: ids are checked against it
        self.ids = self.labels = self.lengths = self.host = None
        self.cursor = self.epochs = self.tokens = self.fallbacks = self.steps = 0
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
        self.steps += 1
        ids, lengths = self.host.ids[rows], self.lengths[rows]
        check_batch(ids, labels_for(ids, lengths), self.vocab,
                    f"{self.name}: epoch {self.epochs}, step {self.steps}")
        self.tokens += int(lengths.sum())
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
        self.host, self.lengths, self.fallbacks = rows, rows.lengths, self.fallbacks + rows.fim_fallbacks
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
    batches, losses = Batches(feeder, run, device, spec.name, model.config.vocab_size), Losses(device)
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
def evaluate(model: LlamaForCausalLM, rows: Rows, run: RunSpec, device: torch.device,
             blank: np.ndarray | None = None) -> dict:
    """Mean next-token loss over all real tokens, and over middle + EOT tokens of FIM rows; per FIM
    order, the middle's loss and its first token's: loss, how often the greedy choice is right, and
    (given ``blank``, per id whether its text starts with whitespace) how often the greedy choice is
    whitespace where the middle starts with code.

    The first middle token is where PSM is hard: after <MID> the model must recall the prefix's end
    from before the suffix, where in SPM it is the token just before. A model that has not learned
    that predicts the same first token whatever the prefix (the most common first token of a middle:
    a newline, from holes at blank lines), and its PSM completions start with whitespace."""
    model.eval()
    sums, counts = dict.fromkeys(EVAL_MASKS + FIRST_COUNTS, 0.0), dict.fromkeys(EVAL_MASKS, 0)
    check_batch(rows.ids, labels_for(rows.ids, rows.lengths), model.config.vocab_size, "held-out rows")
    ids_all, _ = to_device(rows, device)
    lengths = torch.from_numpy(rows.lengths).to(device)
    holes = torch.from_numpy(rows.hole_starts).to(device)
    spm_all = torch.from_numpy(np.zeros(len(rows), bool) if rows.suffix_first is None else rows.suffix_first)
    no_blank = np.zeros(model.config.vocab_size, bool)
    blank_ids = torch.from_numpy(no_blank if blank is None else blank).to(device)
    positions = torch.arange(1, run.seq_len, device=device)
    for s in range(0, len(rows), run.batch):
        batch = slice(s, s + run.batch)
        ids = ids_all[batch]
        with autocast(device):
            logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        masks = eval_masks(positions, lengths[batch], holes[batch], spm_all[batch].to(device))
        for key, mask in masks.items():
            sums[key] += float(nll[mask].sum())
            counts[key] += int(mask.sum())
        guess, code = logits.argmax(-1), ~blank_ids[ids[:, 1:]]
        for order in ("psm", "spm"):
            first = masks[f"{order}_first"]
            sums[f"{order}_right"] += float((first & (guess == ids[:, 1:])).sum())
            sums[f"{order}_code"] += float((first & code).sum())
            sums[f"{order}_blank"] += float((first & code & blank_ids[guess]).sum())
    model.train()
    return eval_summary(sums, counts, blank is not None)


EVAL_MASKS = ("all", "hole", "psm", "spm", "psm_first", "spm_first")
FIRST_COUNTS = tuple(f"{order}_{what}" for order in ("psm", "spm") for what in ("right", "code", "blank"))


def eval_masks(positions: torch.Tensor, lengths: torch.Tensor, holes: torch.Tensor,
               spm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Which predicted tokens each figure of ``evaluate`` counts; ``positions`` are the tokens'
    indices in their rows (1..seq_len-1), the other arguments one value per row."""
    real = positions[None, :] < lengths[:, None]
    hole = real & (positions[None, :] >= holes[:, None])
    first = real & (positions[None, :] == holes[:, None])
    spm = spm[:, None]
    return {"all": real, "hole": hole, "psm": hole & ~spm, "spm": hole & spm,
            "psm_first": first & ~spm, "spm_first": first & spm}


def eval_summary(sums: dict, counts: dict, whitespace: bool) -> dict:
    result = {"loss": round(sums["all"] / max(1, counts["all"]), 4), "tokens": counts["all"]}
    if counts["hole"]:
        result["middle_loss"] = round(sums["hole"] / counts["hole"], 4)
    for order in ("psm", "spm"):
        rows = counts[f"{order}_first"]
        if not rows:
            continue
        result[order] = {"rows": rows, "middle_loss": round(sums[order] / counts[order], 4),
                         "first_token_loss": round(sums[f"{order}_first"] / rows, 4),
                         "first_token_top1": round(sums[f"{order}_right"] / rows, 4)}
        if whitespace and sums[f"{order}_code"]:
            result[order]["first_token_whitespace"] = round(sums[f"{order}_blank"] / sums[f"{order}_code"], 4)
    return result


def whitespace_ids(backend: Tokenizer, vocab: int) -> np.ndarray:
    """Per id below ``vocab``, whether its text starts with whitespace ("▁x", a tab, a newline byte).
    Special pieces never count: "▁<EOT>" ends a fill, and BOS, EOS, UNK and the other FIM pieces
    are text of no kind."""
    specials = set(backend.get_added_tokens_decoder())

    def blank(i: int) -> bool:
        piece = backend.id_to_token(i) or ""
        if i in specials:
            return False
        if piece.startswith("<0x") and piece.endswith(">") and len(piece) == 6:
            return chr(int(piece[3:5], 16)).isspace()
        return piece.startswith("▁") or piece[:1].isspace()

    return np.array([blank(i) for i in range(vocab)], bool)


def clear_model_dir(directory: Path) -> None:
    """Remove files a previous run wrote here (a stale shard would break loading); nothing else."""
    names = {"config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json",
             "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", int8.INDEX}
    for path in directory.glob("*"):
        stale_shard = path.name.startswith(("model-", "model.int8-")) and path.name.endswith(".safetensors")
        if path.name in names or stale_shard:
            path.unlink()


def save_model(model: LlamaForCausalLM, directory: Path) -> dict:
    """The weights as int8 files (lsp_server/engine/int8.py: int8 rows + fp16 scales, each file under
    15 MiB), which the product's loader dequantizes; returns {file: bytes}."""
    require(all(torch.isfinite(p).all() for p in model.parameters()), "a weight is not finite")
    model.config.use_cache = True
    files = int8.save_int8(model, directory)
    for path in directory.iterdir():
        path.chmod(0o644)  # weights are written owner-only; these files are meant to be shipped
    require(max(files.values()) < 15 * 2**20, f"a weight file is 15 MiB or more: {files}")
    return files


def load_saved(directory: Path, dtype: torch.dtype) -> LlamaForCausalLM:
    """The saved model as the product loads it: int8 files dequantized into the transformers model."""
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    return int8.load_int8_model(directory, config, dtype)


def check_saved(directory: Path, vocab: int, fim: bool, device: torch.device) -> dict:
    """Load as the server would (offline, from the directory) and greedily complete a prompt."""
    tok = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    # fp16 matmuls are not available everywhere on CPU; the smoke check runs in fp32 there.
    model = load_saved(directory, torch.float16 if device.type == "cuda" else torch.float32).to(device)
    require(model.config.vocab_size == len(tok), f"{directory.name}: model/tokenizer vocab sizes differ")
    encoder = PieceEncoder(tok.backend_tokenizer)

    def complete(prompt: list[int], stop: list[int]) -> str:
        ids = torch.tensor([prompt], device=device)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24, do_sample=False,
                             eos_token_id=stop, pad_token_id=EOS)
        return tok.decode(out[0, len(prompt):], skip_special_tokens=True)

    prefix, suffix = "def is_even(n):\n    ", "\n\nprint(is_even(4))\n"
    prefix_ids = encoder.enc_many([prefix])[0].tolist()
    suffix_ids = encoder.enc_infill_many([suffix])[0].tolist()
    result = {"left_to_right": complete([BOS, *prefix_ids], [EOS])}
    if fim:
        pre, suf, mid, eot = range(vocab, vocab + 4)
        result["infill"] = complete([BOS, pre, *prefix_ids, suf, *suffix_ids, mid], [eot, EOS])
        result["infill_spm"] = complete([BOS, pre, suf, *suffix_ids, mid, *prefix_ids], [eot, EOS])
    return result


# --------------------------------------------------------------------------------------------------
# Stages: configure -> collect corpus -> prepare output -> train tokenizers -> encode corpus ->
# train the pair -> reload checks -> summary


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "lsp_server" / "models" / "demo")
    parser.add_argument("--source", choices=sorted(SOURCES), default="python-env",
                        help="python-env: stdlib + site-packages, split by package; stdlib: the v1 corpus")
    parser.add_argument("--vocab", type=int, default=None, help="shared vocabulary size V (8192; smoke 512)")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--smoke", action="store_true", help="tiny vocabulary, models and corpus (CPU test)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="wall-clock budget of the whole run: what is left after the corpus is encoded "
                             "goes to training (target 70%%, draft 30%%), less a reserve for evaluation and saving")
    parser.add_argument("--target-minutes", type=float, default=None, help="target training budget (6.0)")
    parser.add_argument("--draft-minutes", type=float, default=None, help="draft training budget (2.5)")
    parser.add_argument("--workers", type=int, default=None, help="tokenizing processes (all cores, at most 16)")
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
    workers: int = 1  # processes that tokenize the corpus
    minutes: float | None = None  # the whole run's budget; sets the training budgets (see plan_training)
    fixed_minutes: tuple[bool, bool] = (False, False)  # target/draft budgets given on the command line
    record: dict = field(default_factory=dict)  # training.json as far as the run has got


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
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = args.workers or max(1, min(16, cores))
    return Job(target, draft, run, args.out, device, args.seed, args.target_steps, args.draft_steps,
               args.smoke, workers, args.minutes, (args.target_minutes is not None, args.draft_minutes is not None))


def collect_corpus(job: Job, source: CorpusSource = STDLIB) -> Corpus:
    """Read the source files and split them into training and held-out files, each within its cap.

    A smoke run of the stdlib source keeps a deterministic twentieth of the training files and the
    first 12 held-out ones."""
    loaded = source.load()
    files = loaded.files
    train_files = [f for f in files if not source.is_heldout(f)]
    heldout_files = [f for f in files if source.is_heldout(f)]
    if job.smoke and source is STDLIB:
        train_files = [f for f in train_files if zlib.crc32(f.relpath.encode()) % HELDOUT_MODULUS == 1]
        heldout_files = heldout_files[:12]
    listed = [heldout_entry(f) for f in heldout_files]
    train_kept = cap_files(train_files, job.run.max_train_bytes)
    heldout_kept = cap_files(heldout_files, job.run.max_heldout_bytes)
    capped = {"train": len(train_files) - len(train_kept), "heldout": len(heldout_files) - len(heldout_kept)}
    log(f"corpus {loaded.root}: {len(files)} files ({text_mb(files)}), skipped {loaded.skipped}; "
        f"train {len(train_kept)} ({text_mb(train_kept)}), held out {len(heldout_kept)} "
        f"({text_mb(heldout_kept)}); over the caps: {capped}")
    excluded = {n: p["licence"] for n, p in loaded.packages.items() if not p["permissive"]}
    if excluded:
        log(f"packages left out for their licence: {excluded}")
    return Corpus(source, loaded, train_kept, heldout_kept, listed, capped)


def text_mb(files: list[SourceFile]) -> str:
    return f"{sum(len(f.text) for f in files) / 1e6:.1f}M chars"


def cap_files(files: list[SourceFile], max_bytes: int) -> list[SourceFile]:
    """The files, within ``max_bytes`` of text: taken in an order fixed by a hash of each path (a
    sample spread over every package), and returned in their original order."""
    if not max_bytes or sum(len(f.text) for f in files) <= max_bytes:
        return files
    order = sorted(range(len(files)), key=lambda i: zlib.crc32(f"{files[i].root}/{files[i].relpath}".encode()))
    keep, size = set(), 0
    for i in order:
        if size + len(files[i].text) > max_bytes:
            continue
        keep.add(i)
        size += len(files[i].text)
    return [f for i, f in enumerate(files) if i in keep]


def heldout_entry(file: SourceFile) -> str | dict:
    """A held-out file as heldout.json lists it (lsp_server/bench/heldout.py reads it): a stdlib-relative
    path, or for sources grouped by package, its root ("stdlib" or "site"), path and package."""
    if file.package is None:
        return file.relpath
    return {"root": file.root, "path": file.relpath, "package": file.package}


def prepare_output(job: Job, corpus: Corpus) -> None:
    """Clear what an earlier run wrote to the model folders, list the held-out files (heldout.json)
    and record the corpus in training.json (complete: false until the run ends)."""
    for sub in ("target", "draft"):
        (job.out / sub).mkdir(parents=True, exist_ok=True)
        clear_model_dir(job.out / sub)
    # One entry a line: a short file even with thousands of held-out files.
    listing = "[\n" + ",\n".join(json.dumps(e, ensure_ascii=False) for e in corpus.heldout_listed) + "\n]\n"
    (job.out / "heldout.json").write_text(listing, encoding="utf-8")
    record(job, "corpus", corpus_summary(job, corpus, None))


def record(job: Job, key: str, value) -> None:
    """Add a stage's result to training.json as soon as it is known, so a run that dies midway
    still says how far it got."""
    job.record[key] = value
    partial = {"complete": False, **job.record}
    text = json.dumps(partial, indent=2, ensure_ascii=False, default=str)
    (job.out / "training.json").write_text(text + "\n", encoding="utf-8")


@dataclass
class Tokenizers:
    """The trained tokenizer pair: the encoder training uses, and what the checks found."""

    encoder: PieceEncoder
    loaded_as: dict  # the class each directory loads as, through each supported class
    seconds: float
    heldout_identical: int  # held-out files the fast backend encodes exactly as SentencePiece does
    heldout_checked: int  # of that many


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
    texts = [f.text for f in corpus.heldout[:IDENTITY_CHECK_FILES]]
    agree = sum(sp.encode(text) == ids.tolist()
                for text, ids in zip(texts, encoder.enc_many(texts), strict=True))
    tokens = Tokenizers(encoder, loaded, seconds, agree, len(texts))
    record(job, "tokenizer", tokenizer_summary(job, corpus, tokens))
    return tokens


IDENTITY_CHECK_FILES = 200  # held-out files encoded by both SentencePiece and the fast backend


def pick_probes(train: list[SourceFile], heldout: list[SourceFile]) -> list[str]:
    """Round-trip probes: real files with tabs, non-ASCII and CR, some held-out files, and a synthetic
    text with the awkward cases. (A literal U+2581 "▁" would decode as a space, as in SentencePiece;
    the stdlib has none.)"""
    probes = [f.text for f in heldout if f.text.strip()][:3]
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
    """Encode every file once, line by line (in ``job.workers`` processes), and cut the fixed
    held-out evaluation rows."""
    started = time.perf_counter()
    train_docs = build_docs([f.text for f in corpus.train], encoder, job.workers)
    heldout_docs = build_docs([f.text for f in corpus.heldout], encoder, job.workers)
    eval_ltr, eval_fim = heldout_sets(heldout_docs, encoder, job.run, job.seed)
    seconds = time.perf_counter() - started
    log(f"tokens: train {doc_tokens(train_docs):,}, held out {doc_tokens(heldout_docs):,} "
        f"({seconds:.1f}s, {job.workers} processes); eval rows {len(eval_ltr)} left-to-right + {len(eval_fim)} FIM")
    data = Dataset(train_docs, heldout_docs, eval_ltr, eval_fim)
    record(job, "corpus", corpus_summary(job, corpus, data))
    record(job, "encode_seconds", round(seconds, 1))
    return data


def train_pair(job: Job, data: Dataset, encoder: PieceEncoder) -> dict:
    """The target (vocabulary V + the 4 FIM specials), then the draft (V): each trained and saved
    (and recorded in training.json) before the next starts."""
    job = plan_training(job)
    vocab, results = job.run.vocab, {}
    for spec, size, steps in ((job.target, vocab + len(FIM_PIECES), job.target_steps),
                              (job.draft, vocab, job.draft_steps)):
        results[spec.name] = train_model(job, spec, size, steps, data, encoder)
        record(job, "models", results)
    return results


TARGET_SHARE = 0.7  # of the training time left by --minutes; the draft gets the rest
RESERVE_SECONDS = 75  # of --minutes, kept for evaluations (off the training clock), saving, checks


def plan_training(job: Job) -> Job:
    """With --minutes: the training budgets from the time left once the corpus is encoded, so the
    whole run ends on time whatever the scan and tokenization took."""
    if job.minutes is None:
        return job
    left = max(60.0, job.minutes * 60 - (time.perf_counter() - T0) - RESERVE_SECONDS) / 60
    target_min = job.target.minutes if job.fixed_minutes[0] else TARGET_SHARE * left
    draft_min = job.draft.minutes if job.fixed_minutes[1] else max(0.5, left - target_min)
    log(f"budget: {job.minutes:g} min in all, {left:.2f} min left for training: "
        f"target {target_min:.2f} min, draft {draft_min:.2f} min")
    return dataclasses.replace(job, target=dataclasses.replace(job.target, minutes=target_min),
                               draft=dataclasses.replace(job.draft, minutes=draft_min))


# The model config's fields training.json records.
CONFIG_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_key_value_heads", "head_dim", "max_position_embeddings", "rope_parameters",
               "tie_word_embeddings", "vocab_size", "dtype")


FIRST_TOKEN_CURVE = ("[step, PSM first middle token top-1, PSM whitespace-first share, "
                     "SPM top-1, SPM whitespace-first share]")


def heldout_loss(model: LlamaForCausalLM, spec: ModelSpec, data: Dataset, run: RunSpec, device: torch.device,
                 blank: np.ndarray, fim_curve: list[list]) -> float:
    """The early-stopping measure: the left-to-right held-out loss. A FIM model's held-out FIM rows
    are measured too and logged by order, their first middle token in ``fim_curve``: whether PSM is
    learned shows there, not in the losses (see ``evaluate``)."""
    loss = evaluate(model, data.eval_ltr, run, device)["loss"]
    if spec.fim_rate:
        fim = evaluate(model, data.eval_fim, run, device, blank)
        orders = [fim.get(order, {}) for order in ("psm", "spm")]
        fim_curve.append([o.get(k) for o in orders for k in ("first_token_top1", "first_token_whitespace")])
        log(f"{spec.name}: held-out FIM " + "; ".join(
            f"{name} middle loss {o.get('middle_loss')}, first token top-1 {o.get('first_token_top1')}, "
            f"whitespace where code starts {o.get('first_token_whitespace')}"
            for name, o in zip(("PSM", "SPM"), orders, strict=True)))
    return loss


def train_model(job: Job, spec: ModelSpec, vocab: int, fixed_steps: int | None, data: Dataset,
                encoder: PieceEncoder) -> dict:
    """One model: built from the seed, trained on fresh epochs with early stopping on held-out loss,
    measured on the held-out rows, saved as fp16 safetensors. Returns its training.json entry."""
    run, device = job.run, job.device
    model = make_model(spec, vocab, job.seed).to(device)
    params = param_count(model)
    log(f"{spec.name}: {params:,} parameters (int8 files about {params / 1e6:.1f} MB), vocab {vocab}, "
        f"budget {spec.minutes:.2f} min")
    feeder = EpochFeeder(lambda rng: training_epoch(data.train, encoder, spec, run, rng),
                         f"{job.seed}-{spec.name}")
    fim_curve: list[list] = []
    blank = whitespace_ids(encoder.backend, vocab)
    try:
        stats = train(model, spec, run, feeder, device, fixed_steps,
                      lambda model=model: heldout_loss(model, spec, data, run, device, blank, fim_curve))
    finally:
        feeder.close()
    stats["heldout_left_to_right"] = evaluate(model, data.eval_ltr, run, device)
    if spec.fim_rate:
        stats["heldout_fim"] = evaluate(model, data.eval_fim, run, device, blank)
        stats["heldout_fim_first_token_curve"] = [[step, *figures] for (step, _), figures
                                                  in zip(stats["heldout_curve"], fim_curve, strict=True)]
    log(f"{spec.name}: {stats}")
    stats["weight_files"] = save_model(model, job.out / spec.name)
    # What the product will compute: the same rows through the int8 weights, dequantized.
    model.load_state_dict(int8.load_int8_state(job.out / spec.name, torch.float32), strict=False)
    stats["heldout_left_to_right_int8"] = evaluate(model, data.eval_ltr, run, device)
    log(f"{spec.name}: saved {stats['weight_files']}; held-out loss through int8 weights "
        f"{stats['heldout_left_to_right_int8']['loss']}")
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
    folder_bytes = sum(p.stat().st_size for sub in ("target", "draft") for p in (job.out / sub).iterdir())
    if folder_bytes > MAX_PAIR_BYTES and not job.smoke:  # said loudly, but the trained pair is kept
        log(f"WARNING: the pair's folders take {folder_bytes:,} bytes, over {MAX_PAIR_BYTES:,}")
    summary = {
        "complete": True,
        "corpus": corpus_summary(job, corpus, data),
        "tokenizer": tokenizer_summary(job, corpus, tokens),
        "training": training_summary(job),
        "models": results,
        "weights_bytes_total": total_bytes,
        "pair_folders_bytes_total": folder_bytes,
        "encode_seconds": job.record.get("encode_seconds"),
        "total_seconds": round(time.perf_counter() - T0, 1),
    }
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    (job.out / "training.json").write_text(text + "\n", encoding="utf-8")
    log("done; training.json:")
    print(text, flush=True)
    return summary


MAX_PAIR_BYTES = 32_000_000  # both model folders, tokenizers included: what the repository carries


def corpus_summary(job: Job, corpus: Corpus, data: Dataset | None) -> dict:
    """The corpus as training.json records it (token counts once the corpus is encoded)."""
    packages = corpus.loaded.packages
    summary = {
        "source": corpus.source.description,
        "read_from": corpus.loaded.root,
        "python_version": platform.python_version(),
        "heldout_rule": corpus.source.heldout_rule,
        "files_not_utf8_skipped": corpus.skipped.get("not UTF-8", 0),
        "files_skipped": corpus.skipped,
        "files_train": len(corpus.train),
        "files_heldout": len(corpus.heldout),
        "files_heldout_listed": len(corpus.heldout_listed),
        "files_over_the_caps": corpus.capped,
        "chars_train": sum(len(f.text) for f in corpus.train),
        "chars_heldout": sum(len(f.text) for f in corpus.heldout),
        "max_train_bytes": job.run.max_train_bytes,
        "max_heldout_bytes": job.run.max_heldout_bytes,
        "smoke_subset": job.smoke,
    }
    if data is not None:
        summary.update(tokens_train=doc_tokens(data.train), tokens_heldout=doc_tokens(data.heldout))
    if packages:
        summary["packages_heldout"] = sorted(n for n, p in packages.items() if p["heldout"] and p["permissive"])
        summary["packages_excluded_for_licence"] = {n: p["licence"] for n, p in packages.items()
                                                    if not p["permissive"]}
        summary["packages"] = {n: {k: p[k] for k in ("root", "licence", "permissive", "heldout", "files", "bytes")}
                               for n, p in sorted(packages.items())}
    return summary


def tokenizer_summary(job: Job, corpus: Corpus, tokens: Tokenizers) -> dict:
    return {
        "type": "SentencePiece BPE (LLaMA settings), byte fallback, identity normalization",
        "vocab_draft": job.run.vocab,
        "vocab_target": job.run.vocab + len(FIM_PIECES),
        "fim_ids": {p: job.run.vocab + i for i, p in enumerate(FIM_PIECES)},
        "sentencepiece_sample_bytes": job.run.sp_sample_bytes,
        "seconds": round(tokens.seconds, 1),
        "heldout_files_identical_to_sentencepiece": f"{tokens.heldout_identical}/{tokens.heldout_checked}",
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
    "heldout_by_order": ("psm / spm: middle loss; the first middle token's loss, greedy top-1 rate, and "
                         "share of greedy first tokens starting with whitespace where the middle starts "
                         "with code"),
    "heldout_fim_first_token_curve": FIRST_TOKEN_CURVE,
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
        "precision": "bf16 autocast on CUDA, fp32 master weights; saved as int8 rows + fp16 scales",
        "samples": "one per row, right-padded; each from a run of whole lines of one file",
        "left_to_right": "[BOS] + enc(chunk)",
        "fim": {"share_of_target_samples": job.target.fim_rate, "spm_share_of_fim": FIM_SPM_SHARE,
                **FIM_FORMAT},
        "versions": versions(),
    }


def main() -> None:
    """The stages in order; each logs what it did (stdout and train.log), and training.json sums
    them up, stage by stage, so a run that dies leaves its log and what it had finished."""
    args = parse_args()
    job = configure(args)
    job.out.mkdir(parents=True, exist_ok=True)
    open_log(job.out / "train.log")
    try:
        run_stages(job, SOURCES[args.source])
    except BaseException:
        log("FAILED:\n" + traceback.format_exc())
        raise


def run_stages(job: Job, source: CorpusSource) -> None:
    corpus = collect_corpus(job, source)
    prepare_output(job, corpus)
    tokens = train_tokenizers(job, corpus)
    data = encode_corpus(job, corpus, tokens.encoder)
    results = train_pair(job, data, tokens.encoder)
    check_reloads(job, results)
    write_summary(job, corpus, tokens, data, results)


if __name__ == "__main__":
    main()
