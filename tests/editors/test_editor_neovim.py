"""Neovim 0.12 typing harness: a person typing, with the README's config, in a real Neovim.

Neovim 0.12.4 runs embedded (pynvim) with a UI attached, so it redraws and the test reads the
screen. Its init.lua is the README's Neovim block, verbatim; `speclsp` is found on PATH as a user's
would be, and the server runs on its defaults with an empty Hugging Face cache, so it falls back to
the embedded demo models. A probe (tests/data/neovim_probe.lua, test-only, no behaviour of its own)
records each inline completion request with the buffer text it was made for, each answer, and what
Tab inserted.

The test types into a half-written Python file (tests/data/orders_in_progress.py.txt, not the
packaged sample) at a dozen places: bursts at ~50 and ~150 ms per key, Enter into new lines, typing
after a ghost text appeared (through it, or against it), Tab 100 ms after the last key, Tab on a
fresh ghost text. What must hold, for every place:

- every burst ends (Neovim asked about the final text and got its answer) with ghost text made for
  the final text, or none;
- ghost text on screen is always a continuation of the current text at the cursor: the screen
  reads as the buffer would read after accepting (checked after every key of the slow bursts too);
- Tab never inserts text computed for other text, and the buffer after accepting is prefix +
  suggestion + suffix; with no ghost text on screen Tab is an ordinary Tab;
- Neovim's lsp.log holds no error and no traceback; no Press-ENTER prompt blocks typing;
- the server process exits once Neovim has quit.

Violations are collected over the whole run and reported together. Latency from the last key to
the ghost text is printed (p50/p95), not asserted. The transcript goes to
artifacts/editor-runs/neovim.txt, or to docs/editor-runs/neovim.txt with SPECLSP_UPDATE_EDITOR_RUNS=1.

Neovim 0.12.4 comes from scripts/install_neovim.sh (Debian sid packages, unpacked and patched), run
once per checkout. The test skips only when that script says this machine cannot install it (exit 2).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import statistics
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pynvim  # a dev dependency: missing is an error, not a reason to skip
import pytest

from lsp_server.lsp.documents import offset_at
from tests.editor_support import (
    DEMO_TARGET,
    REPO,
    descendants,
    inserted_by,
    is_alive,
    kill_tree,
    run_record_path,
    tail,
)

pytestmark = pytest.mark.editor

INSTALL = REPO / "scripts" / "install_neovim.sh"
NVIM_DIR = REPO / ".tools" / "nvim12"
DATA = Path(__file__).resolve().parents[1] / "data"
SOURCE = DATA / "orders_in_progress.py.txt"
PROBE = DATA / "neovim_probe.lua"

SCREEN = (160, 120)  # columns, rows: a wide terminal, tall enough that the whole file stays in view
READY_TIMEOUT = 120.0  # Neovim start and model loading on a CPU
ANSWER_TIMEOUT = 60.0  # from the last key to the answer for the final text
TAB_AFTER = 0.1  # Tab this long after the last key: before Neovim (200 ms debounce) has even asked
SERVER_EXIT_GRACE = 5.0  # after Neovim quit; the server should be gone well within this


# --- what is typed where --------------------------------------------------------------------------


@dataclass(frozen=True)
class Type:
    """A burst: `text` key by key, `ms` apart ("\\n" is Enter, "\\b" Backspace)."""
    text: str
    ms: int


@dataclass(frozen=True)
class Through:
    """Type the first `n` characters of the ghost text on screen, `ms` apart; `fallback` when none."""
    n: int
    ms: int
    fallback: str


@dataclass(frozen=True)
class Settle:
    """Wait for the answer to the final text; check what is on screen; measure the latency."""


@dataclass(frozen=True)
class Tab:
    """Press Tab TAB_AFTER seconds after the last key and check what it did."""


@dataclass(frozen=True)
class Place:
    name: str
    anchor: str  # the first line containing this text
    enter: str  # how insert mode is entered there: 'o', 'O', 'A', or 'i' before `before`
    steps: tuple
    before: str = ""


SETTLE, TAB = Settle(), Tab()
PLACES = (
    Place("Order.total: type through the ghost text, Tab 100 ms later", "def total(self) -> float:", "o",
          (Type("return sum(", 50), SETTLE, Through(3, 150, "line"), TAB)),
    Place("OrderBook.revenue: Enter into a loop, accept the fresh ghost text", "def revenue(self) -> float:", "o",
          (Type("total = 0", 150), SETTLE, Type("\nfor order in self.", 50), SETTLE, TAB)),
    Place("export: a loop header, Enter, a call typed slowly, Tab 100 ms later", 'writer.writerow(["id"', "o",
          (Type("for order in self.orders.values():", 50), SETTLE, Type("\nwriter.writerow([order.id, ", 150),
           TAB)),
    Place("discount: type against the ghost text, Tab 100 ms later", "unknown codes change nothing", "o",
          (Type("if code == ", 50), SETTLE, Type('"SAVE10":', 150), TAB)),
    Place("parse_line: slow burst, accept", 'text.split(",")', "o",
          (Type("return Line(", 150), SETTLE, TAB)),
    Place("label: non-ASCII before the cursor, slow burst after the ghost text", 'or "顧客"', "o",
          (Type('return f"{name}: €', 50), SETTLE, Type("{order.total()", 150), TAB)),
    Place("load: the reported case, a call typed after a ghost text was shown", "for row in rows:", "o",
          (Type("book.add(Order(", 150), SETTLE, Type('row["id"], ', 50), TAB)),
    Place("OrderBook.add: type a raise, erase it, type something else, Tab 100 ms later",
          "self.orders[order.id] = order", "O",
          (Type("if not isinstance(order, Order):\nraise TypeError(", 50), SETTLE,
           Type("\b" * 16 + "orders.append(Order(", 150), TAB)),
    Place("Order.add: Enter after a statement, accept", "self.lines.append(Line(sku, price, quantity))", "A",
          (Type("\nreturn", 50), SETTLE, TAB)),
    Place("by_customer: Enter twice and a new method, Tab 100 ms after Enter",
          "return [o for o in self.orders.values()", "A",
          (Type("\n\ndef count(self) -> int:", 50), SETTLE, Type("\n", 50), TAB)),
    Place("Order.add: mid-line, before the closing parentheses", "self.lines.append(Line(sku, price, quantity))",
          "i", (Type(", *", 150), SETTLE, TAB), before="))"),
    Place("export: a long loop header typed fast, Enter, a call, accept", "writer = csv.writer(f)", "A",
          (Type("\nfor order in sorted(self.orders.values(), key=lambda o: o.placed):\nwriter.writerow(", 50),
           SETTLE, TAB)),
)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nvim_path() -> str:
    """The Neovim 0.12.4 wrapper: reused when it already runs, else installed by the script."""
    wrapper = NVIM_DIR / "nvim"
    if _nvim_works(wrapper):
        return str(wrapper)
    proc = subprocess.run(["bash", str(INSTALL), str(NVIM_DIR)], capture_output=True, text=True, timeout=900)
    if proc.returncode == 2:  # the script's "cannot be done on this machine"
        reason = [line for line in proc.stderr.splitlines() if "unavailable here" in line] or [tail(proc.stderr, 1)]
        pytest.skip(f"Neovim 0.12.4 cannot be installed on this machine ({reason[-1]})")
    assert proc.returncode == 0, f"{INSTALL.name} failed ({proc.returncode}):\n{tail(proc.stderr, 30)}"
    path = proc.stdout.strip().splitlines()[-1]
    assert _nvim_works(Path(path)), f"{path} does not run"
    return path


def _nvim_works(path: Path) -> bool:
    if not os.access(path, os.X_OK):
        return False
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.startswith("NVIM v0.12.")


def readme_config() -> str:
    """The README's Neovim block, as a user would paste it into init.lua."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"\*\*Neovim 0\.12\*\*.*?```lua\n(.*?)```", readme, re.S)
    assert found, "README.md has no ```lua block after **Neovim 0.12**"
    return found.group(1)


# --- the run --------------------------------------------------------------------------------------


class Run:
    """One Neovim session: drives it, checks it, and keeps the transcript and the violations."""

    def __init__(self, nvim):
        self.nvim = nvim
        self.undo_to = self.first_row = 0  # where the current place started
        self.problems: list[str] = []
        self.log: list[str] = []
        self.latencies_ms: list[float] = []
        self.place = ""
        self.counts = {"fresh ghost texts": 0, "empty answers": 0, "accepted": 0, "typed through": 0,
                       "plain Tabs": 0, "screens checked": 0}

    # -- driving ---------------------------------------------------------------------------------

    def lua(self, code: str, *args):
        return self.nvim.exec_lua(code, *args)

    def snapshot(self) -> dict:
        return self.lua("return speclsp_probe.snapshot()")

    def request(self, i: int) -> dict:
        return self.lua("return speclsp_probe.request(...)", i)

    def go(self, place: Place) -> None:
        """Insert mode at the place, in the file as it was: each place starts from the original text."""
        self.place = place.name
        self.unblock()
        self.nvim.input("<Esc>")
        self.wait_mode("n")
        self.undo_to = self.lua("return vim.fn.undotree().seq_cur")
        lines = self.nvim.current.buffer[:]
        row = next((i for i, line in enumerate(lines) if place.anchor in line), None)
        assert row is not None, f"{place.name}: no line contains {place.anchor!r}"
        col = len(lines[row].encode()) if place.enter != "i" else lines[row].encode().index(place.before.encode())
        self.nvim.api.win_set_cursor(0, (row + 1, col))
        self.nvim.input(place.enter)
        self.wait_mode("i")
        self.note(f"--- {place.name} (line {row + 1}, '{place.enter}')")
        self.first_row = row

    def leave(self) -> None:
        """Back to normal mode; the lines typed here go to the transcript, then the edits are undone."""
        self.nvim.input("<Esc>")
        self.wait_mode("n")
        lines = self.nvim.current.buffer[:]
        row = self.nvim.api.win_get_cursor(0)[0] - 1
        for i in range(max(0, self.first_row - 1), min(len(lines), row + 2)):
            self.note(f"  {i + 1:>3} | {lines[i]}")
        self.nvim.command(f"undo {self.undo_to}")

    def wait_mode(self, mode: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nvim.api.get_mode()["mode"] == mode:
                return
            time.sleep(0.02)
        self.problem(f"Neovim did not reach mode {mode!r}: {self.nvim.api.get_mode()}")

    def type(self, text: str, ms: int) -> None:
        """Key by key; on slow bursts the screen is checked between keys."""
        for i, ch in enumerate(text):
            self.nvim.input({"\n": "<CR>", "\b": "<BS>", "<": "<LT>"}.get(ch, ch))
            if i == len(text) - 1:
                break
            if ms >= 100:
                time.sleep(ms / 2e3)
                self.check_screen(self.snapshot(), "between keys")
                time.sleep(ms / 2e3)
            else:
                time.sleep(ms / 1e3)
        self.note(f"typed {text!r} at {ms} ms per key")

    def through(self, step: Through) -> None:
        snap = self.snapshot()
        shown = self.shown_text(snap)
        text = shown[:step.n] if shown and "\n" not in shown[:step.n] and len(shown) > step.n else step.fallback
        if text != step.fallback:
            self.counts["typed through"] += 1
        self.type(text, step.ms)

    def settle(self) -> dict:
        """Wait until Neovim asked about the final text and got the answer; check the screen then."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            self.unblock()
            snap = self.snapshot()
            final = self.lua("""
                local tick = ...
                for i = #speclsp_probe.requests, 1, -1 do  -- the newest request about this text
                  local r = speclsp_probe.requests[i]
                  if r.tick == tick then return r.answered_ns and i or nil end
                end""", snap["tick"])
            if final is not None:
                time.sleep(0.05)  # let Neovim redraw after the handler
                return self.check_end_of_burst(self.snapshot(), final)
            time.sleep(0.05)
        self.problem(f"no answer for the final text within {ANSWER_TIMEOUT:.0f} s")
        return self.snapshot()

    def check_end_of_burst(self, snap: dict, final: int) -> dict:
        record = self.request(final)
        item = snap.get("item")
        if record.get("error"):
            self.problem(f"the final request failed: {record['error']}")
        if self.shown_text(snap):
            origin = self.request(item["request"]) if item and item.get("request") else None
            if origin is None or origin["tick"] != snap["tick"]:
                self.problem("the burst ended with ghost text made for other text "
                             f"(request {item and item.get('request')}, final text is tick {snap['tick']})")
            self.check_screen(snap, "end of burst")
            self.counts["fresh ghost texts"] += 1
            latency = (record.get("shown_ns", 0) - snap["last_key_ns"]) / 1e6
            self.latencies_ms.append(latency)
            self.note(f"ghost text {self.shown_text(snap)!r} {latency:.0f} ms after the last key")
        else:
            if item:
                self.problem("an item Tab would accept is not on screen")
            self.counts["empty answers"] += 1
            self.note("no ghost text (empty answer)")
        return snap

    def tab(self) -> None:
        """Tab TAB_AFTER seconds after the last key, through the user's mapping, and what it did."""
        time.sleep(TAB_AFTER)
        snap = self.lua("return speclsp_probe.snapshot_and_tab()")
        self.check_screen(snap, "when Tab was pressed")
        after = self.wait_for_tab(snap)
        accepts = self.lua("return #speclsp_probe.accepts")
        if accepts > snap["accepts"]:
            self.check_accept(self.lua("return speclsp_probe.accept(...)", accepts), snap)
            return
        cursor = self.offset(snap)
        inserted = after[cursor:len(after) - (len(snap["text"]) - cursor)]
        if not (after.startswith(snap["text"][:cursor]) and after.endswith(snap["text"][cursor:])
                and inserted.strip() == ""):
            self.problem(f"Tab with nothing accepted changed the text otherwise: {diff(snap['text'], after)}")
        if self.shown_text(snap):
            self.problem(f"ghost text {self.shown_text(snap)!r} was on screen but Tab did not accept it")
        self.counts["plain Tabs"] += 1
        self.note(f"Tab inserted {inserted!r} (no ghost text on screen)")

    def wait_for_tab(self, snap: dict, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = "\n".join(self.nvim.current.buffer[:])
            if text != snap["text"] or self.lua("return #speclsp_probe.accepts") > snap["accepts"]:
                return text
            time.sleep(0.02)
        self.problem("Tab changed nothing")
        return snap["text"]

    def wait_until_ready(self, lsp_log: Path) -> None:
        """The client is attached and the server reported its models loaded (speclsp/status 'ready')."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self.unblock()
            attached = self.lua("return #vim.lsp.get_clients({ name = 'speclsp', bufnr = 0 })")
            state = self.nvim.vars.get("speclsp_state")
            if attached and state == "ready":
                time.sleep(0.3)  # let a notice sent with 'ready' reach the screen
                self.unblock()
                return
            if state == "error":
                break
            time.sleep(0.1)
        text = lsp_log.read_text(encoding="utf-8", errors="replace") if lsp_log.exists() else "(no lsp.log)"
        pytest.fail(f"server not ready (state {self.nvim.vars.get('speclsp_state')!r})\n{tail(text, 20)}")

    def unblock(self) -> None:
        """A Press-ENTER prompt swallows the next key: report it, then dismiss it to go on."""
        mode = self.nvim.api.get_mode()
        if mode.get("blocking") or mode.get("mode", "").startswith("r"):
            self.nvim.input("<CR>")
            time.sleep(0.2)
            messages = self.nvim.command_output("messages")
            self.problem(f"a Press-ENTER prompt blocked typing (mode {mode}); messages: {tail(messages, 3)!r}")

    # -- checking --------------------------------------------------------------------------------

    def check_screen(self, snap: dict, when: str) -> None:
        """Ghost text on screen must be a continuation valid at the cursor of the current text, and
        the screen must read as the buffer will after accepting it."""
        shown = self.shown_text(snap)
        if not shown:
            return
        self.counts["screens checked"] += 1
        item = snap.get("item") or {}
        origin = self.request(item["request"]) if item.get("request") else None
        cursor = self.offset(snap)
        rest = continuation(origin, snap["text"], cursor) if origin else None
        if rest is None:
            self.problem(f"{when}: ghost text {shown!r} on screen was made for other text "
                         f"(request {item.get('request')}): {context(snap, cursor)}")
            return
        g = snap["ghost"]
        after = (snap["text"][:cursor] + rest + snap["text"][cursor:]).split("\n")
        expected = after[g["row"]:][:1 + len(g["lines"])]
        screen = on_screen(snap["screen"], expected[0], len(g["lines"]))
        if screen != [line.rstrip() for line in expected]:
            self.problem(f"{when}: the screen shows {screen!r}, accepting would give {expected!r}")

    def check_accept(self, rec: dict, snap: dict) -> None:
        """What Tab inserted must be the rest of a suggestion made for this text, at the cursor."""
        item = rec.get("item") or {}
        origin = self.request(item["request"]) if item.get("request") else None
        before = rec["before"]
        cursor = offset_in(before, rec["row"], rec["col"])
        rest = continuation(origin, before, cursor) if origin else None
        if rest is None:
            self.problem(f"Tab inserted text computed for other text: {diff(before, rec['after'])} "
                         f"(request {item.get('request')} was made at tick {origin and origin['tick']}, "
                         f"Tab at tick {rec['tick']})")
            return
        if rec["after"] != before[:cursor] + rest + before[cursor:]:
            self.problem("the buffer after accepting is not prefix + suggestion + suffix: "
                         f"{diff(before, rec['after'])}")
        elif origin["tick"] != rec["tick"]:
            self.note(f"accepted the rest of a suggestion typed through: {rest!r}")
        else:
            self.note(f"accepted {rest!r}")
        if snap["text"] == before and (snap.get("item") or {}).get("request") == item.get("request"):
            g = snap["ghost"]
            lines = rec["after"].split("\n")[g["row"]:][:1 + len(g["lines"])]
            screen = on_screen(snap["screen"], lines[0], len(g["lines"]))
            if screen != [line.rstrip() for line in lines]:
                self.problem(f"Tab inserted something else than the screen showed: {screen!r} vs {lines!r}")
        self.counts["accepted"] += 1

    @staticmethod
    def shown_text(snap: dict) -> str:
        g = snap.get("ghost")
        return (g["text"] + "".join("\n" + line for line in g["lines"])) if g else ""

    @staticmethod
    def offset(snap: dict) -> int:
        return offset_in(snap["text"], snap["row"], snap["col"])

    def problem(self, message: str) -> None:
        self.problems.append(f"[{self.place}] {message}")
        self.note(f"PROBLEM: {message}")

    def note(self, line: str) -> None:
        self.log.append(line)


# --- what a request's item means ------------------------------------------------------------------


def on_screen(rows: list[str], first_line: str, virtual_lines: int) -> list[str]:
    """The screen rows of a line showing ghost text, as text lines: the line (wrapped over as many
    rows as `first_line` takes) and the virtual lines below it; trailing blanks dropped."""
    width = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in first_line)
    wrapped = max(1, -(-width // SCREEN[0]))
    lines = ["".join(rows[:wrapped])] + rows[wrapped:wrapped + virtual_lines]
    return [line.rstrip() for line in lines]


def offset_in(text: str, row: int, byte_col: int) -> int:
    """Code-point offset of Neovim's (row, byte column) in `text`."""
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[:row]) + len(lines[row].encode()[:byte_col].decode())


def suggestion(request: dict) -> tuple[int, str] | None:
    """(cursor offset, text) of the first item of an answer, in the text the request was made for:
    the item must amount to an insertion at that cursor, whatever range it replaces."""
    if not request.get("items"):
        return None
    text, item, enc = request["text"], request["items"][0], request["encoding"]
    cursor = start = end = offset_at(text, request["line"], request["character"], enc)
    if item.get("range"):
        r = item["range"]
        start = offset_at(text, r["start"]["line"], r["start"]["character"], enc)
        end = offset_at(text, r["end"]["line"], r["end"]["character"], enc)
    inserted = inserted_by(text, cursor, start, end, item["insert_text"])
    return None if inserted is None else (cursor, inserted)


def continuation(request: dict, text: str, cursor: int) -> str | None:
    """What the request's item may insert at `cursor` of `text`: its suggestion when `text` is the
    text it was made for, or the rest of it when the start of the suggestion was typed since.
    None when the item was made for other text."""
    made = suggestion(request)
    if made is None:
        return None
    at, suggested = made
    asked = request["text"]
    typed = text[at:cursor]
    if cursor < at or text[:at] != asked[:at] or text[cursor:] != asked[at:]:
        return None
    if not suggested.startswith(typed) or len(suggested) == len(typed):
        return None
    return suggested[len(typed):]


def context(snap: dict, cursor: int) -> str:
    text = snap["text"]
    return f"text at the cursor {text[max(0, cursor - 40):cursor]!r}|{text[cursor:cursor + 20]!r}"


def diff(before: str, after: str) -> str:
    i = 0
    while i < min(len(before), len(after)) and before[i] == after[i]:
        i += 1
    j = 0
    while j < min(len(before), len(after)) - i and before[-1 - j] == after[-1 - j]:
        j += 1
    inserted, replaced = after[i:len(after) - j], before[i:len(before) - j]
    return f"{before[max(0, i - 30):i]!r} + inserted {inserted!r} (replacing {replaced!r})"


# --- the test -------------------------------------------------------------------------------------


def test_typing_in_neovim_with_the_readme_config(nvim_path, tmp_path, monkeypatch):
    assert DEMO_TARGET.exists(), "the embedded demo models are missing from this checkout"
    source = tmp_path / "orders.py"
    source.write_text(SOURCE.read_text(encoding="utf-8"), encoding="utf-8")
    init_lua = tmp_path / "init.lua"
    init_lua.write_text(readme_config(), encoding="utf-8")
    # Neovim's state (lsp.log, shada) stays in tmp_path; `speclsp` is this Python's console script;
    # an empty Hugging Face cache makes the server's defaults fall back to the embedded demo pair.
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    lsp_log = tmp_path / "xdg_state_home" / "nvim" / "lsp.log"

    t0 = time.monotonic()
    # -n: no swap file, or a stale one from an interrupted run blocks the next
    nvim = pynvim.attach("child", argv=[nvim_path, "-u", str(init_lua), "-i", "NONE", "-n", "--embed", "--headless"])
    nvim_pid = nvim.funcs.getpid()
    run = Run(nvim)
    tree: set[int] = set()
    try:
        nvim.ui_attach(*SCREEN, rgb=True)
        nvim.exec_lua(PROBE.read_text(encoding="utf-8"))
        watch_status(nvim)
        nvim.command(f"edit {source}")
        run.place = "start"
        run.wait_until_ready(lsp_log)
        t_ready = time.monotonic() - t0
        for place in PLACES:
            run.go(place)
            for step in place.steps:
                if isinstance(step, Type):
                    run.type(step.text, step.ms)
                elif isinstance(step, Through):
                    run.through(step)
                elif isinstance(step, Settle):
                    run.settle()
                else:
                    run.tab()
            run.leave()
        tree = descendants(nvim_pid)
    finally:
        tree |= descendants(nvim_pid)
        quit_nvim(nvim)
    left = wait_gone(tree | {nvim_pid}, SERVER_EXIT_GRACE)
    kill_tree(set(left))
    if left:
        run.place = "after quitting"
        run.problem(f"{len(left)} process(es) still running {SERVER_EXIT_GRACE:.0f} s after Neovim quit: {left}")
    errors = log_errors(lsp_log)
    if errors:
        run.place = "lsp.log"
        run.problem(f"{len(errors)} error line(s) in Neovim's lsp.log, e.g. {errors[:3]!r}")

    record_run(run, nvim_path, t_ready)
    assert run.counts["fresh ghost texts"] >= 3, f"too few ghost texts to prove anything: {run.counts}"
    assert run.counts["accepted"] >= 1, f"no ghost text was ever accepted: {run.counts}"
    assert not run.problems, "\n".join(run.problems)


# --- the README's check, on its own ----------------------------------------------------------------

# (line, cursor byte column, item: its client, range on the cursor's row as (start, end) byte
# columns or None, text) -> what the README's speclsp_rest says is left to insert, or None.
ITEM = "    return x + 1"
REST_CASES = [
    ("    return x", 12, ("speclsp", (0, 12), ITEM), ((0, 12), ITEM)),  # just made
    ("    return x +", 14, ("speclsp", (0, 12), ITEM), ((0, 14), ITEM)),  # typed through
    ("    return x + 1", 16, ("speclsp", (0, 12), ITEM), None),  # typed all of it: nothing left
    ("    return y", 12, ("speclsp", (0, 12), ITEM), None),  # typed something else
    ("    return ", 11, ("speclsp", (0, 12), ITEM), None),  # erased: the line is shorter than it was
    ("    return x", 5, ("speclsp", (0, 12), ITEM), None),  # the cursor went back
    ("print()", 6, ("speclsp", (0, 7), "print(x)"), ((0, 6), "print(x")),  # mid-line: up to the cursor
    ("print(x)", 7, ("speclsp", (0, 7), "print(x)"), None),
    ("print(y)", 6, ("speclsp", (0, 7), "print(x)"), None),  # the text after the cursor changed
    ("s = '€'", 8, ("speclsp", (0, 9), "s = '€€'"), ((0, 8), "s = '€€")),  # byte columns
    ("    return x", 12, ("other", None, "anything"), (None, "anything")),  # another server's item
]

REST_LUA = """
local line, col, item = ...
vim.o.virtualedit = 'onemore'  -- the cursor may sit after the last character, as in insert mode
vim.lsp.get_client_by_id = function(id) return { name = id } end
vim.api.nvim_buf_set_lines(0, 0, -1, true, { 'above', line })
vim.api.nvim_win_set_cursor(0, { 2, col })
%s
local r = item.range ~= vim.NIL and vim.range(0, 1, item.range[1], 1, item.range[2]) or nil
local range, text = speclsp_rest({ client_id = item.client, range = r, insert_text = item.text })
if text == nil then return vim.NIL end
assert(not range or (range.start_row == 1 and range.end_row == 1), 'the range left the cursor row')
return { range and { range.start_col, range.end_col } or vim.NIL, text }
"""


def test_the_readme_check_of_what_is_left_of_an_item(nvim_path):
    """The README's speclsp_rest, alone in a bare Neovim: it decides what Tab inserts and which
    ghost text is hidden, so every way a line can move on from its item is a row here."""
    config = readme_config()
    rest = config[config.index("local function speclsp_rest"):config.index("-- Hide a ghost text")]
    nvim = pynvim.attach("child", argv=[nvim_path, "-u", "NONE", "-i", "NONE", "-n", "--embed", "--headless"])
    try:
        for line, col, (client, span, text), expected in REST_CASES:
            item = {"client": client, "range": list(span) if span else None, "text": text}
            got = nvim.exec_lua(REST_LUA % rest, line, col, item)
            got = got and (got[0] and tuple(got[0]), got[1])
            assert got == expected, f"line {line!r}, cursor {col}, item {item}"
    finally:
        quit_nvim(nvim)


def watch_status(nvim) -> None:
    """speclsp/status into g:speclsp_state: a global handler, so the README's config stays as it is."""
    nvim.exec_lua("""
        vim.lsp.handlers['speclsp/status'] = function(_, status) vim.g.speclsp_state = status.state end""")


def log_errors(lsp_log: Path) -> list[str]:
    if not lsp_log.exists():
        return []
    lines = lsp_log.read_text(encoding="utf-8", errors="replace").splitlines()
    return [line for line in lines if "[ERROR]" in line or "Traceback" in line]


def wait_gone(pids: set[int], grace: float) -> list[int]:
    deadline = time.monotonic() + grace
    alive = [p for p in pids if is_alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if is_alive(p)]
    return alive


def quit_nvim(nvim) -> None:
    """:qa! closes the channel before it answers, so the error that follows is the expected one."""
    with contextlib.suppress(Exception):  # any transport error here means Neovim is gone
        nvim.command("qa!")
    with contextlib.suppress(Exception):
        nvim.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def record_run(run: Run, nvim_path: str, t_ready: float) -> None:
    """Print the transcript and keep it (artifacts/ unless asked to update docs/editor-runs/)."""
    version = subprocess.run([nvim_path, "--version"], capture_output=True, text=True).stdout
    lat = run.latencies_ms
    latency = (f"p50 {statistics.median(lat):.0f} ms, p95 {percentile(lat, 0.95):.0f} ms over {len(lat)} bursts"
               if lat else "no ghost text")
    text = "\n".join([
        "# Neovim typing harness (tests/editors/test_editor_neovim.py)",
        f"date:     {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"neovim:   {version.splitlines()[0] if version else '?'} (embedded, UI attached {SCREEN[0]}x{SCREEN[1]})",
        "config:   README.md's Neovim block, verbatim; server defaults (embedded demo models)",
        f"machine:  {os.cpu_count()} CPU cores",
        f"ready:    {t_ready:.1f} s after start",
        f"places:   {len(PLACES)}; {', '.join(f'{k}: {v}' for k, v in run.counts.items())}",
        f"latency:  last key to ghost text {latency} (reported, not asserted)",
        f"problems: {len(run.problems)}",
        *(f"  {p}" for p in run.problems),
        "",
        *run.log,
        "",
    ])
    print("\n" + text)
    path = run_record_path("neovim.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
