"""engine adapters."""
