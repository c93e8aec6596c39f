"""The figures of `speclsp bench quality` from its rows: measures per configuration and kind of
hole, whether speculation changed any output, and the table the command prints. Torch-free."""

from __future__ import annotations

import statistics

from .holes import KINDS, Hole
from .quality_metrics import score
from .replay import percentile

ORDERS = ("spm", "psm")
RATES = ("exact", "prefix_match", "empty", "repetition", "leading_whitespace_error")


def mean(values) -> float | None:
    """The mean of the values that are not None, to three places; None when there are none."""
    values = [v for v in values if v is not None]
    return round(float(statistics.mean(values)), 3) if values else None


def measures(holes: list[Hole], rows: list[dict]) -> dict:
    """What the suggestions are worth: rates and means of quality_metrics.score over the holes.
    Bracket imbalance and mid-word continuation count only where they apply (`*_counted`)."""
    scores = [score(h, r["text"]) for h, r in zip(holes, rows, strict=True)]
    out = {f"{k}_rate": mean(s[k] for s in scores) for k in RATES}
    out["edit_similarity"] = mean(s["edit_similarity"] for s in scores)
    for k in ("bracket_imbalance", "mid_word_correct"):
        counted = [s[k] for s in scores if s[k] is not None]
        out[f"{k}_rate"], out[f"{k}_counted"] = mean(counted), len(counted)
    return out


def speed(rows: list[dict]) -> dict:
    """How the suggestions were made: latency, the drafts accepted, why decoding ended."""
    latency = [r["latency_ms"] for r in rows]
    total = {k: sum(r[k] for r in rows) for k in ("drafted", "accepted", "copy_drafted", "copy_accepted")}
    reasons = [r["finish_reason"] for r in rows]
    return {"latency_ms_p50": round(percentile(latency, 0.5), 1), "latency_ms_p95": round(percentile(latency, 0.95), 1),
            **total, "acceptance": round(total["accepted"] / total["drafted"], 3) if total["drafted"] else None,
            "finish_reasons": {k: reasons.count(k) for k in sorted(set(reasons))}}


def summarize(holes: list[Hole], rows: list[dict]) -> dict:
    """Everything measured over `rows`, one per hole, in the holes' order."""
    return {"holes": len(rows), **measures(holes, rows), **speed(rows)}


def by_kind(holes: list[Hole], rows: list[dict]) -> dict:
    """summarize() over all holes and over each kind."""
    out = {"all": summarize(holes, rows)}
    for kind in KINDS:
        pick = [i for i, h in enumerate(holes) if h.kind == kind]
        out[kind] = summarize([holes[i] for i in pick], [rows[i] for i in pick])
    return out


def identity(rows: dict[str, list[dict]]) -> tuple[dict, list[str]]:
    """Per FIM order: how many holes speculation answered exactly as plain decoding did; the
    holes where it did not, as failures."""
    out, failures = {}, []
    for order in ORDERS:
        spec, plain = rows[f"{order}/speculative"], rows[f"{order}/plain"]
        differ = [i for i, (a, b) in enumerate(zip(spec, plain, strict=True)) if a["text"] != b["text"]]
        out[order] = {"identical": len(spec) - len(differ), "of": len(spec),
                      "differ": [{"hole": i, "speculative": spec[i]["text"], "plain": plain[i]["text"]} for i in differ]}
        if differ:
            failures.append(f"{order}: speculative output differs from plain decoding on {len(differ)} of "
                            f"{len(spec)} holes (first: hole {differ[0]})")
    return out, failures


def pair_result(holes: list[Hole], rows: dict[str, list[dict]], info: dict) -> dict:
    """One pair's results from its rows per configuration (a partial run: the first holes only)."""
    done = holes[:len(next(iter(rows.values())))]
    same, failures = identity(rows)
    return {"models": info, "configs": {name: by_kind(done, r) for name, r in rows.items()},
            "identical": same, "failures": failures,
            "suggestions": {order: [r["text"] for r in rows[f"{order}/speculative"]] for order in ORDERS}}


COLUMNS = (  # header, measure of the speculative run, format
    ("exact", "exact_rate", "{:.3f}"), ("prefix", "prefix_match_rate", "{:.3f}"),
    ("edit sim", "edit_similarity", "{:.3f}"), ("empty", "empty_rate", "{:.3f}"),
    ("brackets", "bracket_imbalance_rate", "{:.3f}"), ("repeats", "repetition_rate", "{:.3f}"),
    ("mid-word ok", "mid_word_correct_rate", "{:.3f}"), ("lead ws", "leading_whitespace_error_rate", "{:.3f}"),
    ("p50/p95 ms", None, None), ("plain p50/p95", None, None), ("accept", "acceptance", "{:.3f}"),
)


def _cell(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def table(result: dict) -> str:
    """The short table the command prints: each pair, FIM order and kind of hole (the speculative
    run's measures; plain decoding's latency beside), then whether speculation changed any output."""
    head = ["pair", "order", "kind", "holes", *(c[0] for c in COLUMNS)]
    lines = [head]
    for pair, p in result["pairs"].items():
        for order in ORDERS:
            spec, plain = p["configs"][f"{order}/speculative"], p["configs"][f"{order}/plain"]
            for kind in (*KINDS, "all"):
                s, q = spec[kind], plain[kind]
                cells = [_cell(s[key], fmt) if key else None for _, key, fmt in COLUMNS]
                cells[-3] = f"{s['latency_ms_p50']:.0f}/{s['latency_ms_p95']:.0f}"
                cells[-2] = f"{q['latency_ms_p50']:.0f}/{q['latency_ms_p95']:.0f}"
                lines.append([pair, order, kind, str(s["holes"]), *cells])
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    for pair, p in result["pairs"].items():
        same = ", ".join(f"{o} {v['identical']} of {v['of']}" for o, v in p["identical"].items())
        text.append(f"{pair}: speculative output identical to plain decoding: {same}")
    share = result.get("heldout", {}).get("mid_word_share")
    if share:
        text.append(f"cursors inside a word: {share['all']:.0%} of the holes ({share['mid_line']:.0%} of the mid-line ones)")
    lsp = result.get("lsp")
    if lsp:
        said = lsp.get("skipped") or f"{lsp['same']} of {lsp['holes']} holes answered as by the service"
        text.append(f"{lsp['pair']}, through speclsp serve (spm, speculative): {said}")
    text += [f"FAILED: {f}" for f in result["failures"]]
    return "\n".join(text)
