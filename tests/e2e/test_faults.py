"""Faults give one clear message and leave a server that keeps serving."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures import tiny_llama
from tests.raw_lsp import RawServer

pytestmark = pytest.mark.e2e
URI = "file:///w/a.py"
TEXT = "def f(x):\n    return x\n\n\nprint(f(1))\n"


def start(options: dict, env: dict | None = None) -> tuple[RawServer, dict]:
    s = RawServer(env=env)
    s.initialize({"device": "cpu", "maxTokens": 4, **options})
    status = s.wait_status()
    s.notify("textDocument/didOpen", {"textDocument": {"uri": URI, "languageId": "python", "version": 1,
                                                       "text": TEXT}})
    return s, status


def inline(s: RawServer, line: int = 1, character: int = 4) -> dict:
    return s.request("textDocument/inlineCompletion", {"textDocument": {"uri": URI},
                                                       "position": {"line": line, "character": character},
                                                       "context": {"triggerKind": 1}})


def messages(s: RawServer) -> list[str]:
    return [m["params"]["message"] for m in s.notifications if m["method"] == "window/showMessage"]


def test_missing_model_says_what_to_do_and_recovers_on_config_change(pair, tmp_path):
    s, status = start({"target": str(tmp_path / "no-such-model"), "draft": "none"})
    try:
        assert status["state"] == "error" and "no-such-model" in status["message"]
        assert inline(s)["result"]["items"] == []  # answered, empty: the server stays up
        s.notify("workspace/didChangeConfiguration", {"settings": {"speclsp": {"target": str(pair[0]),
                                                                                "draft": str(pair[1])}}})
        assert s.wait_status()["state"] == "ready"  # a working target is loaded without a restart
        stats = s.request("workspace/executeCommand", {"command": "speclsp.stats"})["result"]["requests"]
        assert inline(s)["result"] is not None and len(stats) == 1
    finally:
        s.close()


def guarded_env(log: Path) -> dict:
    """Environment for a process cut off the network (tests/network_guard), checked to take effect."""
    guard = Path(__file__).resolve().parents[1] / "network_guard"
    path = [p for p in (os.environ.get("PYTHONPATH", ""), str(guard)) if p]
    env = {"PYTHONPATH": os.pathsep.join(path), "SPECLSP_NETWORK_LOG": str(log)}
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('example.org', 443)"],
                           env={**os.environ, **env}, capture_output=True, timeout=60)
    assert probe.returncode != 0 and "example.org" in log.read_text(), "the network guard is not active"
    log.unlink()
    return env


def test_an_uncached_hub_id_fails_at_once_and_the_server_reaches_no_network(tmp_path):
    """A mistyped id is not retried against the hub: the server says how to get it and stays up."""
    log = tmp_path / "network.log"
    s, status = start({"target": "someone-typo/CodeLama-7b", "draft": "none"}, env=guarded_env(log))
    try:
        assert status["state"] == "error", status
        assert "speclsp pull someone-typo/CodeLama-7b" in status["message"], status["message"]
        assert inline(s)["result"]["items"] == []
        assert not log.exists(), log.read_text()
    finally:
        s.close()


def test_corrupt_weights_are_reported(pair, tmp_path):
    bad = tmp_path / "target"
    shutil.copytree(pair[0], bad)
    (bad / "model.safetensors").write_bytes(b"\x00not safetensors" * 10)
    s, status = start({"target": str(bad), "draft": "none"})
    try:
        assert status["state"] == "error" and "target" in status["message"]
        assert "result" in inline(s)
    finally:
        s.close()


def test_draft_with_a_larger_vocabulary_is_dropped_with_a_notice(pair, tmp_path):
    big = tmp_path / "draft"
    tiny_llama(4096, 32, 1, seed=5).save_pretrained(big)
    for f in pair[1].iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            shutil.copy(f, big / f.name)
    s, status = start({"target": str(pair[0]), "draft": str(big)})
    try:
        assert status["state"] == "ready" and status["models"]["draft"] is None
        assert any("without speculation" in m for m in messages(s))
        assert "result" in inline(s)
    finally:
        s.close()


def test_missing_draft_runs_without_speculation(pair, tmp_path):
    s, status = start({"target": str(pair[0]), "draft": str(tmp_path / "gone")})
    try:
        assert status["state"] == "ready" and status["models"]["draft"] is None
        assert any("draft model not used" in m for m in messages(s))
    finally:
        s.close()


@pytest.mark.parametrize("fault,words", [("error_on=2", None), ("oom_on=2", "out of memory")])
def test_a_fault_in_one_request_leaves_the_next_working(pair, fault, words):
    s, status = start({"target": str(pair[0]), "draft": str(pair[1])}, env={"SPECLSP_FAULTS": fault})
    try:
        assert status["state"] == "ready"
        # the second request is elsewhere, so it needs the model (a repeat would be typed through)
        first, second, third = inline(s), inline(s, 0, 0), None
        s.notify("textDocument/didChange", {"textDocument": {"uri": URI, "version": 2}, "contentChanges": [
            {"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "text": "#\n"}]})
        third = inline(s)
        assert "result" in first and second["result"]["items"] == [] and "result" in third
        stats = s.request("workspace/executeCommand", {"command": "speclsp.stats"})["result"]["requests"]
        assert "error" in stats[1] and "error" not in stats[2]
        if words:
            time.sleep(0.5)
            assert any(words in m for m in messages(s))
    finally:
        s.close()


def test_client_dying_without_shutdown_ends_the_server(pair):
    s, status = start({"target": str(pair[0]), "draft": str(pair[1])})
    assert status["state"] == "ready"
    s.proc.stdin.close()  # the editor crashed: no shutdown, no exit
    try:
        code = s.proc.wait(15)
    except subprocess.TimeoutExpired:
        s.proc.kill()
        pytest.fail("the server outlived its client")
    assert code is not None
