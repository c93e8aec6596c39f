"""llama.cpp files for the tests, fetched or built by scripts under scripts/ into the git-ignored .tools/.

The scripts follow install_neovim.sh's contract: exit 0 done (reused when already there), 2 impossible
on this machine (PyPI unreachable, no compiler), anything else a bug. Only 2 skips, with the script's
reason; anything else fails the test, so a missing cache is never a silent skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"


def run_script(name: str, timeout: int) -> Path:
    """Run scripts/`name` and return the path it prints last on stdout."""
    env = dict(os.environ, PYTHON=os.environ.get("PYTHON", sys.executable))
    proc = subprocess.run(["bash", str(SCRIPTS / name)], capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode == 2:  # the script's "cannot be done on this machine"
        reason = [line for line in proc.stderr.splitlines() if "unavailable here" in line] or proc.stderr.splitlines()[-1:]
        pytest.skip(f"{name}: {reason[-1] if reason else 'unavailable here'}")
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


def vocab_dir() -> Path:
    """.tools/llama-vocab: the LLaMA SentencePiece vocabulary as GGUF, with its test vectors."""
    return run_script("fetch_llama_vocab.sh", timeout=900)
