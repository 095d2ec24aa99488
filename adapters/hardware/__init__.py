"""hardware adapters."""
