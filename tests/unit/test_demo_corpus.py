"""scripts/demo_corpus.py: which Python files of an interpreter the demo pair may learn from.

A fake stdlib + site-packages tree (tests/fake_python_env.py) holds permissive, copyleft and
unlicensed packages, a package held out by its name's hash, and the junk a real one holds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import fake_python_env

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import demo_corpus  # noqa: E402


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    stdlib, site = fake_python_env.build(tmp_path_factory.mktemp("env"))
    return demo_corpus.scan_python_env(stdlib, [site])


def test_packages_are_grouped_with_their_licences(scan):
    got = {name: (p.root, p.permissive, p.heldout, p.files) for name, p in scan.packages.items()}
    assert got == {
        "stdlib.mymod": ("stdlib", True, False, 1),
        "stdlib.other": ("stdlib", True, False, 2),
        "alphapkg": ("site", True, False, 2),  # __init__ and again; the rest is junk or a copy
        "betapkg": ("site", False, False, 1),  # GPL: counted, never read
        "gammapkg": ("site", True, False, 1),  # egg-info: owned through top_level.txt
        "held12": ("site", True, True, 2),
        "unowned:loose": ("site", False, False, 1),  # no metadata: licence unknown
    }
    assert scan.packages["alphapkg"].licence == "MIT (License-Expression)"
    assert scan.packages["gammapkg"].licence == "BSD License (classifiers)"
    assert scan.packages["held12"].licence.startswith("Apache 2.0")
    assert demo_corpus.excluded_packages(scan).keys() == {"betapkg", "unowned:loose"}


def test_only_permissive_deduplicated_code_is_read(scan):
    files = sorted((f.root, f.relpath, f.package) for f in scan.files)
    # again.py and util.py are the same text: the first in path order is kept
    assert files == [("site", "alphapkg/__init__.py", "alphapkg"), ("site", "alphapkg/again.py", "alphapkg"),
                     ("site", "gammapkg/__init__.py", "gammapkg"), ("site", "held12/__init__.py", "held12"),
                     ("site", "held12/more.py", "held12"), ("stdlib", "mymod.py", "stdlib.mymod"),
                     ("stdlib", "other/__init__.py", "stdlib.other"), ("stdlib", "other/core.py", "stdlib.other")]
    assert scan.skipped == {"duplicate content": 1, "generated": 1, "over 1 MB": 1, "not UTF-8": 1}
    assert all(f.text.startswith("# ") or f.text == "" for f in scan.files)


@pytest.mark.parametrize("metadata, permissive", [
    ("License-Expression: BSD-3-Clause AND 0BSD AND MIT AND Zlib AND CC0-1.0", True),
    ("License-Expression: Apache-2.0 OR GPL-2.0-only", True),
    ("License-Expression: GPL-2.0-only AND (Apache-2.0 OR MIT)", False),
    ("License-Expression: MPL-2.0 AND MIT", False),
    ("License-Expression: LGPL-3.0-or-later", False),
    ("License-Expression: Apache-2.0 WITH LLVM-exception", True),
    ("License-Expression: LicenseRef-Proprietary", False),
    ("License: GPL\nClassifier: License :: OSI Approved :: MIT License", True),  # classifiers first
    ("Classifier: License :: OSI Approved :: BSD License\nClassifier: License :: OSI Approved :: "
     "GNU Affero General Public License v3", False),
    ("Classifier: License :: Other/Proprietary License", False),
    ("Classifier: License :: OSI Approved", False),
    ("License: 3-Clause BSD License", True),
    ("License: Copyright (c) 2005, the authors.\n        All rights reserved.\n        Redistribution and use in "
     "source and binary forms, with or without modification, are permitted", True),
    ("License: UNKNOWN", False),
    ("Summary: no licence at all", False),
])
def test_licences_are_read_from_metadata(metadata, permissive):
    licence = demo_corpus.licence_of(f"Metadata-Version: 2.1\nName: x\n{metadata}\n\nBody: GPL\n")
    assert licence.permissive is permissive, licence


def test_the_heldout_split_depends_only_on_the_name():
    assert demo_corpus.is_heldout_package("held12") and not demo_corpus.is_heldout_package("alphapkg")
    names = [f"package{i}" for i in range(2000)]
    share = sum(map(demo_corpus.is_heldout_package, names)) / len(names)
    assert 0.03 < share < 0.07  # one in twenty
