#!/usr/bin/env python3
"""Measure token healing with the demo pair on held-out code: mid-word cursors, healing on and off.

For each hole the cursor is put inside a word of a held-out line and the rest of the line is
removed (as when typing it). A suggestion "makes the word right" when, appended at the cursor,
the word it continues is the file's word, ending where it ends. Also counted: suggestions that
start with a space (never right inside a word), that repeat the end of the typed part of the word
before its rest ("ite" + "items"), and empty ones. As a check that healing costs nothing
elsewhere, at a random point of a line (as scripts/eval_demo_pair.py): the first line's exact match,
its first word (with the space before it) right, and the characters right from the cursor on.

Usage: python scripts/eval_healing.py [--holes 60] [--word-bytes N] [--out FILE]
(`--word-bytes 0` backs up the last token only; the default is healing.WORD_BYTES.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lsp_server import healing  # noqa: E402
from lsp_server.bench.heldout import heldout_texts  # noqa: E402
from lsp_server.config import Settings  # noqa: E402
from lsp_server.engine.models import demo_paths  # noqa: E402
from lsp_server.prompt import CursorContext  # noqa: E402
from lsp_server.service import CompletionService  # noqa: E402

WORD = re.compile(r"\w*")
FIRST = re.compile(r"\s*(\w+|\S)?")  # a line's first word (or symbol), with the space before it


def holes(texts, n: int, seed: int, mid_word: bool) -> list[tuple[str, int, str]]:
    """(document with the rest of the line removed, cursor offset, the line's removed rest).
    `mid_word`: the cursor between two word characters; else anywhere inside the line."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        _, text = rng.choice(texts)
        lines = text.split("\n")
        i = rng.randrange(len(lines))
        line = lines[i]
        if len(line.strip()) < 12 or line.strip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        inside = [c for c in range(indent + 1, len(line)) if re.match(r"\w\w", line[c - 1:c + 1])]
        if mid_word and not inside:
            continue
        cut = rng.choice(inside) if mid_word else rng.randrange(indent, len(line) - 3)
        offset = sum(len(x) + 1 for x in lines[:i]) + cut
        out.append((text[:offset] + text[offset + len(line) - cut:], offset, line[cut:]))
    return out


def score(prefix: str, got: str, truth: str) -> dict:
    """How a mid-word suggestion reads at the cursor."""
    typed, rest, word = WORD.match(prefix[::-1]).group()[::-1], WORD.match(truth).group(), WORD.match(got).group()
    return {"word_right": word == rest, "leading_space": got[:1].isspace(),
            "doubled": any(word.startswith(typed[-k:] + rest) for k in range(1, len(typed) + 1)),
            "empty": not got}


def service_for(order: str, heal: bool) -> CompletionService:
    t, d = demo_paths()
    service = CompletionService(Settings(target=str(t), draft=str(d), device="cpu", dtype="float32",
                                         fim_order=order, context_tokens=1024, max_tokens=24,
                                         time_budget_ms=60_000))
    service.load()
    service.builder.heal = heal
    return service


def measure(order: str, heal: bool, words, lines) -> dict:
    service = service_for(order, heal)
    counts = {"word_right": 0, "leading_space": 0, "doubled": 0, "empty": 0}
    for k, (doc, offset, truth) in enumerate(words):
        got = service.compute(CursorContext(doc[:offset], doc[offset:]), f"w{k}").text
        for name, hit in score(doc[:offset], got, truth).items():
            counts[name] += hit
    line = {"line_exact": 0, "line_first_word": 0, "line_chars_right": 0}
    for k, (doc, offset, truth) in enumerate(lines):
        got = service.compute(CursorContext(doc[:offset], doc[offset:]), f"l{k}").text.split("\n", 1)[0]
        line["line_exact"] += got.strip() == truth.strip()
        line["line_first_word"] += bool(got) and FIRST.match(got).group() == FIRST.match(truth).group()
        line["line_chars_right"] += len(os.path.commonprefix([got, truth]))
    return {"mid_word_holes": len(words), **counts, "line_holes": len(lines), **line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holes", type=int, default=60)
    parser.add_argument("--word-bytes", type=int, default=healing.WORD_BYTES)
    parser.add_argument("--out")
    args = parser.parse_args()
    healing.WORD_BYTES = args.word_bytes
    t0 = time.perf_counter()
    texts = heldout_texts()
    words, lines = holes(texts, args.holes, 0, True), holes(texts, args.holes, 1, False)
    result = {"python": sys.version.split()[0], "heldout_files_found": len(texts), "word_bytes": args.word_bytes}
    for order in ("spm", "psm"):
        for heal in (False, True):
            result[f"{order}_{'healed' if heal else 'plain'}"] = measure(order, heal, words, lines)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
