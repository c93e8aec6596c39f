"""`speclsp demo`: the product as an editor sees it, in about a minute on a laptop CPU.

Starts the real server over stdio, opens a sample Python file, types at several cursor
positions the way a person would (with pauses), asks for inline completions through LSP and
prints each suggestion with its latency and token counts. The packaged sample has hand-picked
lines; in any other file (`--file`) the demo picks lines of code spread over the file.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from ..lsp.items import inserted_text

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "inventory.py"


@dataclass
class Scenario:
    """Cut `line` of the sample after `keep` characters, then type the rest of it back."""

    line: str  # the text of the line as it appears in the sample (first match)
    keep: int
    pause_every: int = 4


SCENARIOS = [
    Scenario("        return self.price * self.quantity", 15),
    Scenario("        return self.items.pop(name)", 15),
    Scenario("        return sum(item.total() for item in self.items.values())", 19),
    Scenario("        path.write_text(json.dumps(data, indent=2))", 24),
    Scenario("    inventory.add(Item(\"apple\", 0.5, 10))", 18),
]
MOST_LINES = 5
TYPEABLE = (16, 100)  # length range, without indentation, of a line worth retyping


def scenarios_for(source: str) -> list[Scenario]:
    """The hand-picked scenarios whose lines are in `source`, else lines picked from it."""
    lines = source.split("\n")
    return [s for s in SCENARIOS if s.line in lines] or picked_scenarios(lines)


def picked_scenarios(lines: list[str]) -> list[Scenario]:
    """Up to MOST_LINES code lines spread evenly over the file, each cut a third of the way in."""
    candidates = list(dict.fromkeys(line for line in lines if _typeable(line)))
    step = max(len(candidates) / MOST_LINES, 1)
    chosen = [candidates[int(i * step)] for i in range(min(MOST_LINES, len(candidates)))]
    return [Scenario(line, _indent(line) + len(line.strip()) // 3) for line in chosen]


def _typeable(line: str) -> bool:
    """Code (not a comment or a docstring), and only characters one UTF-16 unit long: the demo's LSP positions
    count code points, which equal UTF-16 columns only then."""
    code = line.strip()
    return (TYPEABLE[0] <= len(code) <= TYPEABLE[1] and not code.startswith(("#", '"""', "'''"))
            and all(ord(c) < 0x10000 for c in line))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _model_options(args) -> dict:
    from ..config import Settings, settings_from_args, settings_to_lsp

    chosen, default = settings_to_lsp(settings_from_args(args)), settings_to_lsp(Settings())
    return {k: v for k, v in chosen.items() if v != default[k]}


def _plain(obj):
    """pygls gives custom notifications' params as nested namedtuples."""
    if hasattr(obj, "_asdict"):
        return {k: _plain(v) for k, v in obj._asdict().items()}
    return obj


class DemoClient:
    def __init__(self, options: dict):
        self.client = LanguageClient("speclsp-demo", "1")
        self.options = options
        self.status: list[dict] = []

        @self.client.feature("speclsp/status")
        def on_status(params) -> None:
            self.status.append(_plain(params))

        @self.client.feature(types.WINDOW_SHOW_MESSAGE)
        def on_message(params: types.ShowMessageParams) -> None:
            print(f"  [server] {params.message}", flush=True)

    async def start(self) -> dict:
        await self.client.start_io(sys.executable, "-m", "lsp_server", "serve", "--log-level", "WARNING")
        await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), initialization_options=self.options))
        self.client.initialized(types.InitializedParams())
        while True:
            for s in self.status:
                if s["state"] in ("ready", "error"):
                    return s
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


async def _demo(args, path: Path, source: str, scenarios: list[Scenario]) -> int:
    uri = path.resolve().as_uri()
    demo = DemoClient(_model_options(args))
    t0 = time.monotonic()
    state = await demo.start()
    if state["state"] == "error":
        print(f"server could not load models: {state['message']}")
        await demo.stop()
        return 3
    models = state.get("models", {})
    print(f"server ready in {time.monotonic() - t0:.1f} s: target {models.get('target')}, "
          f"draft {models.get('draft')} on {models.get('device')} ({models.get('dtype')})\n")
    client = demo.client
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=source)))
    latencies: list[float] = []
    version = 1
    lines = source.split("\n")
    for n, scenario in enumerate(scenarios, 1):
        row = lines.index(scenario.line)
        version, shown = await _type_line(client, uri, row, scenario, version, latencies)
        print(f"[{n}] line {row + 1}: {scenario.line.strip()!r}\n{shown}\n")
    stats = await client.workspace_execute_command_async(types.ExecuteCommandParams("speclsp.stats"))
    requests = stats["requests"]
    drafted = sum(r.get("drafted_tokens", 0) for r in requests)
    accepted = sum(r.get("accepted_tokens", 0) for r in requests)
    print(f"{len(latencies)} requests: median {statistics.median(latencies):.0f} ms, "
          f"max {max(latencies):.0f} ms; draft acceptance {accepted}/{drafted} "
          f"({accepted / max(drafted, 1):.0%})")
    await demo.stop()
    return 0


async def _type_line(client, uri: str, row: int, scenario: Scenario, version: int, latencies: list[float]):
    """Delete the line's tail, then type it back, asking for a completion at each pause."""
    line = scenario.line
    version += 1
    _edit(client, uri, version, row, scenario.keep, len(line), "")
    shown = []
    col = scenario.keep
    while col < len(line):
        step = line[col:col + scenario.pause_every]
        version += 1
        _edit(client, uri, version, row, col, col, step)
        col += len(step)
        t = time.monotonic()
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic),
            text_document=types.TextDocumentIdentifier(uri), position=types.Position(row, col)))
        ms = (time.monotonic() - t) * 1e3
        latencies.append(ms)
        stats = (await client.workspace_execute_command_async(
            types.ExecuteCommandParams("speclsp.stats")))["requests"][-1]
        text = inserted_text(result.items[0], line[:col], "") if result and result.items else ""  # tail deleted
        shown.append(f"    {line[:col].strip()!s:<40} ⟶ {text!r:<40} {ms:6.0f} ms  "
                     f"prompt {stats.get('prompt_tokens', 0)} (reused {stats.get('reused_tokens', 0)}), "
                     f"generated {stats.get('generated_tokens', 0)}, "
                     f"accepted {stats.get('accepted_tokens', 0)}/{stats.get('drafted_tokens', 0)}")
        await asyncio.sleep(0.05)
    return version, "\n".join(shown)


def _edit(client, uri: str, version: int, row: int, start: int, end: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(row, start), types.Position(row, end)), text=text)]))


def run_demo(args) -> int:
    """Exit 2, before any server starts, for a file that cannot be read or has no line to type."""
    path = Path(args.file) if args.file else SAMPLE
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as e:
        print(f"speclsp: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"speclsp: {path} is not UTF-8 text", file=sys.stderr)
        return 2
    scenarios = scenarios_for(source)
    if not scenarios:
        print(f"speclsp: {path} has no line of code to type in (lines of {TYPEABLE[0]} to {TYPEABLE[1]} "
              "characters that are not comments)", file=sys.stderr)
        return 2
    print("speclsp demo: typing into", args.file or "the packaged sample (lsp_server/samples/inventory.py)")
    return asyncio.run(_demo(args, path, source, scenarios))
