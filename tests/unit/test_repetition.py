"""Degenerate repetition: a table of generated text and where it is cut."""

import pytest

from lsp_server.repetition import repetition_cut

# (text, what stays; None: nothing to cut)
CASES = [
    ("x = _LOCAL_REQUE_LOCAL_REQUE_LOCAL", "x = "),  # glued inside a word: the whole word goes
    ("x = MY_REQUEST_REQUEST_R", "x = "),
    ("    pass\n    pass\n    pass\n", "    pass"),  # a line three times: the first stays
    ("    pass\n    pass\n    pa", None),  # the third copy is not whole yet: it may become "password"
    ("x = 1\ny = 2\nx = 1\ny = 2\n", "x = 1\ny = 2"),  # a block twice
    ("print(x)\nprint(x)\n", None),  # one line twice happens in real code
    ("a.a.a.a.a", "a."),  # a short unit four times
    ("foo(foo(foo(foo(", "foo("),
    ("foo, foo, foo, ", "foo, "),  # three times, joined at a word's edge: the first copy stays
    ("return 中文中文中文中文", "return "),  # non-ASCII words too
    ("'xxxxxxxx'", None),  # filler written on purpose
    ("0, 0, 0, 0, 0, 0", None),  # a table of numbers
    ("'-' * 40 + '----------------'", None),
    ("self.assertEqual(a, b)\nself.assertEqual(c, d)\n", None),
    ("\\r\\n\\r\\n\\r\\n", None),
    ("        ]\n    ]\n]\n", None),  # closing brackets at different depths
    ("    #\n    #\n    #\n    #\n", "    #"),
]


@pytest.mark.parametrize("text,kept", CASES)
def test_repetition_is_cut_before_it_starts(text, kept):
    cut = repetition_cut(text)
    assert (None if cut is None else text[:cut]) == kept


def test_a_repetition_of_the_users_own_text_is_not_the_models():
    line = "key = 'abcabcabcabc'"
    assert repetition_cut(line + " + x", len(line)) is None
    assert repetition_cut("x = _LOCAL_REQ" + "UE_LOCAL_REQUE", len("x = _LOCAL_REQ")) == len("x = _LOCAL_REQ")


def test_the_cut_depends_only_on_the_text_up_to_the_repetition():
    text = "y = 1\n    pass\n    pass\n    pass\n    other = 2\n"
    first = next(k for k in range(len(text) + 1) if repetition_cut(text[:k]) is not None)
    assert all(repetition_cut(text[:k]) == repetition_cut(text[:first]) for k in range(first, len(text) + 1))
