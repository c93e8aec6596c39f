"""The held-out corpus: files the demo pair never trained on, read from this machine.

scripts/train_demo_pair.py lists them in models/demo/heldout.json, a JSON list whose entries are
either a path relative to the standard library (``"json/decoder.py"``) or, when whole packages are
held out, ``{"root": "stdlib" | "site", "path": ..., "package": ...}`` with the path relative to the
standard library or to a site-packages directory. Every measurement of the pair on unseen code (the
CPU and GPU benchmarks, the typing replay, the quality suite, scripts/eval_demo_pair.py) reads them
through this module, finding each listed file wherever this interpreter keeps it. Torch-free.
"""

from __future__ import annotations

import json
import site
import sysconfig
from pathlib import Path

HELDOUT_LIST = Path(__file__).resolve().parent.parent / "models" / "demo" / "heldout.json"


def heldout_entries(listing: Path | None = None) -> list[tuple[str, str]]:
    """(root, relative path) of every listed file, in the order the training script wrote them."""
    entries = json.loads((listing or HELDOUT_LIST).read_text(encoding="utf-8"))
    return [("stdlib", e) if isinstance(e, str) else (e["root"], e["path"]) for e in entries]


def heldout_names(listing: Path | None = None) -> list[str]:
    """The listed files' names: the stdlib-relative path, or ``site:<path>`` for site-packages."""
    return [path if root == "stdlib" else f"{root}:{path}" for root, path in heldout_entries(listing)]


def root_dirs() -> dict[str, list[Path]]:
    """Where this interpreter keeps each root: its standard library and its site-packages directories."""
    paths = sysconfig.get_paths()
    sites = [Path(p) for p in dict.fromkeys([paths["purelib"], paths["platlib"], *site.getsitepackages()])]
    return {"stdlib": [Path(paths["stdlib"])], "site": sites}


def heldout_paths(listing: Path | None = None, roots: dict[str, list[Path]] | None = None) -> list[tuple[str, Path]]:
    """(name, path) of the listed files present here: the first directory of its root holding it.
    What is present differs between Python versions and installed packages."""
    roots = roots or root_dirs()
    found = []
    for name, (root, path) in zip(heldout_names(listing), heldout_entries(listing), strict=True):
        where = next((d / path for d in roots.get(root, []) if (d / path).is_file()), None)
        if where is not None:
            found.append((name, where))
    return found


def read(path: Path) -> str:
    # Replaced rather than raised: a stray byte in another Python's copy of a file does not matter
    # to a measurement, and every listed file was UTF-8 when the pair was trained.
    return path.read_text(encoding="utf-8", errors="replace")


def heldout_texts(listing: Path | None = None) -> list[tuple[str, str]]:
    """(name, text) of each held-out file found here (of the demo pair's listing, or `listing`)."""
    return [(name, read(path)) for name, path in heldout_paths(listing)]


def heldout_text() -> str:
    """Every held-out file found here, joined by newlines: one long text to cut prompts from."""
    return "\n".join(text for _, text in heldout_texts())


def heldout_file(min_chars: int = 8000) -> Path:
    """The first held-out file of at least `min_chars` characters: long enough for a 2k-token context."""
    for _, path in heldout_paths():
        if len(read(path)) >= min_chars:
            return path
    raise FileNotFoundError("no held-out file of that size on this machine")
