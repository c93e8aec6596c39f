"""`python -m lsp_server` is the `speclsp` command."""

from .cli import main

raise SystemExit(main())
