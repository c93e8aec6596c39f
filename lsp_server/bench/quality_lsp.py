"""A few quality holes through the real `speclsp serve` process, over LSP on its standard streams.

The suite runs its holes through CompletionService; this checks that an editor asking the server
gets the same suggestion: each hole is opened as a document, asked for by
`textDocument/inlineCompletion`, and the item's text is compared with the service's. The server
keeps its own validated settings, so its time budget is at most 60 s (ample for the demo pair).
Where the server cannot start here (no pygls), the check says so and is skipped.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from ..lsp.framing import FrameReader
from .holes import Hole

MAX_BUDGET_MS = 60_000  # the most config.Settings accepts from an editor
WAIT_S = 600  # for any one answer: a busy 2-core machine is slow, a hung server is not waited on forever


class Server:
    """The server process, spoken to as a bare client: requests, notifications, the replies."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc, self.next_id, self.states = proc, 0, []
        self.reader = FrameReader(lambda: proc.stdout.read(1 << 16))

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def request(self, method: str, params) -> dict:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        return await self.until(lambda m: m.get("id") == self.next_id and "method" not in m)

    async def until(self, wanted) -> dict:
        """Messages until one is `wanted`; requests from the server get an empty answer."""
        while True:
            body = await asyncio.wait_for(self.reader.next_frame(), WAIT_S)
            if not isinstance(body, bytes):
                raise ConnectionError("the server's output ended")
            msg = json.loads(body)
            if "method" in msg and "id" in msg:
                self.send({"id": msg["id"], "result": None})
            if msg.get("method") == "speclsp/status":
                self.states.append(msg["params"].get("state"))
            if wanted(msg):
                return msg


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _suggestion(hole: Hole, reply: dict) -> str:
    """What the server's first inline item inserts at the hole's cursor ("" for no item)."""
    result = reply.get("result")
    items = result.get("items", []) if isinstance(result, dict) else result or []
    if not items:
        return ""
    text = items[0]["insertText"]
    text = text if isinstance(text, str) else text["value"]
    return text[len(hole.line_prefix):len(text) - len(hole.line_suffix)]


async def _ask(server: Server, holes: list[Hole]) -> list[str]:
    out = []
    for i, hole in enumerate(holes):
        uri = f"file:///speclsp-quality/hole{i}.py"
        server.send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": hole.prefix + hole.suffix}}})
        reply = await server.request("textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": hole.line, "character": _utf16(hole.line_prefix)},
            "context": {"triggerKind": 1}})
        out.append(_suggestion(hole, reply))
        server.send({"method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
    return out


async def _session(options: dict, holes: list[Hole]) -> list[str]:
    root = Path(__file__).resolve().parents[2]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lsp_server", "serve", cwd=root, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    server = Server(proc)
    try:
        await server.request("initialize", {"processId": None, "rootUri": None, "capabilities": {},
                                            "initializationOptions": options})
        server.send({"method": "initialized", "params": {}})
        await server.until(lambda m: m.get("method") == "speclsp/status"
                           and m["params"].get("state") in ("ready", "error"))
        if server.states[-1] != "ready":
            raise ConnectionError("the server could not load the models")
        suggestions = await _ask(server, holes)
        await server.request("shutdown", None)
        server.send({"method": "exit"})
        return suggestions
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def lsp_check(options: dict, holes: list[Hole], expected: list[str]) -> dict:
    """Ask the server (settings `options`, camelCase) for `holes`; compare with `expected`, the
    service's suggestions. A hole the server answers otherwise is listed under "differ"."""
    options = {**options, "timeBudgetMs": min(options["timeBudgetMs"], MAX_BUDGET_MS)}
    try:
        got = asyncio.run(_session(options, holes))
    except (OSError, ConnectionError, TimeoutError) as e:  # asyncio's timeout is TimeoutError
        return {"holes": len(holes), "skipped": f"the server did not answer: {e!r}"}
    differ = [{"hole": h.describe(), "server": g, "service": e} for h, g, e in zip(holes, got, expected, strict=True) if g != e]
    return {"holes": len(holes), "same": len(holes) - len(differ), "differ": differ}
