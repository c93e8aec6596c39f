"""Docs that must match the code."""

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
