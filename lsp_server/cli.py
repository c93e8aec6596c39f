"""Command line: serve, complete, doctor, demo, bench, pull.

Logs go to stderr or a file, never stdout: in `serve` stdout is the LSP channel and in
`complete --json` it carries one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .config import Settings, settings_from_lsp

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
    g.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    g.add_argument("--log-file", help="write the log here instead of stderr")


def settings_from_args(args: argparse.Namespace) -> Settings:
    keys = ("target", "draft", "device", "dtype", "maxTokens", "contextTokens", "temperature", "fimOrder",
            "draftLength", "speculative", "prefixCache")
    options = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    settings, problems = settings_from_lsp(options)
    for problem in problems:
        print(f"speclsp: {problem}", file=sys.stderr)
    return settings


def _setup_logging(args: argparse.Namespace) -> None:
    handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO), handlers=[handler],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import create_server

    server = create_server(settings_from_args(args))
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if host not in LOOPBACK:
            logging.warning("listening on %s: not loopback, anyone who can reach this port can read completions", host)
        server.start_tcp(host, int(port))
    else:
        server.start_io()
    server.scheduler.close()
    return 0


def cmd_complete(args: argparse.Namespace) -> int:
    from .documents import PositionError, cursor_context
    from .engine.models import ModelError
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
    from .doctor import report

    print(json.dumps(report(settings_from_args(args), load=not args.no_load), indent=1))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    return run_bench(args)


def cmd_pull(args: argparse.Namespace) -> int:
    from .pull import pull

    return pull(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speclsp", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the language server (stdio by default)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio (loopback unless a host is given)")
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
    p.add_argument("suite", nargs="?", default="cpu", help="cpu | gpu | replay | wait")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--small", action="store_true", help="gpu suite: scaled-down shapes (runs on a CPU)")
    p.add_argument("--file", help="replay suite: the file to type (default: a held-out standard-library file)")
    _model_options(p)
    p.set_defaults(fn=cmd_bench)
    p = sub.add_parser("pull", help="download CodeLlama-7b and AMD-Llama-135m-code (needs the network)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-file")
    p.set_defaults(fn=cmd_pull)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args)
    return args.fn(args)
