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


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 1e300])
def test_numbers_out_of_range_are_refused_one_by_one(value):
    """JSON's 1e400 arrives as inf: refused like any bad value, and the valid keys beside it apply."""
    s, problems = settings_from_lsp({"maxTokens": value, "temperature": value, "contextTokens": 512})
    assert s.context_tokens == 512 and s.max_tokens == Settings().max_tokens
    assert s.temperature == Settings().temperature
    assert len(problems) == 2 and "maxTokens" in problems[0] and "temperature" in problems[1]


def test_huge_values_are_quoted_briefly():
    huge = "x" * 2_000_000
    _, problems = settings_from_lsp({"device": huge, huge: 1})
    assert len(problems) == 2
    assert all(len(p) < 200 for p in problems), [len(p) for p in problems]
    assert "2,000,002 characters" in problems[0]


def test_remembered_messages_are_bounded():
    seen = SettingsMessages()
    for i in range(5000):
        assert seen.fresh([f"invalid value {i}"]) == [f"invalid value {i}"]
    assert len(seen.seen) <= 256


def test_every_field_is_one_setting_with_its_camel_case_key():
    import dataclasses

    from lsp_server.config import FIELDS

    names = [f.name for f in dataclasses.fields(Settings)]
    assert [FIELDS[k].attr for k in CAMEL_KEYS] == names
    assert CAMEL_KEYS[names.index("max_document_chars")] == "maxDocumentChars"
    assert CAMEL_KEYS[names.index("cache_budget_mb")] == "cacheBudgetMB"
    assert all(FIELDS[k].default == getattr(Settings(), FIELDS[k].attr) and FIELDS[k].doc for k in CAMEL_KEYS)
    assert (FIELDS["temperature"].kind, FIELDS["speculative"].kind, FIELDS["maxTokens"].kind) == (float, bool, int)


@pytest.mark.parametrize("key,value,problem", [
    ("maxTokens", 0, "expected an integer from 1 to 1024"),
    ("maxTokens", "12", "expected an integer"),
    ("temperature", 2.5, "expected a number from 0.0 to 2.0"),
    ("device", "tpu", "expected auto, cpu, cuda or cuda:N"),
    ("dtype", "int3", "expected auto, float16, bfloat16 or float32"),
    ("fimOrder", "mps", "expected spm or psm"),
    ("completionFallback", "sometimes", "expected auto, always or never"),
    ("speculative", "yes", "expected true or false"),
    ("target", 5, "expected text"),
    ("maxDocumentChars", 1 << 30, None),
    ("device", "cuda:12", None),
])
def test_value_problems_say_what_the_setting_takes(key, value, problem):
    from lsp_server.config import value_problem

    assert value_problem(key, value) == problem


def test_command_line_flags_are_read_by_their_camel_case_names():
    from argparse import Namespace

    from lsp_server.config import settings_from_args

    args = Namespace(command="serve", maxTokens=8, maxDocumentChars=100, temperature=None, file="x.py")
    assert settings_from_args(args) == Settings(max_tokens=8, max_document_chars=100)


REMOTE = {"backend": "remote", "remoteUrl": "https://llm.example.com/base", "remoteKind": "vllm",
          "remoteModel": "codellama", "remoteApiKeyEnv": "SPECLSP_KEY", "remoteTimeoutMs": 500,
          "remoteAllowInsecure": False}


def test_the_remote_settings_are_accepted():
    s, problems = settings_from_lsp(REMOTE)
    assert problems == []
    assert (s.backend, s.remote_url, s.remote_kind, s.remote_model, s.remote_api_key_env, s.remote_timeout_ms,
            s.remote_allow_insecure) == ("remote", "https://llm.example.com/base", "vllm", "codellama",
                                         "SPECLSP_KEY", 500, False)


@pytest.mark.parametrize("url", ["http://localhost:8080", "http://127.0.0.1:8080", "http://127.3.4.5",
                                 "http://[::1]:8080/", "https://10.0.0.1:8443", ""])
def test_plain_http_is_taken_to_this_machine_and_https_anywhere(url):
    s, problems = settings_from_lsp({"remoteUrl": url})
    assert problems == [] and s.remote_url == url


@pytest.mark.parametrize("url", ["http://10.0.0.1:8080", "http://llm.example.com", "http://localhost.evil.com",
                                 "http://127.0.0.1.nip.io"])
def test_plain_http_to_another_machine_is_refused_unless_allowed(url):
    base = Settings(remote_url="https://llm.example.com")
    s, problems = settings_from_lsp({"remoteUrl": url}, base)
    assert s.remote_url == "https://llm.example.com" and len(problems) == 1
    assert "unencrypted" in problems[0] and "remoteAllowInsecure" in problems[0]
    s, problems = settings_from_lsp({"remoteUrl": url, "remoteAllowInsecure": True}, base)
    assert problems == [] and s.remote_url == url


def test_turning_insecure_off_drops_an_insecure_url_it_allowed():
    base = Settings(remote_url="http://10.0.0.1:8080", remote_allow_insecure=True)
    s, problems = settings_from_lsp({"remoteAllowInsecure": False}, base)
    assert s.remote_url == "" and not s.remote_allow_insecure and len(problems) == 1


@pytest.mark.parametrize("key,value", [("remoteUrl", "ftp://host"), ("remoteUrl", "llm.example.com"),
                                       ("remoteKind", "tgi"), ("backend", "cloud"), ("remoteTimeoutMs", 0)])
def test_bad_remote_values_keep_the_default(key, value):
    s, problems = settings_from_lsp({key: value})
    assert s == Settings() and len(problems) == 1 and key in problems[0]


def test_an_api_key_put_where_its_variable_s_name_goes_is_never_repeated():
    s, problems = settings_from_lsp({"remoteApiKeyEnv": "sk-live-0123456789abcdef"})
    assert s.remote_api_key_env == "" and len(problems) == 1
    assert "sk-live" not in problems[0] and "environment variable" in problems[0]
