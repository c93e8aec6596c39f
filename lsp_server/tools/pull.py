"""`speclsp pull`: download models into the Hugging Face cache, with a progress bar.

The one command that uses the network: the server and the other commands only read the cache.
With no argument it fetches the real pair; `speclsp pull OWNER/NAME ...` fetches the ids given
(the server's "not in the local cache" message names this command with the id).
Only safetensors weights, configs and tokenizer files are fetched (no pickled weights, no code).
Afterwards the server and the CLI find the pair by themselves: the default resolution looks in
the Hugging Face cache before falling back to the embedded demo models.
"""

from __future__ import annotations

import sys

from ..engine.api import DEFAULT_DRAFT, DEFAULT_TARGET

PATTERNS = ["*.json", "*.safetensors", "tokenizer.model"]


def pull(args) -> int:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        print("speclsp pull needs huggingface_hub: pip install 'speclsp[pull]'", file=sys.stderr)
        return 2
    repos = args.repos or [DEFAULT_TARGET, DEFAULT_DRAFT]
    for repo in repos:
        print(f"downloading {repo} ...", file=sys.stderr)
        try:
            path = snapshot_download(repo, allow_patterns=PATTERNS)  # shows tqdm progress bars
        except Exception as e:
            print(f"speclsp: could not download {repo}: {type(e).__name__}: {e}\n"
                  "Check the network, or download the model elsewhere and set speclsp.target/draft to its "
                  "directory.", file=sys.stderr)
            return 1
        print(f"{repo}: {path}", file=sys.stderr)
    if args.repos:
        print("done: set speclsp.target/draft (or --target/--draft) to the id and restart the server.",
              file=sys.stderr)
    else:
        print("done: restart the server (or your editor) to use CodeLlama-7b with the AMD draft.", file=sys.stderr)
    return 0
