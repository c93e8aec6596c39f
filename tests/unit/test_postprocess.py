"""Line rules and filters: a table of cases (cursor context, generated text, shown text)."""

import pytest

from lsp_server.postprocess import cut_point, postprocess
from lsp_server.prompt import CursorContext

CASES = [
    # single line: text after the cursor on its line
    ("x = foo(", ")\n", "a, b)\nprint(x)", "a, b"),
    ("x = [", "]\n", "1, 2]", "1, 2"),
    # block from a blank indented line: stop at dedent
    ("def f():\n    ", "\n", "a = 1\n    return a\nprint(f())\n", "a = 1\n    return a"),
    # block from the end of a header line: the body only
    ("def f():", "\n\nx = 1\n", "\n    return 1\n\ndef g():\n    pass\n", "\n    return 1"),
    # mid-line without colon: the line only, siblings are not ours
    ("x = 1 +", "\n", " 2\ny = 3\n", " 2"),
    # two blank lines end a block
    ("", "", "import os\n\n\nimport sys\n", "import os"),
    # repeated suffix lines are dropped
    ("def f():\n    ", "\n    return a\n", "a = 1\n    return a\n", "a = 1"),
    # broken multi-byte tail dropped, trailing spaces trimmed
    ("s = '", "'\n", "中文\ufffd", "中文"),
    ("", "", "x = 1   ", "x = 1   "),
    ("", "", "x = 1\n", "x = 1"),
]


@pytest.mark.parametrize("prefix,suffix,generated,shown", CASES)
def test_postprocess_table(prefix, suffix, generated, shown):
    assert postprocess(generated, CursorContext(prefix, suffix)) == shown


def test_cut_point_stops_once_a_dedent_is_known():
    ctx = CursorContext("def f():\n    ", "\n")
    assert cut_point("a = 1\n    b", ctx) is None
    assert cut_point("a = 1\n  ", ctx) is None  # only spaces so far: the indentation is not known
    assert cut_point("a = 1\nprint", ctx) == 5  # a dedent: no need to wait for the line to end
    assert cut_point("a = 1\n\n", ctx) is None  # one blank line is not the end of a block
    assert cut_point("a = 1\n\n\n", ctx) == 6


# a completion the time budget cut short: (prefix, suffix, generated so far, shown)
CUT_BY_TIME = [
    ("x = ", "\n", "1", ""),  # one token of an unknown number: nothing
    ("y = x", "\n", ".", ""),
    ("    if bad:\n        ", "\n", 'raise ValueError("in', "raise"),  # whole words only
    ("x = [", "]\n", "1, 2, 3", "1, 2,"),
    ("x = ", "\n", "total ", "total"),  # a space after it: the word was finished
    ("", "", "import os\nimport sy", "import os"),  # over lines: whole lines only
    ("def f():", "\n", "\n    return 1\n    x = ", "\n    return 1"),
    ("def f():", "\n", "\n    return", ""),
    ("s = '", "'\n", "中文 😀 tex", "中文 😀"),
]


@pytest.mark.parametrize("prefix,suffix,generated,shown", CUT_BY_TIME)
def test_a_completion_cut_by_time_ends_at_a_whole_word_or_line(prefix, suffix, generated, shown):
    ctx = CursorContext(prefix, suffix)
    assert postprocess(generated, ctx, cut_by_time=True) == shown
    assert postprocess(generated, ctx) == postprocess(generated, ctx, cut_by_time=False)  # a finished one is kept
