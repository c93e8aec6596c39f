"""Where models are looked for, and what the user is told when they are not there.

Loading never touches the network: a directory is read as is, a Hugging Face id only from the
local cache. The network is cut off in these tests (name lookups and connects raise), so a call
that tried to reach the Hub shows up as a recorded attempt, not as a slow failure.
"""

from __future__ import annotations

import shutil
import socket

import pytest

from lsp_server.config import Settings
from lsp_server.engine.models import ModelError, load_models


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Every name lookup or connect is recorded and refused."""
    attempts: list = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network access attempted while loading models")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def load(target: str, draft: str = "none"):
    return load_models(Settings(target=target, draft=draft, device="cpu", dtype="float32"))


@pytest.mark.parametrize("value", ["{tmp}/no-such-model", "./no-such-model", "../no-such/model",
                                   "~/no-such-speclsp-model", "models/no-such/model"])
def test_a_directory_that_does_not_exist_is_named_as_one(value, tmp_path, no_network):
    with pytest.raises(ModelError) as error:
        load(value.format(tmp=tmp_path))
    message = str(error.value)
    assert "does not exist" in message and "no-such" in message, message
    assert "Repo id" not in message and "repo_id" not in message, message
    assert no_network == []


def test_a_file_given_as_model_directory_is_named_as_a_file(pair, no_network):
    with pytest.raises(ModelError) as error:
        load(str(pair[0] / "config.json"))
    assert "is a file, not a model directory" in str(error.value), str(error.value)


def test_an_uncached_hub_id_fails_at_once_saying_how_to_get_it(no_network):
    with pytest.raises(ModelError) as error:
        load("speclsp-tests/no-such-model")
    message = str(error.value)
    assert "speclsp pull speclsp-tests/no-such-model" in message, message
    assert "local Hugging Face cache" in message, message
    assert no_network == []


def test_an_invalid_hub_id_is_named_as_neither_directory_nor_id(no_network):
    with pytest.raises(ModelError) as error:
        load("not a model")
    assert "not a directory" in str(error.value) and "Hugging Face id" in str(error.value)
    assert no_network == []


def test_a_cached_hub_id_loads_from_the_cache_without_the_network(pair, tmp_path, monkeypatch, no_network):
    """The Hub's cache layout: models--owner--name/{refs/main, snapshots/<commit>/files}."""
    from huggingface_hub import constants

    commit = "0" * 40
    for name, src in (("tiny-target", pair[0]), ("tiny-draft", pair[1])):
        repo = tmp_path / "hub" / f"models--speclsp-tests--{name}"
        shutil.copytree(src, repo / "snapshots" / commit)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    models = load("speclsp-tests/tiny-target", "speclsp-tests/tiny-draft")
    assert models.info["target"] == "speclsp-tests/tiny-target"
    assert models.info["draft"] == "speclsp-tests/tiny-draft" and models.draft is not None
    assert no_network == []


def test_a_missing_draft_directory_is_a_notice_not_a_failure(pair, tmp_path, no_network):
    models = load(str(pair[0]), str(tmp_path / "gone"))
    assert models.draft is None
    assert any("does not exist" in n for n in models.notices), models.notices
