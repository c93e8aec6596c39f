"""Typing-through from the documents' records: what they answer, and that they stay within their budget."""

from lsp_server.document_state import DocumentStore
from lsp_server.prompt import CursorContext


def test_typing_through_answers_the_rest():
    store = DocumentStore()
    store.remember("a", CursorContext("x = ", "\n"), "compute(1)")
    assert store.lookup("a", CursorContext("x = comp", "\n")) == "ute(1)"
    assert store.lookup("a", CursorContext("x = cost", "\n")) is None
    assert store.lookup("b", CursorContext("x = comp", "\n")) is None


def test_the_store_is_bounded_in_characters_across_documents():
    """Each suggestion holds its document's text: many large documents must not grow the server."""
    budget = 100_000
    store = DocumentStore(budget_chars=budget)
    doc = "y" * 20_000
    for i in range(200):
        for _ in range(3):
            store.remember(f"doc{i}", CursorContext(doc, ""), f"text{i}")
        assert store.chars <= budget
    assert store.lookup("doc199", CursorContext(doc + "te", "")) == "xt199"  # the latest stays
    assert store.lookup("doc0", CursorContext(doc + "te", "")) is None  # the oldest went


def test_a_suggestion_larger_than_the_budget_is_not_kept():
    store = DocumentStore(budget_chars=1000)
    store.remember("a", CursorContext("z" * 5000, ""), "more")
    assert store.lookup("a", CursorContext("z" * 5000 + "m", "")) is None
    store.remember("a", CursorContext("small", ""), "more")
    assert store.lookup("a", CursorContext("smallm", "")) == "ore"
