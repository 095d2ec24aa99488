"""kitt's pure core: the model of benchmarks, workloads, metrics and results.

Only the standard library and msgspec may be imported here (see tests/unit/test_architecture.py).
"""
