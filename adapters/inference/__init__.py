"""inference adapters."""
