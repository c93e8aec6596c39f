"""The editor edge: LSP over stdio or TCP, the documents the editor syncs, and the items it shows."""
