"""Shared fixtures: a tiny model pair in Hugging Face layout, built once per test session."""

from __future__ import annotations

import pytest

from tests.fixtures import build_pair


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
