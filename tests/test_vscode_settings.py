"""The VS Code extension contributes every server setting with the server's default and range.

A setting missing from package.json cannot be set from VS Code's settings UI, and a wider range
there lets a user pick a value the server then refuses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_server.config import CAMEL_KEYS, FIELDS, Settings, settings_from_lsp

PACKAGE = Path(__file__).resolve().parent.parent / "vscode-client" / "package.json"
CONTRIBUTED = json.loads(PACKAGE.read_text(encoding="utf-8"))["contributes"]["configuration"]["properties"]


@pytest.mark.parametrize("key", CAMEL_KEYS)
def test_each_server_setting_is_contributed_with_its_default(key):
    prop = CONTRIBUTED.get(f"speclsp.{key}")
    assert prop is not None, f"speclsp.{key} is not in package.json"
    assert prop["default"] == getattr(Settings(), FIELDS[key].attr)


@pytest.mark.parametrize("key", [k for k in CAMEL_KEYS if "minimum" in CONTRIBUTED.get(f"speclsp.{k}", {})])
def test_contributed_ranges_are_the_servers(key):
    prop = CONTRIBUTED[f"speclsp.{key}"]
    lo, hi = prop["minimum"], prop["maximum"]
    step = 1 if prop["type"] == "integer" else 0.01
    accepted = lambda value: not settings_from_lsp({key: value})[1]  # noqa: E731
    assert accepted(lo) and accepted(hi)
    assert not accepted(lo - step) and not accepted(hi + step)


@pytest.mark.parametrize("key", [k for k in CAMEL_KEYS if "enum" in CONTRIBUTED.get(f"speclsp.{k}", {})])
def test_contributed_choices_are_the_servers(key):
    for choice in CONTRIBUTED[f"speclsp.{key}"]["enum"]:
        assert not settings_from_lsp({key: choice})[1], choice
    assert settings_from_lsp({key: "surely-not-a-choice"})[1]
