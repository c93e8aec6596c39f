"""The import boundaries the layout promises, read from the sources (no import is run).

- The engine is a leaf: nothing under lsp_server/engine/ imports from the package above it.
- torch and transformers only under engine/ and in the instruments (benchmarks, doctor).
- pygls and lsprotocol only at the protocol edge (lsp/, the command line, the demo and doctor tools).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lsp_server"
INSTRUMENTS = {"bench", "tools/doctor.py", "faults.py"}  # folders or files, relative to the package
PROTOCOL_EDGE = {"lsp", "cli.py", "tools/demo.py", "tools/doctor.py"}


def within(path: Path, places: set[str]) -> bool:
    """Whether the module is one of `places`, or inside one of them."""
    rel = path.relative_to(PACKAGE)
    return any(rel.as_posix() == place or place in rel.parts[:1] for place in places)


def imports(path: Path) -> list[tuple[int, str]]:
    """(relative level, module) of every import in the file, top level or inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def modules(folder: Path | None = None):
    return [p for p in (folder or PACKAGE).rglob("*.py") if "__pycache__" not in p.parts]


def test_the_engine_imports_nothing_above_it():
    for path in modules(PACKAGE / "engine"):
        for level, name in imports(path):
            assert level <= 1 and not name.startswith("lsp_server"), (path.name, level, name)


def test_torch_only_in_the_engine_and_the_instruments():
    for path in modules():
        if within(path, INSTRUMENTS | {"engine"}):
            continue
        for _, name in imports(path):
            assert name.split(".")[0] not in ("torch", "transformers"), (path.name, name)


def test_pygls_and_lsprotocol_only_at_the_protocol_edge():
    for path in modules():
        if within(path, PROTOCOL_EDGE):
            continue
        for _, name in imports(path):
            assert name.split(".")[0] not in ("pygls", "lsprotocol"), (path.name, name)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path) -> set[str]:
    """The package's own modules this file imports (lazy imports inside functions included)."""
    here = module_name(path).split(".")
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here if is_package else here[:-1]
            base = base[:len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
            names = [stem] if node.module else [f"{stem}.{a.name}" for a in node.names]
            out.update(names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lsp_server"):
            out.add(node.module)
    return out


def test_no_import_circles():
    files = {module_name(p): p for p in modules() if p.name != "__main__.py"}
    graph = {name: {m for m in package_imports(p) if m in files and m != name} for name, p in files.items()}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for nxt in graph[name]:
            assert state.get(nxt) != 1, " -> ".join(trail + [name, nxt])
            if nxt not in state:
                visit(nxt, trail + [name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_the_benchmarks_run_where_pygls_is_not_installed(tmp_path):
    """The GPU machine has torch but no pygls/lsprotocol: `speclsp bench` must start there."""
    import subprocess
    import sys

    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pygls', 'lsprotocol'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n")
    code = ("from lsp_server import cli; import argparse; "
            "cli._setup_logging(argparse.Namespace(log_level='info', log_file=None, command='bench')); "
            "import lsp_server.bench.gpu, lsp_server.bench.cpu, lsp_server.bench.quality, lsp_server.bench.quality_lsp, "
            "lsp_server.service; print('ok')")
    env = {"PYTHONPATH": f"{tmp_path}:{PACKAGE.parent}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
