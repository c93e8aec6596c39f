"""The engine: token ids in, token ids and stats out; the only place that imports torch (see api.py)."""
