"""`speclsp bench`: the numbers behind docs/benchmarks.md, printed as JSON.

Suites:
  gpu     real shapes (CodeLlama-7b target, AMD-135m draft) wired as the controlled-acceptance
          pair: step times, ms/token at each acceptance, prefill, one completion cold and warm,
          GPU memory. Needs CUDA/ROCm; `--small` runs scaled-down shapes anywhere.
  cpu     the embedded demo pair on held-out standard-library code: acceptance and speed-up,
          and the copy drafter on edits that repeat nearby code.
  replay  a typing session replayed keystroke by keystroke (see replay.py).
  wait    how long a request waits for the model worker while it prefills in the background:
          prefill cost per chunk size, and request waits through the in-process server.
  quality what the model pairs write into fill-in-the-middle holes of held-out code, through the
          completion service (see quality.py); prints a table, writes the JSON to
          bench/results/quality-<pairs>.json unless --out says otherwise; exits 1 when speculative
          and plain decoding wrote different text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import environment


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def run_bench(args) -> int:
    suite = args.suite
    if suite == "gpu" and not args.small and not _has_gpu():
        print("speclsp: bench gpu builds CodeLlama-7b-shaped models (about 27 GB in float32 on a CPU) and needs a "
              "CUDA/ROCm GPU; run `speclsp bench gpu --small` for scaled-down shapes on this machine", file=sys.stderr)
        return 2

    def checkpoint(partial: dict) -> None:
        if args.out:
            Path(args.out).write_text(json.dumps({"suite": suite, "partial": True, **partial}, indent=1))

    if suite == "gpu":
        from .gpu import gpu_suite

        result = gpu_suite(small=args.small, quick=args.quick, checkpoint=checkpoint)
    elif suite == "cpu":
        from .cpu import cpu_suite

        result = cpu_suite(args)
    elif suite == "replay":
        from .replay import replay_suite

        result = replay_suite(args)
    elif suite == "wait":
        from .wait import wait_suite

        result = wait_suite(args)
    elif suite == "quality":
        return _quality(args, checkpoint)
    else:
        print(f"unknown suite {suite!r}: gpu, cpu, replay, wait or quality", file=sys.stderr)
        return 2
    print(_write(args, result))
    return 0


def _write(args, result: dict) -> str:
    """The suite's JSON, with the command and the environment; written where --out says."""
    result = {"suite": args.suite, "command": " ".join(["speclsp", *sys.argv[1:]]), "env": environment(), **result}
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return text


def _quality(args, checkpoint) -> int:
    from .quality import BadArgument, default_out, quality_suite
    from .quality_report import table

    try:
        args.out = args.out or str(default_out(args))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        result = quality_suite(args, checkpoint)
    except BadArgument as e:
        print(f"speclsp: {e}", file=sys.stderr)
        return 2
    _write(args, result)
    print(table(result))
    print(f"JSON: {args.out}")
    return 1 if result["failures"] else 0
