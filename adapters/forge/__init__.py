"""forge adapters."""
