"""`speclsp doctor`: what this machine offers and which models would be used, as JSON."""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata

from .. import __version__
from ..config import Settings, settings_to_lsp
from ..engine.api import DEFAULT_DRAFT, DEFAULT_TARGET


def _versions() -> dict:
    out = {"speclsp": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "transformers", "tokenizers", "pygls", "lsprotocol", "safetensors", "triton"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _device() -> dict:
    import torch

    info: dict = {"cuda_available": torch.cuda.is_available(), "hip": getattr(torch.version, "hip", None),
                  "cuda": torch.version.cuda, "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        info.update(gpu=torch.cuda.get_device_name(), gpu_free_gb=round(free / 1e9, 2),
                    gpu_total_gb=round(total / 1e9, 2))
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["ram_gb"] = round(pages * size / 1e9, 2)
    except (ValueError, OSError, AttributeError):
        pass
    return info


def report(settings: Settings, load: bool = True) -> dict:
    from ..engine.models import ModelError, demo_paths, local_snapshot, resolve_sources

    target, draft, notices = resolve_sources(settings)
    out = {"versions": _versions(), "device": _device(), "settings": settings_to_lsp(settings),
           "found": {DEFAULT_TARGET: local_snapshot(DEFAULT_TARGET), DEFAULT_DRAFT: local_snapshot(DEFAULT_DRAFT),
                     "demo": [str(p) for p in demo_paths() if (p / "config.json").exists()]},
           "would_use": {"target": target, "draft": draft}, "notices": notices}
    if load:
        from ..service import CompletionService

        service = CompletionService(settings)
        t0 = time.perf_counter()
        try:
            out["loaded"] = service.load()
            out["startup_ms"] = round((time.perf_counter() - t0) * 1e3)
        except ModelError as e:
            out["error"] = str(e)
    return out
