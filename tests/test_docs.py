"""Docs that must match the code."""

import re
from pathlib import Path

from lsp_server.config import CAMEL_KEYS

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [k for k in CAMEL_KEYS if f"`{k}`" not in text]
    assert not missing


def test_architecture_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = [p for p in (ROOT / "lsp_server").rglob("*.py") if p.name != "__init__.py"]
    missing = [str(p.relative_to(ROOT)) for p in modules if p.name not in text]
    assert not missing


def test_the_neovim_config_in_the_docs_is_the_readmes():
    """docs/editors.md repeats the README's Neovim config after `enable(true)` word for word: that
    part keeps stale suggestions off the screen and out of the buffer (the typing harness runs it)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\*\*Neovim 0\.12\*\*.*?```lua\n(.*?)```", readme, re.S).group(1)
    guard = block[block.index("vim.lsp.inline_completion.enable(true)"):]
    assert "speclsp_rest" in guard and "on_accept" in guard
    assert guard in (ROOT / "docs" / "editors.md").read_text(encoding="utf-8")
