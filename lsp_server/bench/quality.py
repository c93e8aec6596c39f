"""`speclsp bench quality`: what the model pairs write into fill-in-the-middle holes of held-out code.

Holes of both kinds (holes.py) go through the product's own path, CompletionService with its
Settings on the CPU: prompt building, engine, stop rules and post-processing. Each hole is a fresh
document, so every latency includes the whole prompt's prefill. Every hole runs in each
configuration in turn (FIM order SPM and PSM, speculation on and off), so a busy machine slows them
alike. Greedy speculation must write exactly what plain decoding writes: a hole where it does not
is a failure, reported in the JSON and the table, and the command exits 1.

The time budget is lifted unless --time-budget-ms is given: what a model writes must not depend on
how busy the CPU is (the budget cuts prompts to the measured prefill speed, and stops decoding).

Measures per configuration and kind (quality_metrics.py): first-line exact match, prefix match,
edit similarity, empty rate, bracket imbalance, degenerate repetition, mid-word continuation,
leading white-space errors, latency p50/p95 and draft acceptance (accepted / drafted tokens).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..prompt import CursorContext
from ..timing import PrefillRate
from .heldout import HELDOUT_LIST, heldout_texts
from .holes import KINDS, Hole, cut_holes
from .quality_report import ORDERS, mean, pair_result

SIZES = {"quick": 40, "full": 200}  # holes of each kind
SEED = 0
LSP_HOLES = 2  # of each kind, through `speclsp serve` as well
ROOT = Path(__file__).resolve().parents[2]
LIFTED_BUDGET_MS = 24 * 3600 * 1000
CHECKPOINT_EVERY = 20  # holes
PER_CONFIG = ("target", "draft", "fimOrder", "speculative")  # settings that are not the same for every run


class BadArgument(Exception):
    """A --pair or --heldout value that cannot be used (the command's usage error)."""


class UnmeasuredRate(PrefillRate):
    """A prefill speed never known, so every prompt is read whole (timing.prefill_allowance)."""

    def observe(self, tokens: int, ms: float) -> None:
        pass


def parse_pairs(specs: list[str] | None) -> list[tuple[str, Path]]:
    """(name, directory) of each `--pair NAME=DIR`; the embedded demo pair when none is given."""
    if not specs:
        return [("demo", HELDOUT_LIST.parent)]
    pairs = []
    for spec in specs:
        name, sep, folder = spec.partition("=")
        name, where = name.strip(), Path(folder).expanduser()
        if not (sep and name) or any(n == name for n, _ in pairs):
            raise BadArgument(f"--pair {spec!r}: expected NAME=DIR with a new NAME")
        if not ((where / "target").is_dir() and (where / "draft").is_dir()):
            raise BadArgument(f"--pair {spec!r}: {where} has no target/ and draft/ folders")
        pairs.append((name, where))
    return pairs


def default_out(args) -> Path:
    """bench/results/quality-<pair names>[-quick].json, under the working directory."""
    names = "-".join(name for name, _ in parse_pairs(args.pair))
    return Path("bench") / "results" / f"quality-{names}{'-quick' if args.quick else ''}.json"


def configs() -> list[tuple[str, str, bool]]:
    """(name, FIM order, speculative) of every configuration a pair runs in."""
    return [(f"{order}/{'speculative' if spec else 'plain'}", order, spec) for order in ORDERS for spec in (True, False)]


def _loaded(backend):
    """An open_backend for CompletionService that hands over a backend already loaded."""
    return lambda settings, progress: backend


def pair_services(settings, folder: Path, lift_budget: bool) -> dict:
    """One service per configuration, all over one backend: the pair is loaded once."""
    from ..service import CompletionService

    base = settings.replace(target=str(folder / "target"), draft=str(folder / "draft"))
    services, backend = {}, None
    for name, order, spec in configs():
        shared = {"open_backend": _loaded(backend)} if backend else {}
        service = CompletionService(base.replace(fim_order=order, speculative=spec), **shared)
        service.load()
        if lift_budget:
            service.prefill_rate = UnmeasuredRate()
        services[name], backend = service, service.backend
    return services


def run_hole(service, hole: Hole, key: str) -> dict:
    """One completion at the hole, as the server computes it for a document it has not seen."""
    started = time.perf_counter()
    completion = service.complete(CursorContext(hole.prefix, hole.suffix), key)
    ms = (time.perf_counter() - started) * 1e3
    service.forget(key)
    s = completion.stats
    return {"text": completion.text, "latency_ms": ms, "finish_reason": s["finish_reason"],
            "drafted": s["drafted_tokens"], "accepted": s["accepted_tokens"],
            "copy_drafted": s["copy_drafted_tokens"], "copy_accepted": s["copy_accepted_tokens"]}


def run_pair(holes: list[Hole], services: dict, report) -> dict:
    """Every hole in every configuration, hole by hole; `report(rows)` now and then."""
    rows: dict[str, list[dict]] = {name: [] for name in services}
    for i, hole in enumerate(holes):
        for name, service in services.items():
            rows[name].append(run_hole(service, hole, f"{name}#{i}"))
        if (i + 1) % CHECKPOINT_EVERY == 0 and i + 1 < len(holes):
            report(rows)
    return rows


def corpus(args) -> tuple[Path, list[tuple[str, str]]]:
    """The listing the holes come from (--heldout, or the demo pair's), and its files found here."""
    listing = Path(args.heldout) if getattr(args, "heldout", None) else HELDOUT_LIST
    if not listing.is_file():
        raise BadArgument(f"--heldout {listing}: no such file")
    texts = heldout_texts(listing)
    if not texts:
        raise BadArgument(f"none of the files listed in {listing} is on this machine")
    return listing, texts


def make_holes(texts: list[tuple[str, str]], count: int) -> list[Hole]:
    """`count` holes of each kind, in file order: kinds and files mixed as the run goes."""
    holes = [h for kind in KINDS for h in cut_holes(texts, count, kind, SEED)]
    return sorted(holes, key=lambda h: (h.file, h.line, h.kind))


def suite_settings(args):
    """The command line's settings on the CPU (unless --device says otherwise), and whether the
    time budget is lifted (no --time-budget-ms)."""
    from ..config import settings_from_args

    settings = settings_from_args(args).replace(device=getattr(args, "device", None) or "cpu")
    lift = getattr(args, "timeBudgetMs", None) is None
    return (settings.replace(time_budget_ms=LIFTED_BUDGET_MS) if lift else settings), lift


def describe_corpus(listing: Path, texts: list, holes: list[Hole], count: int) -> dict:
    """Where the holes come from, and how many cursors fall inside a word, overall and by kind."""
    where = listing.resolve()
    shown = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
    return {"listing": str(shown), "files_found": len(texts), "seed": SEED, "holes_per_kind": count,
            "mid_word_share": {k: mean(h.mid_word for h in holes if k in ("all", h.kind)) for k in ("all", *KINDS)}}


def check_server(services: dict, holes: list[Hole], suggestions: list[str]) -> dict:
    """The first LSP_HOLES holes of each kind through `speclsp serve`, in the server's default
    configuration (SPM, speculative), against the service's suggestions for them."""
    from ..config import settings_to_lsp
    from .quality_lsp import lsp_check

    pick = [i for kind in KINDS for i in [j for j, h in enumerate(holes) if h.kind == kind][:LSP_HOLES]]
    options = settings_to_lsp(services["spm/speculative"].settings)
    return lsp_check(options, [holes[i] for i in pick], [suggestions[i] for i in pick])


def measure_pair(name: str, folder: Path, holes: list[Hole], settings, lift: bool, report) -> tuple[dict, dict]:
    """One pair in every configuration: its results, and its services; `report(name, partial)` every
    few holes."""
    services = pair_services(settings, folder, lift)
    info = services["spm/speculative"].backend.info
    rows = run_pair(holes, services, lambda partial: report(name, pair_result(holes, partial, info)))
    return pair_result(holes, rows, info), services


def quality_suite(args, checkpoint=lambda partial: None) -> dict:
    """The suite: the holes (SIZES of each kind, by --quick), then each pair in each configuration,
    then LSP_HOLES of each kind through the server process (the first pair).
    `checkpoint(partial)` gets the result so far every few holes."""
    from ..config import settings_to_lsp

    listing, texts = corpus(args)
    count = SIZES["quick" if args.quick else "full"]
    holes = make_holes(texts, count)
    settings, lift = suite_settings(args)
    out = {"heldout": describe_corpus(listing, texts, holes, count),
           "time_budget": "lifted" if lift else settings.time_budget_ms,
           "settings": {k: v for k, v in settings_to_lsp(settings).items() if k not in PER_CONFIG}, "pairs": {}}
    started = time.perf_counter()

    def report(name: str, partial: dict) -> None:
        print(f"quality: {name}: {len(partial['suggestions']['spm'])} of {len(holes)} holes, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
        checkpoint({**out, "pairs": {**out["pairs"], name: partial}})

    for name, folder in parse_pairs(getattr(args, "pair", None)):
        out["pairs"][name], services = measure_pair(name, folder, holes, settings, lift, report)
        if LSP_HOLES and "lsp" not in out:
            out["lsp"] = {"pair": name, **check_server(services, holes, out["pairs"][name]["suggestions"]["spm"])}
    out["failures"] = [f"{name}: {f}" for name, p in out["pairs"].items() for f in p["failures"]]
    if out.get("lsp", {}).get("differ"):
        out["failures"].append(f"speclsp serve answered {len(out['lsp']['differ'])} holes otherwise than the service")
    out["holes"] = [h.describe() for h in holes]
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out
