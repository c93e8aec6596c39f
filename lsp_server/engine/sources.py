"""Where models come from: a local directory or a Hugging Face id in the local cache, never the network.

No torch here: the remote backend loads only a tokenizer, and finds it the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from .api import DEFAULT_DRAFT, DEFAULT_TARGET, ModelChoice, ModelError

DEMO_DIR = Path(__file__).resolve().parent.parent / "models" / "demo"


def demo_paths() -> tuple[Path, Path]:
    return DEMO_DIR / "target", DEMO_DIR / "draft"


def _cached_snapshot(repo_id: str) -> str:
    """The directory of `repo_id` in the Hugging Face cache; raises when it is not there or not an id."""
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, local_files_only=True, allow_patterns=["*.json", "*.safetensors", "*.model"])


def local_snapshot(repo_id: str) -> str | None:
    """The directory of `repo_id` in the Hugging Face cache, without touching the network."""
    try:
        return _cached_snapshot(repo_id)
    except Exception:
        return None


def looks_like_path(value: str) -> bool:
    """Tell a directory from a Hugging Face id when neither is found.

    Hub ids are `name` or `owner/name` and never start with '.', '/' or '~', so a value that does,
    or that holds a backslash or more than one '/', is meant as a directory. A relative directory
    with a single slash reads as an id: write it `./models/x`.
    """
    return value.startswith((".", "/", "~")) or os.path.isabs(value) or "\\" in value or value.count("/") > 1


def model_dir(src: str) -> str:
    """The local directory holding model `src` (a directory, or an id in the Hugging Face cache)."""
    path = Path(src).expanduser()
    if path.is_dir():
        return str(path)
    if looks_like_path(src) or path.exists():
        where = "" if str(path.resolve()) == src else f" ({path.resolve()})"
        state = "is a file, not a model directory" if path.exists() else "does not exist"
        raise ModelError(f"directory {src}{where} {state}; set speclsp.target/draft to a model "
                         "directory or a Hugging Face id")
    try:
        return _cached_snapshot(src)
    except ValueError as e:  # the hub's id syntax check
        raise ModelError(f"{src!r} is not a directory and not a Hugging Face id (owner/name); set "
                         "speclsp.target/draft to a model directory or a Hugging Face id") from e
    except Exception as e:
        raise ModelError(f"{src} is not in the local Hugging Face cache, nor a directory here: run "
                         f"`speclsp pull {src}` to download it (the server never downloads), or set "
                         "speclsp.target/draft to a model directory") from e


def resolve_sources(settings: ModelChoice) -> tuple[str, str | None, list[str]]:
    """Which target and draft to load, and notices to show once (e.g. 'using the demo pair')."""
    notices: list[str] = []
    target, draft = settings.target, settings.draft
    if not target:
        target = local_snapshot(DEFAULT_TARGET)
        if target is None:
            target = str(demo_paths()[0])
            notices.append(
                "CodeLlama-7b is not on this machine: using the embedded demo models (small, for trying "
                "speclsp out). Run `speclsp pull` to download the real pair, or set speclsp.target/draft "
                "to a model id or directory.")
            if not draft:
                draft = str(demo_paths()[1])
    if not draft:
        draft = local_snapshot(DEFAULT_DRAFT)
        if draft is None:
            notices.append("AMD-Llama-135m-code is not on this machine: completing without a draft model.")
    if draft == "none":
        draft = None
    return target, draft, notices


def explain(path: str, what: str, error: Exception) -> str:
    return f"cannot read the {what} in {path} ({type(error).__name__}: {str(error)[:200]}); check the directory"
