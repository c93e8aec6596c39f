"""The VS Code extension contributes every server setting with the server's default and range.

A setting missing from package.json cannot be set from VS Code's settings UI, and a wider range
there lets a user pick a value the server then refuses. The extension reads its list of server
settings from package.json, so a key there that the server does not know would be reported as
unknown on every start.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp_server.config import CAMEL_KEYS, CLIENT_KEYS, FIELDS, Settings, settings_from_lsp

PACKAGE = Path(__file__).resolve().parents[2] / "vscode-client" / "package.json"
CONTRIBUTED = json.loads(PACKAGE.read_text(encoding="utf-8"))["contributes"]["configuration"]["properties"]
JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


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


@pytest.mark.parametrize("key", CAMEL_KEYS)
def test_each_server_setting_is_contributed_with_its_type_rule_and_a_description(key):
    prop, f = CONTRIBUTED[f"speclsp.{key}"], FIELDS[key]
    assert prop["type"] == JSON_TYPES[f.kind]
    assert (prop.get("minimum"), prop.get("maximum")) == (f.within or (None, None))
    assert prop.get("enum") == (list(f.choices) if f.choices else None)
    assert prop.get("pattern") == (f.pattern.pattern if f.pattern else None)
    assert prop.get("description") or prop.get("markdownDescription")


def test_every_contributed_setting_is_the_servers_or_the_clients():
    """The extension sends the contributed keys outside the client's own sections to the server."""
    keys = [name.removeprefix("speclsp.") for name in CONTRIBUTED]
    assert all(name.startswith("speclsp.") for name in CONTRIBUTED)
    assert [k for k in keys if k not in CAMEL_KEYS and k.split(".")[0] not in CLIENT_KEYS] == []
