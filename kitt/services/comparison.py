"""Compare a results directory with a baseline directory (`kitt compare`, `kitt ci report`).

Reads every run below each directory through the ResultStore port and hands them to the pure
comparison (kitt/domain/compare.py). A baseline directory that does not exist or holds no
results is not an error (the documented CI workflow downloads the baseline artifact with
continue-on-error): the comparison then says `baseline_found=False`. A current directory that
does not exist, holds no results, or holds an invalid metrics.json is a ResultFileError.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from kitt.domain.compare import DEFAULT_RESAMPLES, compare, threshold_names
from kitt.domain.comparison import Comparison, RunData
from kitt.domain.errors import ResultFileError, UsageError
from kitt.domain.records import RequestRecord
from kitt.domain.results import RunConfig
from kitt.ports import ResultStore

_NO_THRESHOLDS: Mapping[str, float] = MappingProxyType({})


def parse_thresholds(values: Iterable[str]) -> dict[str, float]:
    """Parse `--threshold METRIC=PCT` values (PCT may end in %; for error_rate it is in
    percentage points). A later value for the same metric wins. UsageError names a bad value."""
    known = threshold_names()
    thresholds: dict[str, float] = {}
    for value in values:
        metric, sep, number = value.partition("=")
        metric = metric.strip()
        if not sep or not metric:
            raise UsageError(
                f"--threshold {value!r}: expected METRIC=PCT, for example ttft_ms.p99=10"
            )
        if metric not in known:
            raise UsageError(
                f"--threshold {value!r}: unknown metric {metric!r}; known: {', '.join(known)}"
            )
        text = number.strip().removesuffix("%").strip()
        try:
            pct = float(text)
        except ValueError:
            pct = math.nan
        # 0 is allowed: any statistically supported change then counts.
        if not math.isfinite(pct) or pct < 0:
            raise UsageError(
                f"--threshold {value!r}: the threshold must be a number of percent >= 0"
            )
        thresholds[metric] = pct
    return thresholds


class ComparisonService:
    """Loads the runs below two directories and compares them."""

    def __init__(self, store: ResultStore) -> None:
        self._store = store

    def compare(
        self,
        current_dir: Path,
        baseline_dir: Path | None,
        *,
        thresholds: Mapping[str, float] = _NO_THRESHOLDS,
        alpha: float = 0.05,
        seed: int = 0,
        resamples: int = DEFAULT_RESAMPLES,
    ) -> Comparison:
        """Compare the runs below `current_dir` with those below `baseline_dir` (None: no
        baseline). Raises ResultFileError when the current side has no readable results."""
        if not current_dir.is_dir():
            raise ResultFileError(
                f"results directory {current_dir} does not exist: pass the directory "
                "`kitt run -o DIR` wrote"
            )
        current = self.load_runs(current_dir)
        if not current:
            raise ResultFileError(
                f"no results in {current_dir}: no metrics.json there or below "
                f"(`kitt run -o {current_dir}` writes one)"
            )
        baseline = self.load_runs(baseline_dir) if baseline_dir is not None else []
        return compare(current, baseline, thresholds=thresholds, alpha=alpha, seed=seed,
                       resamples=resamples)

    def load_runs(self, directory: Path) -> list[RunData]:
        """Every run at or below `directory` ([] when there is none, or no such directory).
        An invalid metrics.json raises ResultFileError; a missing or unreadable config.json or
        requests.jsonl only leaves a note (the comparison then uses default thresholds, or
        cannot test some metrics of runs with fewer than 3 repetitions)."""
        runs = []
        for run_dir in self._store.find_runs(directory):
            metrics = self._store.load_metrics(run_dir)
            notes: list[str] = []
            config: RunConfig | None = None
            try:
                config = self._store.load_config(run_dir)
            except ResultFileError as exc:
                notes.append(f"config.json not used ({exc}): default thresholds apply")
            requests: list[RequestRecord] = []
            try:
                requests = list(self._store.load_requests(run_dir))
            except ResultFileError as exc:
                notes.append(f"requests.jsonl not used ({exc}): no per-request samples")
            runs.append(RunData(directory=str(run_dir), metrics=metrics, config=config,
                                requests=requests, notes=notes))
        return runs
