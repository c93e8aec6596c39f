#!/usr/bin/env python3
"""Measure the shape of the demo pair's suggestions on held-out code: balance, repetition, emptiness.

Holes are cut as in scripts/eval_demo_pair.py (cursor inside a line → the rest of the line; cursor
at a line's code start → that line), plus holes inside a line whose end stays after the cursor
(a single-line completion, as when editing inside a call). Each hole is completed once through the
product's pipeline (CompletionService on the CPU, greedy) with the stop check recording the tokens
and never stopping; the post-processing is then replayed token by token exactly as the engine would
run it (the first token at which `make_stop` fires ends decoding, then `postprocess`): with the
lsp_server/postprocess.py of --base (a git revision), with this checkout's, and with this checkout's
adding the missing closers instead of cutting ("closers"), all on the same generations. --check
also runs the real pipeline (stops included) and counts the holes where it shows the replayed text.

The judges are written apart from the filters, on Python's own tokenize. Unbalanced: the line plus
its rest was balanced and is not with the suggestion between them (single line), or the suggestion
ends with a bracket or string it opened itself (block); holes inside a multi-line string or a
comment of the original file are not judged. Repetitive: a line three times in a row, a word's
piece glued to itself, a unit with a 3-letter word three times back to back, a short unit four
times. Echoes (stricter, for reference): any unit with a 3-letter word twice back to back. "truth"
gives how often each judge fires on the code that was in the hole.
Usage: python scripts/eval_suggestions.py [--holes 100] [--base REV] [--raw FILE] [--check] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import tokenize
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from eval_demo_pair import holes  # noqa: E402

import lsp_server.service as service_module  # noqa: E402
from lsp_server import brackets  # noqa: E402
from lsp_server import postprocess as current  # noqa: E402
from lsp_server.bench.heldout import heldout_texts  # noqa: E402
from lsp_server.config import Settings  # noqa: E402
from lsp_server.engine.models import demo_paths  # noqa: E402
from lsp_server.prompt import CursorContext  # noqa: E402
from lsp_server.service import CompletionService  # noqa: E402


def inner_holes(texts, n: int, seed: int = 2):
    """Holes inside a line with code left after them: (file, document, offset, the hole's text)."""
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
        start = rng.randrange(indent, len(line) - 4)
        end = rng.randrange(start + 1, len(line) - 1)
        offset = sum(len(x) + 1 for x in lines[:i]) + start
        out.append((name, text[:offset] + text[offset + end - start:], offset, line[start:end]))
    return out


# --- judges ---------------------------------------------------------------------------------------

PAIRS = {")": "(", "]": "[", "}": "{"}


def scan(code: str) -> tuple[list[str], bool]:
    """(the brackets left open, ok) for a piece of code read from a fresh line start by tokenize.
    ok is False for a closer matching no opener, or a string left open."""
    stack: list[str] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.OP and tok.string in "([{":
                stack.append(tok.string)
            elif tok.type == tokenize.OP and tok.string in ")]}":
                if not stack or stack.pop() != PAIRS[tok.string]:
                    return stack, False
            elif tok.type == tokenize.ERRORTOKEN and tok.string.strip() and tok.string.strip()[0] in "'\"":
                return stack, False  # a quote that opens a string never closed on its line
    except tokenize.TokenError as e:
        if "string" in str(e.args[0]):  # EOF in multi-line string
            return stack, False
        # EOF in multi-line statement: brackets open, already in the stack
    except IndentationError:
        pass
    return stack, True


def balanced(code: str) -> bool:
    stack, ok = scan(code)
    return ok and not stack


def unbalances(ctx: CursorContext, text: str) -> bool:
    """Single line: the line plus its rest was balanced and is not with the text between them.
    Block: the text leaves open a bracket or string it opened itself, or closes a bracket with the
    wrong kind (what the line opened before the cursor it may close or leave open)."""
    lp, ls = ctx.line_prefix, ctx.line_suffix
    if ls.strip():
        return balanced(lp + ls) and not balanced(lp + text + ls)
    if not scan(lp)[1]:
        return False  # the line before the cursor is not code read from a line start (a docstring line)
    return left_open_by_text(lp, text)


def left_open_by_text(lp: str, text: str) -> bool:
    def in_text(pos: tuple[int, int]) -> bool:
        return pos[0] > 1 or pos[1] >= len(lp)

    stack: list[tuple[str, bool]] = []  # (opener, opened by the text)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(lp + text).readline):
            if tok.type == tokenize.OP and tok.string in "([{":
                stack.append((tok.string, in_text(tok.start)))
            elif tok.type == tokenize.OP and tok.string in ")]}" and stack:  # none open: an earlier line's
                if stack.pop()[0] != PAIRS[tok.string]:
                    return True
            elif tok.type == tokenize.ERRORTOKEN and tok.string.strip()[:1] in ("'", '"'):
                return in_text(tok.start)
    except tokenize.TokenError as e:
        if "string" in str(e.args[0]):
            return in_text(e.args[1])
    except IndentationError:
        pass
    return any(by_text for _, by_text in stack)


def _repeats(pattern: str, text: str) -> list[str]:
    """The unit of each back-to-back repetition `pattern` finds, starting anywhere."""
    return [m.group(2) for m in re.finditer(f"(?=({pattern}))", text)]


def repetitive(text: str) -> bool:
    """Degenerate, as the issue names it: a non-blank line three times in a row; a piece of a word
    glued to itself (`_LOCAL_REQUE_LOCAL_REQUE`); a unit with a word of 3+ letters three times
    back to back; a short unit (2-3 characters, a letter among them) four times."""
    lines = [ln.strip() for ln in text.split("\n")]
    if any(a and a == b == c for a, b, c in zip(lines, lines[1:], lines[2:], strict=False)):
        return True
    if any(re.search(r"[A-Za-z]{3}", u) for u in _repeats(r"(\w{4,40}?)\2", text)):
        return True
    if any(re.search(r"[A-Za-z]{3}", u) for u in _repeats(r"([^\n]{4,40}?)\2\2", text)):
        return True
    return any(re.search(r"[A-Za-z]", u) for u in _repeats(r"([^\n]{2,3}?)\2{3}", text))


def echoes(text: str) -> bool:
    """Stricter, for reference: any stretch with a word of 3+ letters written twice back to back
    (real code does it too: `datetime.datetime`, `x = y = None, None`)."""
    return any(re.search(r"[A-Za-z]{3}", u) for u in _repeats(r"([^\n]{4,40}?)\2", text))


def in_string_or_comment(original: str, offset: int) -> bool:
    """Is `offset` inside a string spanning lines, or a comment, of the whole file (tokenize)?
    There a line read alone says nothing about balance (a docstring's "don't")."""
    starts = [0] + [i + 1 for i, ch in enumerate(original) if ch == "\n"]
    try:
        for tok in tokenize.generate_tokens(io.StringIO(original).readline):
            if tok.type in (tokenize.STRING, tokenize.COMMENT):
                begin = starts[tok.start[0] - 1] + tok.start[1]
                end = starts[tok.end[0] - 1] + tok.end[1]
                if begin < offset < end and (tok.type == tokenize.COMMENT or tok.end[0] > tok.start[0]):
                    return True
    except (tokenize.TokenError, IndentationError):
        pass
    return False


def lexer_agreement(texts) -> dict:
    """brackets.py against tokenize at every line start of the held-out files: bracket depth and
    whether the line starts inside a string."""
    lines = disagree = 0
    for _, text in texts:
        try:
            truth = _tokenize_line_states(text)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            continue
        ours = _our_line_states(text)
        lines += len(truth)
        disagree += sum(a != b for a, b in zip(truth, ours, strict=True))
    return {"line_starts": lines, "disagree": disagree}


def _tokenize_line_states(text: str) -> list[tuple[int, bool]]:
    events, string_lines = [], set()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.OP and tok.string in "([{)]}":
            events.append((tok.start[0], 1 if tok.string in "([{" else -1))
        elif tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            string_lines.update(range(tok.start[0] + 1, tok.end[0] + 1))
    out, depth, k = [], 0, 0
    for line in range(1, text.count("\n") + 2):
        while k < len(events) and events[k][0] < line:
            depth, k = depth + events[k][1], k + 1
        out.append((depth, line in string_lines))
    return out


def _our_line_states(text: str) -> list[tuple[int, bool]]:
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    events = list(brackets.steps(text, (), strict=False))
    out, state, k = [], (), 0
    for start in starts:
        while k < len(events) and events[k][0] < start:
            state, k = events[k][1], k + 1
        out.append((sum(item in "([{" for item in state), brackets.in_string(state)))
    return out


# --- replay ---------------------------------------------------------------------------------------

def load_postprocess(rev: str):
    """lsp_server/postprocess.py as it is at git revision `rev`, importable beside this checkout."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:lsp_server/postprocess.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "postprocess_base.py"
    path.write_text(source.replace("from .prompt import", "from lsp_server.prompt import"))
    spec = importlib.util.spec_from_file_location("postprocess_base", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def replay(module, decode, ids: list[int], ended_by_eot: bool, ctx: CursorContext) -> tuple[str, int]:
    """The shown text and the tokens decoded, as the engine plus `module` would give them."""
    stop = module.make_stop(decode, ctx)
    for k in range(1, len(ids) + 1):
        if stop(ids[:k]):
            return module.postprocess(decode(ids[:k]), ctx), k
    return module.postprocess(decode(ids), ctx), len(ids) + ended_by_eot


def generate(service, cases, kind: str) -> list[dict]:
    """Every hole's tokens, decoding on to max_tokens (or the end-of-text token)."""
    seen: list[list[int]] = []
    real = service_module.make_stop
    service_module.make_stop = lambda decode, ctx: (lambda ids: seen.append(list(ids)) and False)
    try:
        rows = []
        for k, (name, doc, offset, truth) in enumerate(cases):
            seen.clear()
            done = service.compute(CursorContext(doc[:offset], doc[offset:]), f"{kind}{k}")
            ids = seen[-1] if seen else []
            rows.append({"name": name, "doc": doc, "offset": offset, "truth": truth, "ids": ids,
                         "eot": done.stats.get("finish_reason") == "eot"})
        return rows
    finally:
        service_module.make_stop = real


def add_closers(text: str, ctx: CursorContext) -> str:
    """The alternative to cutting: close what the text left open, innermost first (the cut
    remains for a text the closers cannot mend)."""
    start = current.opened_before(ctx.prefix)
    state = brackets.final(text, start)
    if state is None:
        return current.keep_balanced(text, ctx)
    fewest = min(len(s) for _, s in brackets.steps(text, start) if s is not None)
    fewest = min(fewest, len(start))
    closers = {"(": ")", "[": "]", "{": "}", "#": ""}
    mended = text + "".join(closers.get(item, item.lstrip("f")) for item in reversed(state[fewest:]))
    return current.keep_balanced(mended, ctx)


def closing_variant():
    filters = tuple(add_closers if f is current.keep_balanced else f for f in current.FILTERS)

    def postprocess(text: str, ctx: CursorContext) -> str:
        for step in filters:
            text = step(text, ctx)
        return text
    return SimpleNamespace(make_stop=current.make_stop, postprocess=postprocess)


def writes_the_suffix(ctx: CursorContext, text: str) -> bool:
    """A block that goes on into the code already after the cursor: one of its later lines is the
    suffix's first line of code."""
    after = next((ln.strip() for ln in ctx.suffix.split("\n")[:20] if ln.strip()), None)
    return after is not None and any(ln.strip() == after for ln in text.split("\n")[1:])


def judge(rows, module, decode) -> dict:
    n = len(rows)
    counts = {"unbalanced": 0, "balance_not_judged": 0, "repetitive": 0, "echoes": 0, "empty": 0,
              "exact_first_line": 0, "writes_suffix": 0, "tokens": 0}
    examples: dict[str, list] = {"unbalanced": [], "repetitive": []}
    for r in rows:
        ctx = CursorContext(r["doc"][:r["offset"]], r["doc"][r["offset"]:])
        text, used = replay(module, decode, r["ids"], r["eot"], ctx)
        r.setdefault("shown", []).append(text)
        original = r["doc"][:r["offset"]] + r["truth"] + r["doc"][r["offset"]:]
        skip = in_string_or_comment(original, r["offset"])
        flags = {"unbalanced": not skip and unbalances(ctx, text), "balance_not_judged": skip,
                 "repetitive": repetitive(text), "echoes": echoes(text), "empty": not text.strip(),
                 "exact_first_line": text.split("\n", 1)[0].strip() == r["truth"].strip(),
                 "writes_suffix": writes_the_suffix(ctx, text)}
        for key, flag in flags.items():
            counts[key] += flag
            if flag and key in examples and len(examples[key]) < 6:
                examples[key].append([ctx.line_prefix[-40:], text[:120], ctx.line_suffix[:30]])
        counts["tokens"] += used
    rates = {f"{k}_rate": round(v / n, 3) for k, v in counts.items() if k not in ("tokens", "balance_not_judged")}
    rates["unbalanced_rate"] = round(counts["unbalanced"] / max(n - counts["balance_not_judged"], 1), 3)
    return {"holes": n, **counts, **rates, "mean_tokens": round(counts["tokens"] / n, 1), "examples": examples}


def judge_truth(rows) -> dict:
    """The judges on the code that was there: how often they fire on real code."""
    n, counts = len(rows), {"unbalanced": 0, "repetitive": 0, "echoes": 0}
    for r in rows:
        ctx = CursorContext(r["doc"][:r["offset"]], r["doc"][r["offset"]:])
        original = r["doc"][:r["offset"]] + r["truth"] + r["doc"][r["offset"]:]
        counts["unbalanced"] += not in_string_or_comment(original, r["offset"]) and unbalances(ctx, r["truth"])
        counts["repetitive"] += repetitive(r["truth"])
        counts["echoes"] += echoes(r["truth"])
    return {"holes": n, **{f"{k}_rate": round(v / n, 3) for k, v in counts.items()}}


def settings(max_tokens: int) -> Settings:
    t, d = demo_paths()
    return Settings(target=str(t), draft=str(d), device="cpu", dtype="float32", max_tokens=max_tokens,
                    time_budget_ms=60_000)


def check(service, rows, kind: str) -> int:
    """Holes where the real pipeline (stop check included) shows what the replay showed."""
    same = 0
    for k, r in enumerate(rows):
        got = service.compute(CursorContext(r["doc"][:r["offset"]], r["doc"][r["offset"]:]), f"check-{kind}{k}")
        same += got.text == r["shown"][-1]
    return same


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holes", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--base", default="main", help="git revision of the postprocess.py to compare with")
    parser.add_argument("--check", action="store_true", help="also run the real pipeline with its stops")
    parser.add_argument("--raw", help="keep the generations in this JSON file (read it when it exists)")
    parser.add_argument("--out")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    t0 = time.perf_counter()
    texts = heldout_texts()
    kinds = {"inside_line": holes(texts, args.holes), "line_start": holes(texts, args.holes, seed=1, line_start=True),
             "single_line": inner_holes(texts, args.holes)}
    service = CompletionService(settings(args.max_tokens))
    service.load()
    decode = service.backend.codec.decode_continuation
    base = load_postprocess(args.base)
    result: dict = {"heldout_files_found": len(texts), "max_tokens": args.max_tokens, "base": args.base,
                    "lexer_vs_tokenize": lexer_agreement(texts)}
    raw = json.loads(Path(args.raw).read_text()) if args.raw and Path(args.raw).exists() else {}
    for kind, cases in kinds.items():
        rows = raw[kind] if kind in raw else generate(service, cases, kind)
        raw[kind] = rows
        if args.raw:
            Path(args.raw).write_text(json.dumps(raw))
        result[kind] = {"truth": judge_truth(rows), "base": judge(rows, base, decode),
                        "closers": judge(rows, closing_variant(), decode), "this": judge(rows, current, decode)}
        if args.check:
            result[kind]["this"]["real_pipeline_same"] = check(service, rows, kind)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
