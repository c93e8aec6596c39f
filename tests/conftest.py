"""Shared fixtures: a tiny model pair in Hugging Face layout, built once per test session."""

from __future__ import annotations

import os

import pytest
import torch

# Tiny models run fastest on one thread, and CI machines have two cores shared with the server
# processes the end-to-end tests start: more threads only contend. Subprocesses inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

from tests.fixtures import build_pair  # noqa: E402  (after the thread settings above)


@pytest.fixture(scope="session")
def pair(tmp_path_factory):
    """(target_dir, draft_dir) of the tiny pair: draft vocab V, target vocab V + 4 FIM specials."""
    return build_pair(tmp_path_factory.mktemp("pair"))


@pytest.fixture(scope="session")
def loaded(pair):
    """The tiny pair loaded through the product's own loader, on the CPU in float32."""
    from lsp_server.config import Settings
    from lsp_server.engine.models import load_models

    return load_models(Settings(target=str(pair[0]), draft=str(pair[1]), device="cpu", dtype="float32"))
