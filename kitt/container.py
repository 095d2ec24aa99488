"""The composition root: the ONLY module of kitt that imports adapters.

Tests replace providers with fakes: `container.engines.override(providers.Dict(...))`.
"""

from __future__ import annotations

import adapters
from kitt.domain.errors import InstallationError

# `adapters` is a generic top-level name; make sure the one imported is kitt's before wiring it.
if getattr(adapters, "KITT_ADAPTERS_SENTINEL", None) != "kitt-bench adapters":
    raise InstallationError(
        f"the 'adapters' package imported from {getattr(adapters, '__file__', '?')} is not "
        "kitt's own (another installed distribution or a local directory named 'adapters' "
        "shadows it): run kitt from another directory or in its own virtual environment"
    )

from dependency_injector import containers, providers

from adapters.engine.external import ExternalEngine
from adapters.engine.simulated import SimulatedEngine
from adapters.hardware.host import HostProbe
from adapters.inference.openai_client import HttpxInferenceClient
from adapters.storage.filesystem import FilesystemStore
from kitt.services.benchmark import BenchmarkService
from kitt.services.suites import SuiteCatalog


class Container(containers.DeclarativeContainer):
    hardware_probe = providers.Singleton(HostProbe)
    result_store = providers.Singleton(FilesystemStore)
    # A factory of clients, called by the service with the endpoint and pool size of a scenario.
    inference_client_factory = providers.Object(HttpxInferenceClient)
    engines = providers.Dict(
        simulated=providers.Singleton(SimulatedEngine),
        external=providers.Singleton(ExternalEngine),
    )
    suite_catalog = providers.Singleton(SuiteCatalog)

    benchmark_service = providers.Factory(
        BenchmarkService,
        engines=engines,
        client_factory=inference_client_factory,
        store=result_store,
        hardware=hardware_probe,
        suites=suite_catalog,
    )
