"""`speclsp pull`: download the real pair into the Hugging Face cache, with a progress bar.

Only safetensors weights, configs and tokenizer files are fetched (no pickled weights, no code).
Afterwards the server and the CLI find the pair by themselves: the default resolution looks in
the Hugging Face cache before falling back to the embedded demo models.
"""

from __future__ import annotations

import sys

from .config import DEFAULT_DRAFT, DEFAULT_TARGET

PATTERNS = ["*.json", "*.safetensors", "tokenizer.model"]


def pull(args) -> int:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        print("speclsp pull needs huggingface_hub: pip install 'speclsp[pull]'", file=sys.stderr)
        return 2
    for repo in (DEFAULT_TARGET, DEFAULT_DRAFT):
        print(f"downloading {repo} ...", file=sys.stderr)
        try:
            path = snapshot_download(repo, allow_patterns=PATTERNS)  # shows tqdm progress bars
        except Exception as e:
            print(f"speclsp: could not download {repo}: {type(e).__name__}: {e}\n"
                  "Check the network, or download the model elsewhere and set speclsp.target/draft to its "
                  "directory.", file=sys.stderr)
            return 1
        print(f"{repo}: {path}", file=sys.stderr)
    print("done: restart the server (or your editor) to use CodeLlama-7b with the AMD draft.", file=sys.stderr)
    return 0
