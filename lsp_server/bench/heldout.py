"""The held-out corpus: standard-library files the demo pair never trained on, read from this machine.

scripts/train_demo_pair.py lists them in models/demo/heldout.json, a JSON list of paths relative to
the standard library; every measurement of the pair on unseen code (the CPU and GPU benchmarks, the
typing replay, scripts/eval_demo_pair.py) reads them through this module. Torch-free.
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

HELDOUT_LIST = Path(__file__).resolve().parent.parent / "models" / "demo" / "heldout.json"


def heldout_names() -> list[str]:
    """The listed relative paths, in the order the training script wrote them."""
    return json.loads(HELDOUT_LIST.read_text(encoding="utf-8"))


def heldout_paths() -> list[tuple[str, Path]]:
    """(relative path, path) of the listed files present in this interpreter's standard library,
    which differs between Python versions."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    return [(name, stdlib / name) for name in heldout_names() if (stdlib / name).exists()]


def read(path: Path) -> str:
    # Replaced rather than raised: a stray byte in another Python's copy of a file does not matter
    # to a measurement, and every listed file was UTF-8 when the pair was trained.
    return path.read_text(encoding="utf-8", errors="replace")


def heldout_texts() -> list[tuple[str, str]]:
    """(relative path, text) of each held-out file found here."""
    return [(name, read(path)) for name, path in heldout_paths()]


def heldout_text() -> str:
    """Every held-out file found here, joined by newlines: one long text to cut prompts from."""
    return "\n".join(text for _, text in heldout_texts())


def heldout_file(min_chars: int = 8000) -> Path:
    """The first held-out file of at least `min_chars` characters: long enough for a 2k-token context."""
    for _, path in heldout_paths():
        if len(read(path)) >= min_chars:
            return path
    raise FileNotFoundError("no held-out standard-library file of that size on this machine")
