"""speclsp: code completion over LSP from a local code model, with speculative decoding."""

__version__ = "0.1.0"
