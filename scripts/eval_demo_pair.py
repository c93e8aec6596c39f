#!/usr/bin/env python3
"""Measure the embedded demo pair on held-out code: the numbers of docs/demo-models.md.

- held-out loss of both models (left to right, nats per token);
- fill-in-the-middle exact match of the first line, through the product's own pipeline
  (prompt builder, engine, post-processing), in SPM and PSM order;
- where a fill starts, in each order: on holes whose middle starts with code, how often the
  target's greedy first token is whitespace instead (a target that has not learned PSM answers
  every PSM prompt with a newline or indentation, whatever the prefix);
- the draft's acceptance against the target, greedy, draft length 4: mean tokens emitted per
  target forward in speculative rounds, on left-to-right continuations of held-out code.

The held-out files are those listed in the pair's heldout.json (chosen by a hash of the path or
package, never trained on), read from this machine's Python.
Usage: python scripts/eval_demo_pair.py [--out bench/results/demo-eval.json] [--quick]
       [--pair DIR (target/, draft/, heldout.json; default the embedded pair)] [--first-token-only]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lsp_server.bench.heldout import heldout_paths, read  # noqa: E402
from lsp_server.config import Settings  # noqa: E402
from lsp_server.engine.api import GenerationRequest  # noqa: E402
from lsp_server.engine.models import DEMO_DIR, load_models  # noqa: E402
from lsp_server.engine.speculative import Engine  # noqa: E402
from lsp_server.prompt import CursorContext, PromptBuilder  # noqa: E402
from lsp_server.service import CompletionService  # noqa: E402


@torch.no_grad()
def heldout_loss(model, codec, texts, max_tokens: int, window: int = 512) -> dict:
    total, count = 0.0, 0
    for _, text in texts:
        ids = codec.encode(text)
        for start in range(0, len(ids) - 1, window):
            chunk = [codec.bos] + ids[start:start + window]
            logits = model(torch.tensor([chunk])).logits[0, :-1].float()
            target = torch.tensor(chunk[1:])
            total += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
            count += len(chunk) - 1
            if count >= max_tokens:
                return {"loss": round(total / count, 4), "tokens": count}
    return {"loss": round(total / max(count, 1), 4), "tokens": count}


def holes(texts, n: int, seed: int = 0, line_start: bool = False):
    """Cursor positions in non-trivial lines: (file, document, offset, the rest of the line).
    `line_start`: the cursor after the line's indentation (a whole line to write); otherwise at a
    random point inside the line, often mid-word."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        name, text = rng.choice(texts)
        lines = text.split("\n")
        i = rng.randrange(len(lines))
        line = lines[i]
        if len(line.strip()) < 12 or line.strip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        cut = indent if line_start else rng.randrange(indent, len(line) - 3)
        offset = sum(len(x) + 1 for x in lines[:i]) + cut
        # the hole is the rest of the line: the suffix starts at the next line
        doc = text[:offset] + text[offset + len(line) - cut:]
        out.append((name, doc, offset, line[cut:]))
    return out


def fim_exact_match(pair: Path, order: str, cases, max_tokens: int = 32) -> dict:
    t, d = pair / "target", pair / "draft"
    service = CompletionService(Settings(target=str(t), draft=str(d), device="cpu", dtype="float32",
                                         fim_order=order, context_tokens=1024, max_tokens=max_tokens,
                                         time_budget_ms=60_000))
    service.load()
    hits = 0
    for k, (_, doc, offset, truth) in enumerate(cases):
        got = service.compute(CursorContext(doc[:offset], doc[offset:]), f"hole{k}").text
        hits += got.split("\n", 1)[0].strip() == truth.strip()
    return {"holes": len(cases), "exact_first_line": hits, "rate": round(hits / len(cases), 3)}


@torch.no_grad()
def fim_first_token(models, order: str, cases) -> dict:
    """Of the holes whose middle starts with code, how many greedy fills start with whitespace (a
    space, tab or newline), and the mean probability of a first token that does; the prompts are
    the server's (PromptBuilder, 1024 tokens), one forward each."""
    codec, builder = models.codec, PromptBuilder(models.codec, 1024, order)
    vocab = models.target.config.vocab_size
    special = set(codec.tok.all_special_ids)  # "▁<EOT>" decodes as " <EOT>", but ends the fill
    blank = torch.tensor([i not in special and codec.decode_continuation([i])[:1].isspace()
                          for i in range(vocab)])
    holes = whitespace = 0
    mass = 0.0
    for _, doc, offset, truth in cases:
        if truth[:1].isspace():
            continue
        ids = builder.build(CursorContext(doc[:offset], doc[offset:])).target_ids
        probs = models.target(torch.tensor([ids])).logits[0, -1].float().softmax(-1)
        holes += 1
        whitespace += int(blank[probs.argmax()])
        mass += float(probs[blank].sum())
    return {"holes_middle_starts_with_code": holes, "greedy_first_token_whitespace": whitespace,
            "mean_p_whitespace_first": round(mass / max(holes, 1), 3)}


def acceptance(models, texts, prompts: int, gamma: int = 4, new: int = 64, seed: int = 1) -> dict:
    engine = Engine(models.target, models.draft, max_gamma=gamma, copy_drafter=False, adaptive_gamma=False)
    rng = random.Random(seed)
    rounds = accepted = drafted = 0
    for _ in range(prompts):
        _, text = rng.choice(texts)
        ids = models.codec.encode(text)
        if len(ids) < 400:
            continue
        cut = rng.randrange(256, len(ids) - 64)
        prompt = [models.codec.bos] + ids[cut - 256:cut]
        s = engine.generate(GenerationRequest(target_ids=prompt, draft_ids=prompt, max_new_tokens=new,
                                              stop_ids=frozenset({models.codec.eos}))).stats
        rounds, accepted, drafted = rounds + s.rounds, accepted + s.accepted_tokens, drafted + s.drafted_tokens
    return {"draft_length": gamma, "rounds": rounds, "drafted": drafted, "accepted": accepted,
            "per_token_acceptance": round(accepted / max(drafted, 1), 3),
            "mean_tokens_per_target_forward": round((accepted + rounds) / max(rounds, 1), 3)}


SIZES = {  # held-out tokens for the losses, holes per FIM measurement, prompts for the acceptance
    "full": {"tokens": 60_000, "holes": 100, "prompts": 40},
    "quick": {"tokens": 20_000, "holes": 20, "prompts": 15},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pair", type=Path, default=DEMO_DIR,
                        help="a pair's folder: target/, draft/, heldout.json (default: the embedded pair)")
    parser.add_argument("--first-token-only", action="store_true",
                        help="only where fills start, in each order (a few minutes on a CPU)")
    return parser.parse_args()


def load_pair(pair: Path):
    """The pair's models (float32, CPU) and its held-out files found on this machine."""
    texts = [(name, read(path)) for name, path in heldout_paths(pair / "heldout.json")]
    settings = Settings(target=str(pair / "target"), draft=str(pair / "draft"), device="cpu", dtype="float32")
    return load_models(settings), texts


def first_tokens(pair: Path, sizes: dict) -> dict:
    models, texts = load_pair(pair)
    cases = holes(texts, sizes["holes"])
    return {order: fim_first_token(models, order, cases) for order in ("spm", "psm")}


def measure(pair: Path, sizes: dict) -> dict:
    """Every figure of the model card, on the held-out files found on this machine."""
    torch.manual_seed(0)
    t0 = time.perf_counter()
    models, texts = load_pair(pair)
    cases, line_cases = holes(texts, sizes["holes"]), holes(texts, sizes["holes"], seed=1, line_start=True)
    result = {
        "python": sys.version.split()[0], "heldout_files_found": len(texts),
        "loss_target": heldout_loss(models.target, models.codec, texts, sizes["tokens"]),
        "loss_draft": heldout_loss(models.draft, models.codec, texts, sizes["tokens"]),
        "fim_spm": fim_exact_match(pair, "spm", cases), "fim_psm": fim_exact_match(pair, "psm", cases),
        "fim_spm_whole_line": fim_exact_match(pair, "spm", line_cases),
        "fim_first_token_spm": fim_first_token(models, "spm", cases),
        "fim_first_token_psm": fim_first_token(models, "psm", cases),
        "acceptance": acceptance(models, texts, sizes["prompts"]),
    }
    result["perplexity_target"] = round(math.exp(result["loss_target"]["loss"]), 2)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main() -> None:
    """Measure, print the JSON, and write it where --out says."""
    args = parse_args()
    sizes = SIZES["quick" if args.quick else "full"]
    result = first_tokens(args.pair, sizes) if args.first_token_only else measure(args.pair, sizes)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
