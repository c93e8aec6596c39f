"""What the real-editor tests share: finding and ending a process tree, log tails, where runs go."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO_TARGET = REPO / "lsp_server" / "models" / "demo" / "target" / "config.json"
# Transcripts of editor runs go to the git-ignored artifacts/ folder, so a test run (CI included)
# leaves the tree clean; with SPECLSP_UPDATE_EDITOR_RUNS=1 they replace the ones docs/ points to.
UPDATE_RUNS_VAR = "SPECLSP_UPDATE_EDITOR_RUNS"

# The file every editor test types into: the cursor goes to the end of the indented empty line
# inside fibonacci() (line 6, 1-based).
SOURCE = (
    "import math\n"
    "\n"
    "\n"
    "def fibonacci(n):\n"
    '    """Return the n-th Fibonacci number."""\n'
    "    \n"
)


def descendants(pid: int) -> set[int]:
    """Every process below pid, from /proc (the language server and anything it started)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found

def kill_tree(pids: set[int], grace: float = 3.0) -> None:
    """Give the processes `grace` seconds to exit on their own (editors shut their servers down when
    they quit), then SIGTERM, then SIGKILL, each followed by the same wait."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        alive = [p for p in pids if is_alive(p)]
        for p in alive if sig else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, sig)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            alive = [p for p in alive if is_alive(p)]
            time.sleep(0.05)

def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead, only waiting for its parent to reap it

def run_record_path(name: str) -> Path:
    """Where an editor test writes the transcript `name` of its run."""
    folder = "docs" if os.environ.get(UPDATE_RUNS_VAR) == "1" else "artifacts"
    return REPO / folder / "editor-runs" / name


def inserted_by(text: str, cursor: int, start: int, end: int, new_text: str) -> str | None:
    """What replacing text[start:end] (code-point offsets) with `new_text` inserts at `cursor`, or
    None when that edit is not an insertion at the cursor. An inline completion item may replace
    more than the cursor position (speclsp's replace the cursor line); this is what the user gets."""
    new = text[:start] + new_text + text[end:]
    grown = len(new) - len(text)
    if grown <= 0 or new[:cursor] != text[:cursor] or new[cursor + grown:] != text[cursor:]:
        return None
    return new[cursor:cursor + grown]


def tail(text: str, n: int) -> str:
    return "\n".join(text.strip().splitlines()[-n:])
