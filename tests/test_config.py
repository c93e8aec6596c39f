"""Settings: camelCase at the edge, defaults kept on bad values, one message per problem."""

import pytest

from lsp_server.config import CAMEL_KEYS, Settings, SettingsMessages, settings_from_lsp, settings_to_lsp


def test_defaults_round_trip():
    s, problems = settings_from_lsp({})
    assert s == Settings() and problems == []
    assert set(settings_to_lsp(s)) == set(CAMEL_KEYS)


def test_all_issue_keys_are_accepted():
    options = {"target": "/m/t", "draft": "none", "device": "cuda:1", "dtype": "bfloat16", "maxTokens": 32,
               "temperature": 0.5, "contextTokens": 1024, "fimOrder": "psm", "speculative": False,
               "draftLength": 3, "prefixCache": False, "cacheBudgetMB": 512}
    s, problems = settings_from_lsp(options)
    assert problems == []
    assert (s.target, s.draft, s.device, s.dtype, s.max_tokens, s.temperature, s.context_tokens, s.fim_order,
            s.speculative, s.draft_length, s.prefix_cache, s.cache_budget_mb) == (
        "/m/t", "none", "cuda:1", "bfloat16", 32, 0.5, 1024, "psm", False, 3, False, 512)


@pytest.mark.parametrize("key,value", [
    ("maxTokens", 0), ("maxTokens", "12"), ("maxTokens", True), ("maxTokens", 1.5), ("temperature", -1),
    ("temperature", "hot"), ("fimOrder", "mps"), ("device", "tpu"), ("dtype", "int3"), ("draftLength", 99),
    ("speculative", "yes"), ("prefixCache", 1), ("cacheBudgetMB", -5), ("contextTokens", 10), ("target", 5),
])
def test_bad_values_keep_the_previous_value_and_say_so(key, value):
    base = Settings(max_tokens=40)
    s, problems = settings_from_lsp({key: value}, base)
    assert s == base
    assert len(problems) == 1 and key in problems[0]


def test_unknown_keys_are_reported_and_client_keys_are_not():
    _, problems = settings_from_lsp({"maxTokenz": 3, "server": {"command": ["x"]}, "enable": True})
    assert problems == ["unknown setting speclsp.maxTokenz ignored"]


def test_non_object_options():
    s, problems = settings_from_lsp([1, 2])
    assert s == Settings() and "object" in problems[0]


def test_each_message_is_shown_once():
    seen = SettingsMessages()
    assert seen.fresh(["a", "b"]) == ["a", "b"]
    assert seen.fresh(["a", "c"]) == ["c"]
