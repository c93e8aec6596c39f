"""engine tests."""
