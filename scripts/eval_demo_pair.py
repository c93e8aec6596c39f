#!/usr/bin/env python3
"""Measure the embedded demo pair on held-out code: the model figures of docs/demo-models.md.

- held-out loss of both models (left to right, nats per token);
- the draft's acceptance against the target, greedy, draft length 4: mean tokens emitted per
  target forward in speculative rounds, on left-to-right continuations of held-out code.

What the pair writes into fill-in-the-middle holes, through the product's own pipeline, is
measured by `speclsp bench quality` (lsp_server/bench/quality.py).

The held-out files are those listed in lsp_server/models/demo/heldout.json (chosen by a hash
of the path, never trained on), read from this machine's standard library.
Usage: python scripts/eval_demo_pair.py [--out bench/results/demo-eval.json] [--quick]
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

from lsp_server.bench.heldout import heldout_texts  # noqa: E402
from lsp_server.bench.holes import cut_holes  # noqa: E402
from lsp_server.config import Settings  # noqa: E402
from lsp_server.engine.api import GenerationRequest  # noqa: E402
from lsp_server.engine.models import demo_paths, load_models  # noqa: E402
from lsp_server.engine.speculative import Engine  # noqa: E402


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


def holes(texts, n: int, seed: int = 0, line_start: bool = False) -> list[tuple[str, str, int, str]]:
    """The quality suite's holes (lsp_server/bench/holes.py) as (file, document, cursor offset, the
    rest of the line), for the scripts that cut their holes through this one."""
    kind = "line_start" if line_start else "mid_line"
    return [(h.file, h.prefix + h.suffix, len(h.prefix), h.expected) for h in cut_holes(texts, n, kind, seed)]


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


SIZES = {  # held-out tokens for the losses, prompts for the acceptance
    "full": {"tokens": 60_000, "prompts": 40},
    "quick": {"tokens": 20_000, "prompts": 15},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out")
    parser.add_argument("--quick", action="store_true")
    return parser.parse_args()


def measure(sizes: dict) -> dict:
    """The model card's loss and acceptance figures, on the held-out files found on this machine."""
    torch.manual_seed(0)
    t0 = time.perf_counter()
    texts = heldout_texts()
    t, d = demo_paths()
    models = load_models(Settings(target=str(t), draft=str(d), device="cpu", dtype="float32"))
    result = {
        "python": sys.version.split()[0], "heldout_files_found": len(texts),
        "loss_target": heldout_loss(models.target, models.codec, texts, sizes["tokens"]),
        "loss_draft": heldout_loss(models.draft, models.codec, texts, sizes["tokens"]),
        "acceptance": acceptance(models, texts, sizes["prompts"]),
    }
    result["perplexity_target"] = round(math.exp(result["loss_target"]["loss"]), 2)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def main() -> None:
    """Measure, print the JSON, and write it where --out says."""
    args = parse_args()
    text = json.dumps(measure(SIZES["quick" if args.quick else "full"]), indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
