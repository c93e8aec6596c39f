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


def test_package_entries_are_found_under_their_root_on_this_machine(tmp_path):
    """Entries of whole held-out packages name a root; the file is looked for in each directory of
    that root, first match wins, and files absent here are left out."""
    stdlib, site_a, site_b = tmp_path / "lib", tmp_path / "site_a", tmp_path / "site_b"
    for path in (stdlib / "json/x.py", site_a / "pkg/a.py", site_b / "pkg/a.py", site_b / "pkg/b.py"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {path.relative_to(tmp_path)} é\n", encoding="utf-8")
    listing = tmp_path / "heldout.json"
    listing.write_text(json.dumps([
        "json/x.py",
        {"root": "site", "path": "pkg/a.py", "package": "pkg"},
        {"root": "site", "path": "pkg/b.py", "package": "pkg"},
        {"root": "site", "path": "pkg/gone.py", "package": "pkg"},
        {"root": "stdlib", "path": "json/x.py", "package": "stdlib.json"},
    ]), encoding="utf-8")
    roots = {"stdlib": [stdlib], "site": [site_a, site_b]}
    assert heldout.heldout_names(listing) == ["json/x.py", "site:pkg/a.py", "site:pkg/b.py", "site:pkg/gone.py",
                                              "json/x.py"]
    found = heldout.heldout_paths(listing, roots)
    assert found == [("json/x.py", stdlib / "json/x.py"), ("site:pkg/a.py", site_a / "pkg/a.py"),
                     ("site:pkg/b.py", site_b / "pkg/b.py"), ("json/x.py", stdlib / "json/x.py")]
    assert heldout.read(found[1][1]) == "# site_a/pkg/a.py é\n"


def test_this_interpreters_roots_are_its_stdlib_and_site_packages():
    roots = heldout.root_dirs()
    assert roots["stdlib"] == [Path(sysconfig.get_paths()["stdlib"])]
    assert Path(sysconfig.get_paths()["purelib"]) in roots["site"] and len(set(roots["site"])) == len(roots["site"])


def test_texts_of_another_listing(tmp_path):
    """The quality suite's --heldout: the files of any listing, stdlib and site entries alike."""
    listing = tmp_path / "heldout.json"
    listing.write_text(json.dumps(["json/decoder.py", {"root": "stdlib", "path": "json/encoder.py", "package": "json"},
                                   "no/such/file.py"]))
    assert [name for name, _ in heldout.heldout_texts(listing)] == ["json/decoder.py", "json/encoder.py"]
