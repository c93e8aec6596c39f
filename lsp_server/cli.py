"""Command line: serve, complete, doctor, demo, bench, pull.

Logs go to stderr or a file, never stdout: in `serve` stdout is the LSP channel and in
`complete --json` it carries one JSON object. In `serve`, stderr carries only warnings and
errors (editors show each of its lines as an error); the rest of the log goes to the editor
as window/logMessage, or all of it to --log-file. Exit status: 0 done, 2 a usage error or input
that cannot be read, 3 the models cannot be loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

from .config import CAMEL_KEYS, settings_from_args, value_problem

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model options")
    g.add_argument("--target", help="target model id or directory (default: CodeLlama-7b if present, else the demo model)")
    g.add_argument("--draft", help="draft model id or directory, or 'none'")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    g.add_argument("--dtype", help="auto, float16, bfloat16, float32")
    g.add_argument("--max-tokens", type=int, dest="maxTokens")
    g.add_argument("--context-tokens", type=int, dest="contextTokens")
    g.add_argument("--temperature", type=float)
    g.add_argument("--fim-order", choices=["spm", "psm"], dest="fimOrder")
    g.add_argument("--draft-length", type=int, dest="draftLength")
    g.add_argument("--no-speculative", action="store_false", dest="speculative", default=None)
    g.add_argument("--no-prefix-cache", action="store_false", dest="prefixCache", default=None)
    g.add_argument("--time-budget-ms", type=int, dest="timeBudgetMs",
                   help="the most time one completion may take, queue wait included (default 2000)")
    g.add_argument("--backend", help="local (the models in this process) or remote (a shared inference server)")
    g.add_argument("--remote-url", dest="remoteUrl", help="the shared inference server's base URL")
    g.add_argument("--remote-kind", dest="remoteKind", help="auto, llama.cpp, vllm, sglang, openai")
    g.add_argument("--remote-model", dest="remoteModel")
    g.add_argument("--remote-api-key-env", dest="remoteApiKeyEnv",
                   help="the NAME of the environment variable holding the server's API key")
    g.add_argument("--remote-timeout-ms", type=int, dest="remoteTimeoutMs")
    g.add_argument("--remote-allow-insecure", action="store_true", dest="remoteAllowInsecure", default=None,
                   help="allow plain http:// to a server on another machine")
    g.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    g.add_argument("--log-file", help="write the log here instead of stderr")
    _refuse_bad_values(p)


def _refuse_bad_values(p: argparse.ArgumentParser) -> None:
    """Check each settings flag of `p` by the settings' own rules while parsing.

    A bad value on the command line is a usage error naming the flag (exit 2); an editor's bad
    setting keeps the default with one message instead (config.settings_from_lsp).
    """
    for action in p._actions:  # argparse has no public list of a parser's arguments
        if action.dest in CAMEL_KEYS and action.nargs is None:
            action.type = _checked(action.dest, action.type)


def _checked(key: str, convert):
    def value(text: str):
        try:
            parsed = convert(text) if convert else text
        except ValueError:
            parsed = text  # value_problem names the type expected
        problem = value_problem(key, parsed)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, got {text!r}")
        return parsed

    return value


def tcp_address(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT`, or `:PORT` / `PORT` for loopback; checked before the server starts."""
    host, _, port = value.rpartition(":")
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port from 1 to 65535, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _setup_logging(args: argparse.Namespace) -> None:
    from .lsp.client_log import withhold_pygls_details

    handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    handler.addFilter(withhold_pygls_details)
    if args.command == "serve" and not args.log_file:
        handler.setLevel(logging.WARNING)  # the rest goes to the editor: see cmd_serve
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO), handlers=[handler],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace) -> NoReturn:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # before transformers reads it: no bars on stderr
    from .lsp.client_log import ClientLogHandler, not_a_stale_cancel, withhold_pygls_details
    from .lsp.server import create_server

    server = create_server(settings_from_args(args))
    logging.getLogger("pygls.protocol.json_rpc").addFilter(not_a_stale_cancel)
    if not args.log_file:
        client_log = ClientLogHandler(server)
        client_log.addFilter(withhold_pygls_details)
        logging.getLogger().addHandler(client_log)
    if args.tcp:
        host, port = args.tcp
        if host not in LOOPBACK:
            logging.warning("listening on %s: not loopback, anyone who can reach this port can read completions", host)
        from .lsp.tcp import default_token_file, make_token, serve_tcp

        token_file = Path(args.token_file) if args.token_file else default_token_file(port)
        token = make_token(token_file)
        print(f"speclsp: clients must send initializationOptions.token; it is in {token_file}", file=sys.stderr)
        serve_tcp(server, host, port, token)
    else:
        server.start_io()
    _end_process(server.exit_code)


def _end_process(code: int) -> NoReturn:
    """End the server process now that the session is over.

    Threads may still be blocked in a read of stdin or in a model forward that cannot be
    interrupted, and tearing down an interpreter with torch loaded takes seconds: editors kill a
    server that lingers after `exit` (VS Code after 2 s) and a lingering one holds the GPU."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a client that closed the pipe
            stream.flush()
    os._exit(code)


def cmd_complete(args: argparse.Namespace) -> int:
    from .engine.models import ModelError
    from .lsp.documents import PositionError, cursor_context
    from .service import CompletionService

    try:
        source = Path(args.path).read_text(encoding="utf-8", errors="surrogateescape")
        ctx = cursor_context(source, args.line, args.character, "utf-32")
    except (OSError, PositionError) as e:
        print(f"speclsp: {e}", file=sys.stderr)
        return 2
    service = CompletionService(settings_from_args(args))
    try:
        service.load()
    except ModelError as e:
        print(f"speclsp: {e}", file=sys.stderr)
        return 3
    for notice in service.notices:
        print(f"speclsp: {notice}", file=sys.stderr)
    completion = service.complete(ctx, Path(args.path).resolve().as_uri())
    if args.json:
        print(json.dumps({"text": completion.text, "stats": completion.stats}))
    else:
        print(completion.text)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .tools.doctor import report

    out = report(settings_from_args(args), load=not args.no_load)
    print(json.dumps(out, indent=1))
    return 3 if "error" in out else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .tools.demo import run_demo

    return run_demo(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    return run_bench(args)


def cmd_pull(args: argparse.Namespace) -> int:
    from .tools.pull import pull

    return pull(args)


def _stay_offline() -> None:
    """Only `pull` downloads. Models are already read with local_files_only (engine/models.py); with
    this the Hugging Face libraries refuse the network too, in this process and the ones it starts."""
    os.environ["HF_HUB_OFFLINE"] = "1"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speclsp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the language server (stdio by default)")
    p.add_argument("--tcp", metavar="HOST:PORT", type=tcp_address,
                   help="listen on TCP instead of stdio (loopback unless a host is given)")
    p.add_argument("--token-file", help="with --tcp: where to write the secret clients must send "
                   "(default: $XDG_RUNTIME_DIR or ~/.cache, then speclsp/tcp-PORT.token; 0600)")
    p.add_argument("--stdio", action="store_true", help="accepted for clients that pass it; stdio is the default")
    _model_options(p)
    p.set_defaults(fn=cmd_serve)
    p = sub.add_parser("complete", help="compute one completion in a file at a 0-based position")
    p.add_argument("path")
    p.add_argument("--line", type=int, required=True)
    p.add_argument("--character", type=int, required=True, help="0-based, in characters (code points)")
    p.add_argument("--json", action="store_true", help="print {\"text\": ..., \"stats\": {...}}")
    _model_options(p)
    p.set_defaults(fn=cmd_complete)
    p = sub.add_parser("doctor", help="report device, memory, versions and which models are found")
    p.add_argument("--no-load", action="store_true", help="do not load the models to time them")
    _model_options(p)
    p.set_defaults(fn=cmd_doctor)
    p = sub.add_parser("demo", help="run the server on a sample file and show completions as you would see them")
    p.add_argument("--file", help="a Python file to type in (default: the packaged sample)")
    _model_options(p)
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("bench", help="benchmarks; prints JSON")
    p.add_argument("suite", nargs="?", default="cpu", help="cpu | gpu | replay | wait | quality")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--small", action="store_true", help="gpu suite: scaled-down shapes (runs on a CPU)")
    p.add_argument("--file", help="replay suite: the file to type (default: a held-out standard-library file)")
    p.add_argument("--pair", action="append", metavar="NAME=DIR", help="quality suite: a model pair to measure, "
                   "DIR holding target/ and draft/ (repeatable; default: the embedded demo pair)")
    p.add_argument("--heldout", metavar="LISTING", help="quality suite: the heldout.json of the files to cut "
                   "holes from (default: the demo pair's); for several pairs, one whose files none trained on")
    _model_options(p)
    p.set_defaults(fn=cmd_bench)
    p = sub.add_parser("pull", help="download models into the Hugging Face cache (the one command that needs "
                                    "the network); default: CodeLlama-7b and AMD-Llama-135m-code")
    p.add_argument("repos", nargs="*", metavar="OWNER/NAME", help="Hugging Face ids to download instead of the pair")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-file")
    p.set_defaults(fn=cmd_pull)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "pull":
        _stay_offline()
    _setup_logging(args)
    return args.fn(args)
