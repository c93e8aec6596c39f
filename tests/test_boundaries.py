"""The import boundaries the layout promises, read from the sources (no import is run).

- The engine is a leaf: nothing under lsp_server/engine/ imports from the package above it.
- torch and transformers only under engine/ and in the instruments (benchmarks, doctor).
- pygls and lsprotocol only at the protocol edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lsp_server"
INSTRUMENTS = {"bench.py", "bench_gpu.py", "bench_cpu.py", "bench_wait.py", "replay.py", "doctor.py", "faults.py"}
PROTOCOL_EDGE = {"server.py", "protocol.py", "documents.py", "items.py", "client_log.py", "cli.py", "demo.py",
                 "doctor.py", "tcp.py", "framing.py"}


def imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import in the file, top level or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def modules(folder: Path = PACKAGE):
    return [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts]


def test_the_engine_imports_nothing_above_it():
    for path in modules(PACKAGE / "engine"):
        for level, name in imports(path):
            assert level <= 1 and not name.startswith("lsp_server"), (path.name, level, name)


def test_torch_only_in_the_engine_and_the_instruments():
    for path in modules():
        if "engine" in path.relative_to(PACKAGE).parts or path.name in INSTRUMENTS:
            continue
        for _, name in imports(path):
            assert name.split(".")[0] not in ("torch", "transformers"), (path.name, name)


def test_pygls_and_lsprotocol_only_at_the_protocol_edge():
    for path in modules():
        if path.name in PROTOCOL_EDGE:
            continue
        for _, name in imports(path):
            assert name.split(".")[0] not in ("pygls", "lsprotocol"), (path.name, name)
