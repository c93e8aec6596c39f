"""A real llama.cpp llama-server on the embedded demo pair, for tests of the shared-server path.

The binary comes from scripts/install_llama_server.sh (built once into .tools/llama-server; exit 2
there skips, with its reason, anything else fails). The demo pair is loaded through the product's own
loader (so int8 weight files would be dequantized), saved as a plain float32 checkpoint with its
tokenizer files, and converted with the converter of the same llama.cpp tree (GGUF F32).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.llama_cpp import run_script

TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
START_TIMEOUT_S = 120


def server_binary() -> Path:
    return run_script("install_llama_server.sh", timeout=3600)


def demo_ggufs(binary: Path, out: Path) -> tuple[Path, Path]:
    """(target.gguf, draft.gguf) of the embedded demo pair, F32."""
    from lsp_server.config import Settings
    from lsp_server.engine.models import demo_paths, load_models

    target, draft = (str(p) for p in demo_paths())
    loaded = load_models(Settings(target=target, draft=draft, device="cpu", dtype="float32"))
    convert = binary.parent.parent / "src" / "convert_hf_to_gguf.py"
    return tuple(_to_gguf(model, src, out / name, convert)  # type: ignore[return-value]
                 for model, src, name in zip((loaded.target, loaded.draft), demo_paths(), ("target", "draft"), strict=True))


def _to_gguf(model, src: Path, folder: Path, convert: Path) -> Path:
    model.save_pretrained(folder)  # plain float32 safetensors, whatever the demo's files hold
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy(src / name, folder / name)
    gguf = folder.with_suffix(".gguf")
    proc = subprocess.run([sys.executable, str(convert), str(folder), "--outtype", "f32", "--outfile", str(gguf)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and gguf.exists(), f"{convert.name} failed:\n{proc.stderr[-3000:]}"
    return gguf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary: Path, target: Path, draft: Path | None, log: Path) -> tuple[subprocess.Popen, str]:
    """llama-server on a free local port, one slot, 2 threads; returns once /health says it is ready."""
    port = free_port()
    cmd = [str(binary), "-m", str(target), "--host", "127.0.0.1", "--port", str(port), "-np", "1",
           "-c", "4096", "-t", "2", "--no-webui"]
    if draft is not None:
        cmd += ["-md", str(draft)]
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama-server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if _healthy(url):
            return proc, url
        time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"llama-server not ready in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stream_completion(url: str, body: dict) -> Iterator[dict]:
    """POST /completion with stream true; yields each server-sent event's JSON."""
    req = urllib.request.Request(f"{url}/completion", data=json.dumps(dict(body, stream=True)).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        for raw in r:
            line = raw.decode().strip()
            if line.startswith("data: "):
                yield json.loads(line[len("data: "):])
