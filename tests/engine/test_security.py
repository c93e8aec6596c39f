"""What the server trusts and what it leaves alone."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lsp_server.config import Settings
from lsp_server.engine.models import ModelError, load_models
from tests.fixtures import tiny_llama
from tests.raw_lsp import RawServer

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "lsp_server"


def sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}


def test_remote_code_is_never_enabled_and_weights_are_safetensors():
    calls = 0
    for path, text in sources().items():
        assert "trust_remote_code=True" not in text, path
        for call in re.findall(r"from_pretrained\([^)]*\)", text):
            calls += 1
            assert "trust_remote_code=False" in call, (path, call)
    assert calls >= 3
    models = (PACKAGE / "engine" / "models.py").read_text()
    assert "use_safetensors=True" in models


def test_models_are_read_from_local_files_only():
    """Only `speclsp pull` downloads: every other model or hub call in the package stays on this machine."""
    calls = 0
    for path, text in sources().items():
        if path.name == "pull.py":
            continue
        for call in re.findall(r"(?:from_pretrained|snapshot_download|hf_hub_download)\([^)]*\)", text):
            calls += 1
            assert "local_files_only=True" in call, (path, call)
    assert calls >= 4


# clients of the server, not the server: each starts the `speclsp serve` process it talks to
SERVER_CLIENTS = {("tools", "demo.py"), ("bench", "quality_lsp.py")}


def test_the_server_runs_no_shell_commands():
    for path, text in sources().items():
        if (path.parent.name, path.name) in SERVER_CLIENTS:
            continue
        assert not re.search(r"\b(subprocess|os\.system|os\.popen|pty\.spawn)\b", text), path


def test_pickled_weights_are_refused(pair, tmp_path):
    model_dir = tmp_path / "pickled"
    tiny_llama(516, 32, 1, seed=0).config.save_pretrained(model_dir)
    torch.save(tiny_llama(516, 32, 1, seed=0).state_dict(), model_dir / "pytorch_model.bin")
    for f in pair[0].iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            (model_dir / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ModelError):
        load_models(Settings(target=str(model_dir), draft="none", device="cpu"))


def test_an_index_pointing_at_pickled_weights_is_refused(pair, tmp_path):
    """transformers follows model.safetensors.index.json to whatever file it names."""
    import json

    model_dir = tmp_path / "indexed"
    model = tiny_llama(516, 32, 1, seed=0)
    model.config.save_pretrained(model_dir)
    torch.save(model.state_dict(), model_dir / "pytorch_model.bin")
    index = {"metadata": {}, "weight_map": {name: "pytorch_model.bin" for name in model.state_dict()}}
    (model_dir / "model.safetensors.index.json").write_text(json.dumps(index))
    for f in pair[0].iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            (model_dir / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ModelError, match="only safetensors"):
        load_models(Settings(target=str(model_dir), draft="none", device="cpu"))


def test_document_text_never_reaches_the_log(pair, tmp_path):
    log = tmp_path / "server.log"
    secret = "SECRET_TOKEN_4f9a2b"
    s = RawServer(args=["--log-file", str(log)])  # the default level
    s.initialize({"target": str(pair[0]), "draft": str(pair[1]), "device": "cpu", "maxTokens": 4})
    assert s.wait_status()["state"] == "ready"
    s.notify("textDocument/didOpen", {"textDocument": {"uri": "file:///w/s.py", "languageId": "python",
                                                       "version": 1, "text": f"key = '{secret}'\n"}})
    reply = s.request("textDocument/inlineCompletion", {"textDocument": {"uri": "file:///w/s.py"},
                                                        "position": {"line": 1, "character": 0},
                                                        "context": {"triggerKind": 1}})
    assert "result" in reply
    s.close()
    text = log.read_text()
    assert "request" in text  # the log is written ...
    assert secret not in text  # ... without the code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("host,warns", [("", False), ("0.0.0.0", True)])
def test_tcp_binds_loopback_unless_told_and_warns_when_not(tmp_path, host, warns):
    port, log = free_port(), tmp_path / "tcp.log"
    proc = subprocess.Popen([sys.executable, "-m", "lsp_server", "serve", "--tcp", f"{host}:{port}",
                             "--log-file", str(log)])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not listen")
        text = log.read_text()
        assert ("not loopback" in text) == warns
    finally:
        proc.kill()
        proc.wait(5)
