"""Stop rules and filters: tables of cases (cursor context, generated text, shown text), and the
promise that stopping decoding where `cut_point` fires shows what cutting the whole text shows."""

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lsp_server.postprocess import cut_point, make_stop, postprocess
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
    # a line inside a bracket or a string the suggestion opened continues its statement
    ("    x = ", "\n", "bar(\n        a,\n    )\n    y = 1\n", "bar(\n        a,\n    )"),
    ("def f():\n    ", "\n", '"""Return the\nvalue.\n    """\n    return x\n\n\n', '"""Return the\nvalue.\n    """\n    return x'),
    # one opened before the cursor does not: the block still ends
    ("    foo(a,\n        ", "\n", "b,\nx = 1\n", "b,"),
    # a block stops at the code after the cursor, which the model has reached
    ("def f():\n    ", "\n    return a\n", "a = 1\n    b = 2\n    return a\n    c = 3", "a = 1\n    b = 2"),
    # degenerate repetition: cut before it starts, the first copy kept when it reads as code
    ("    ", "\n", "pass\n    pass\n    pass\n    pass\n", "pass"),
    ("x = ", "\n", "_LOCAL_REQUE_LOCAL_REQUE_LOCAL_REQUE", ""),
    ("x = self.", "\n", "a.a.a.a.a.a", "a"),  # ".a" four times from the cursor line's "."
    ("名字 = ", "\n", "'值' + 数据数据数据数据", "'值' + "),
]

# balance: what the suggestion opens it closes, or it is cut before the opening it left open
BALANCE = [
    # single line: the line and its rest were balanced and stay so
    ("x = foo(", ")\n", "a, b", "a, b"),
    ("x = foo(", ")\n", "a, [b", "a,"),
    ("x = foo(", ")\n", "a, b))", "a, b"),  # a closer the rest of the line already has
    ("x = foo(", ")\n", "a  # (", "a"),  # a comment would swallow the line's rest
    ('print("hello', '")\n', ' world")', " world"),  # inside a string the rest closes
    ("x = f'{d[", "]}'\n", "'key'", "'key'"),
    ("x = [", "]\n", "'中文 (😀', 2", "'中文 (😀', 2"),  # brackets in a string do not count
    ("x = [", "]\n", "'中文', (😀", "'中文',"),
    ("if (a and", ") or c:\n", " (b or d", ""),
    # a line already open before the cursor: its rest cannot tell, the text alone is judged
    ("x = foo(a, ", " # note\n", "b)", "b)"),
    # block: it may close what the line opened, must not leave open what it opened
    ("x = foo(a, ", "\n", "b)\nprint(x)", "b)"),
    ("x = foo(a, ", "\n", "b, [c", "b,"),
    ("x = foo(a, ", "\n", "b))", "b)"),  # closing what was never open: cut and stopped there
    ("    ", "\n", "x = 'abc", "x ="),
    ("    ", "\n", "x = 1  # a comment (", "x = 1  # a comment ("),
    ("def f():\n    ", "\n", "a = 1\n    b = foo(1,\n        2", "a = 1"),  # whole lines kept
    ('def f():\n    """Return the', "\n", " value's name.", " value's name."),  # text inside a docstring
    ("def f():\n    ", "\n", '"""Return the\n    value', ""),
    ("x = ", "\n", "f'{a + (b'", ""),
    # inside a comment everything is text, to the line's end
    ("    '{'        #  0x7B ->", "\n", " LEFT CURLY (BRACKET", " LEFT CURLY (BRACKET"),
    ("x = f(a)  # co", "mment\n", "mpute (the", "mpute (the"),
]


@pytest.mark.parametrize("prefix,suffix,generated,shown", CASES)
def test_postprocess_table(prefix, suffix, generated, shown):
    assert postprocess(generated, CursorContext(prefix, suffix)) == shown


@pytest.mark.parametrize("prefix,suffix,generated,shown", BALANCE)
def test_a_suggestion_closes_what_it_opens(prefix, suffix, generated, shown):
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


def test_decoding_stops_at_a_closer_of_nothing_and_at_a_repetition():
    ctx = CursorContext("x = foo(a, ", "\n")
    stop = make_stop(lambda ids: "".join(ids), ctx)
    assert not stop(list("b)"))
    assert stop(list("b))"))
    assert make_stop(lambda ids: "".join(ids), CursorContext("x = ", "\n"))(list("_LOCAL_REQUE_LOCAL_REQUE"))


CONTEXTS = [CursorContext("x = foo(", ")\n"), CursorContext("def f():\n    ", "\n    return a\n"),
            CursorContext("x = [a, ", "\n"), CursorContext('s = """doc', "\n"), CursorContext("", "")]
PIECES = ["a", "foo", "_LOCAL", "中文", "😀", " ", "    ", "\n", "(", ")", "[", "]", "{", "}", "'", '"', '"""',
          "f'", "#", "\\", ",", ":", "pass", "return a"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.sampled_from(CONTEXTS))
@example(["pass", "\n", "pass", "\n", "pass", "word", "\n"], CONTEXTS[4])  # the third line grows past a repeat
@example(["(", "a", ")", ")", ")"], CONTEXTS[2])
def test_stopping_where_the_cut_fires_shows_the_same_text(pieces, ctx):
    """The engine stops at the first token where cut_point fires; the text shown must be what
    the whole text would show. Characters stand for tokens here (a finer grain)."""
    text = "".join(pieces)
    first = next((k for k in range(len(text) + 1) if cut_point(text[:k], ctx) is not None), None)
    stop = make_stop(lambda ids: "".join(ids), ctx)  # searches only the new end for repetitions
    assert next((k for k in range(1, len(text) + 1) if stop(list(text[:k]))), None) == (first and max(first, 1))
    if first is None:
        return
    assert all(cut_point(text[:k], ctx) == cut_point(text[:first], ctx) for k in range(first, len(text) + 1))
    assert postprocess(text[:first], ctx) == postprocess(text, ctx)
