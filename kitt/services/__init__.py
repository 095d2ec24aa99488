"""Use cases: run a suite, list suites; later set up engines and publish CI reports."""
