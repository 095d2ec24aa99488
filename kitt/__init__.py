"""kitt: benchmark LLM inference engines and report regressions on pull requests."""

__version__ = "0.1.0"
