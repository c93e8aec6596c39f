"""The held-out corpus reader: the list's format, and the files it hands the measurements."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

from lsp_server.bench import heldout


def test_the_list_is_a_list_of_stdlib_relative_paths():
    """The training script writes a plain JSON list; the reader relies on no other shape."""
    names = json.loads(heldout.HELDOUT_LIST.read_text(encoding="utf-8"))
    assert isinstance(names, list) and names
    assert all(isinstance(n, str) and n.endswith(".py") and not n.startswith("/") for n in names)
    assert heldout.heldout_names() == names


def test_texts_are_the_listed_files_found_here_in_list_order():
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = heldout.heldout_texts()
    expected = [n for n in heldout.heldout_names() if (stdlib / n).exists()]
    assert [name for name, _ in texts] == expected and expected
    name, text = texts[0]
    assert text == (stdlib / name).read_text(encoding="utf-8")
    assert heldout.heldout_text() == "\n".join(t for _, t in texts)


def test_heldout_file_is_the_first_listed_file_long_enough():
    texts = heldout.heldout_texts()
    path = heldout.heldout_file(12000)
    first_long = next(name for name, text in texts if len(text) >= 12000)
    assert path.as_posix().endswith("/" + first_long)
    with pytest.raises(FileNotFoundError):
        heldout.heldout_file(max(len(t) for _, t in texts) + 1)
