"""Docs that must match the code."""

import json
import re
from pathlib import Path

from lsp_server.config import CAMEL_KEYS, FIELDS, SettingField

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [k for k in CAMEL_KEYS if f"`{k}`" not in text]
    assert not missing


JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _settings_row(f: SettingField) -> str:
    """configuration.md's row for a setting: key, JSON type, default, allowed values, meaning."""
    if f.within:
        values = f"{f.within[0]}–{f.within[1]}"
    elif f.choices:
        values = ", ".join(f"`{c}`" for c in f.choices)
    else:
        values = f.expects() if f.pattern else ""
    return f"| `{f.key}` | {JSON_TYPES[f.kind]} | `{json.dumps(f.default)}` | {values} | {f.doc} |"


def test_the_settings_table_is_the_codes():
    """configuration.md's table says what lsp_server/config.py declares, row for row (the message
    holds the table to paste)."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if re.match(r"\| `[A-Za-z]+` \| (string|integer|number|boolean) ", line)]
    expected = [_settings_row(f) for f in FIELDS.values()]
    assert rows == expected, "\n".join(expected)


def test_architecture_maps_every_folder_and_every_file_says_its_part():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = [p for p in (ROOT / "lsp_server").rglob("*.py") if "__pycache__" not in p.parts and "samples" not in p.parts]
    folders = {p.parent.relative_to(ROOT).as_posix() for p in modules}
    assert not [f for f in folders if f"`{f}/`" not in text]
    unnamed = [str(p.relative_to(ROOT)) for p in modules if p.name != "__main__.py" and f"`{p.name}`" not in text]
    assert not unnamed
    first_lines = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8").split("\n", 1)[0] for p in modules}
    assert not [name for name, line in first_lines.items() if not (line.startswith('"""') and len(line) > 20)]


def test_the_neovim_config_in_the_docs_is_the_readmes():
    """docs/editors.md repeats the README's Neovim config after `enable(true)` word for word: that
    part keeps stale suggestions off the screen and out of the buffer (the typing harness runs it)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\*\*Neovim 0\.12\*\*.*?```lua\n(.*?)```", readme, re.S).group(1)
    guard = block[block.index("vim.lsp.inline_completion.enable(true)"):]
    assert "speclsp_rest" in guard and "on_accept" in guard
    assert guard in (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
