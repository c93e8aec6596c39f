"""editors tests."""
