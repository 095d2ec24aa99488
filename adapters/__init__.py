"""kitt's adapters: engines, inference client, hardware probes, storage and forges.

The package name is generic, so kitt checks this sentinel at start-up (kitt/container.py) to be
sure that `import adapters` found kitt's own package and not another distribution's.
"""

KITT_ADAPTERS_SENTINEL = "kitt-bench adapters"
