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

from collections.abc import Callable, Iterator, Mapping

from dependency_injector import containers, providers

from adapters.engine.external import ExternalEngine
from adapters.engine.simulated import SimulatedEngine
from adapters.hardware.host import HostProbe
from adapters.inference.openai_client import HttpxInferenceClient
from adapters.report.markdown import MarkdownReportRenderer
from adapters.storage.filesystem import FilesystemStore
from kitt.ports import Engine, EngineAdmin, ModelResolver, VcsHost
from kitt.services.benchmark import BenchmarkService
from kitt.services.catalogue import load_catalogue
from kitt.services.ci_report import CiReportService
from kitt.services.comparison import ComparisonService
from kitt.services.engines import EngineService
from kitt.services.suites import SuiteCatalog


def make_vcs_host(
    *,
    forge: str,
    api_url: str | None,
    token: str,
    repo: str,
    number: int,
    job_token: bool = False,
) -> VcsHost:
    """The VcsHostFactory: the forge adapter for one pull/merge request. The adapters (and
    httpx's client setup) are imported only when a report is posted."""
    if forge == "github":
        from adapters.forge.github import GitHubHost

        if api_url is None:
            return GitHubHost(token=token, repo=repo, number=number)
        return GitHubHost(token=token, repo=repo, number=number, api_url=api_url)
    if forge == "gitlab":
        from adapters.forge.gitlab import GitLabHost

        if api_url is None:
            return GitLabHost(token=token, project=repo, mr_iid=number, job_token=job_token)
        return GitLabHost(token=token, project=repo, mr_iid=number, api_url=api_url,
                          job_token=job_token)
    if forge == "gitea":
        from adapters.forge.gitea import GiteaHost

        if api_url is None:
            raise ValueError("Gitea has no public default API URL")
        return GiteaHost(token=token, repo=repo, number=number, api_url=api_url)
    raise ValueError(f"unknown forge {forge!r}")


# Docker and native engines, and the model cache, are imported only when used: the docker SDK
# and process machinery cost start-up time that `kitt run -e simulated` should not pay.
def _docker_engine() -> Engine:
    from adapters.engine.docker import DockerEngine

    return DockerEngine()


def _docker_admin() -> EngineAdmin:
    from adapters.engine.docker import DockerAdmin

    return DockerAdmin()


def _native_engine() -> Engine:
    from adapters.engine.native import NativeEngine

    return NativeEngine()


def _native_admin() -> EngineAdmin:
    from adapters.engine.native import NativeAdmin

    return NativeAdmin()


def _model_resolver() -> ModelResolver:
    from adapters.models import CachedModels

    return CachedModels()


class _Lazy(Mapping[str, Engine]):
    """The engine adapters by mode, each created on first use."""

    def __init__(self, **factories: Callable[[], Engine]) -> None:
        self._factories = factories
        self._made: dict[str, Engine] = {}

    def __getitem__(self, mode: str) -> Engine:
        if mode not in self._made:
            self._made[mode] = self._factories[mode]()
        return self._made[mode]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


class Container(containers.DeclarativeContainer):
    hardware_probe = providers.Singleton(HostProbe)
    result_store = providers.Singleton(FilesystemStore)
    # A factory of clients, called by the service with the endpoint and pool size of a scenario.
    inference_client_factory = providers.Object(HttpxInferenceClient)
    # The engine adapter of each mode; tests override this with fakes.
    engines = providers.Singleton(
        _Lazy,
        simulated=providers.Object(SimulatedEngine),
        external=providers.Object(ExternalEngine),
        docker=providers.Object(_docker_engine),
        native=providers.Object(_native_engine),
    )
    engine_admins = providers.Singleton(
        _Lazy, docker=providers.Object(_docker_admin), native=providers.Object(_native_admin)
    )
    model_resolver = providers.Singleton(_model_resolver)
    catalogue = providers.Callable(load_catalogue)
    suite_catalog = providers.Singleton(SuiteCatalog)

    benchmark_service = providers.Factory(
        BenchmarkService,
        engines=engines,
        client_factory=inference_client_factory,
        store=result_store,
        hardware=hardware_probe,
        suites=suite_catalog,
        catalogue=catalogue,
        models=model_resolver,
        admins=engine_admins,
    )
    engine_service = providers.Factory(EngineService, catalogue=catalogue, admins=engine_admins)

    comparison_service = providers.Factory(ComparisonService, store=result_store)
    report_renderer = providers.Singleton(MarkdownReportRenderer)
    # A factory of forge hosts, called by the service with the resolved forge settings.
    vcs_host_factory = providers.Object(make_vcs_host)
    ci_report_service = providers.Factory(
        CiReportService,
        comparer=comparison_service,
        renderer=report_renderer,
        vcs_host_factory=vcs_host_factory,
    )
