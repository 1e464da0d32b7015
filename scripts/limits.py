"""The matrix's outer axes: CPU limits as compose services name them, and Python builds.

A limit is named by what it sets: ``cpus-<CPUs>`` is a CFS quota (docker only: a quota needs a
cgroup), ``cpuset-<CPU numbers joined by '-'>`` a CPU set (both backends), ``unlimited`` none; a
cluster shape ``WORKERSxcpus-LIMIT`` is that many dask worker containers of that quota. Each
:class:`Limit` checks that a run's recorded machine info shows it (scripts/matrix.py runs them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scripts.results import ResultsError, load_file


class MatrixError(ResultsError):
    """The matrix cannot start; one line for the user (exit code 2)."""


@dataclass(frozen=True)
class Limit:
    """A CPU limit as its service name states it."""

    name: str
    quota: float | None = None
    cpuset: frozenset[int] | None = None
    cluster_workers: int | None = None  # a dask cluster shape WORKERSxcpus-LIMIT: that many worker containers
    python: str | None = None  # the Python build of its image (--pythons); None: the one image's own

    @property
    def label(self) -> str:
        """What the run is labelled and its results folder is called: the limit, and the build if chosen."""
        return self.name if self.python is None else f"{self.name}-py{self.python}"

    @property
    def image(self) -> str | None:
        return None if self.python is None else f"poolbench:py{self.python}"

    @classmethod
    def parse_cluster(cls, shape: str) -> Limit:
        """``2xcpus-1``: two dask worker containers of one CPU each (and a client of one CPU)."""
        m = re.fullmatch(r"(\d+)x(cpus-\d+(?:\.\d+)?)", shape)
        if not m or not 1 <= int(m.group(1)) <= 64:
            raise MatrixError(
                f"--cluster: {shape!r} is not a cluster shape; give WORKERSxcpus-LIMIT such as 2xcpus-1 "
                "(1 to 64 workers, each with that CPU quota)"
            )
        return cls(shape, quota=cls.parse(m.group(2)).quota, cluster_workers=int(m.group(1)))

    @classmethod
    def parse(cls, name: str) -> Limit:
        if name == "unlimited":
            return cls(name)
        if m := re.fullmatch(r"cpus-(\d+(?:\.\d+)?)", name):
            return cls(name, quota=float(m.group(1)))
        if m := re.fullmatch(r"cpuset-(\d+(?:-\d+)*)", name):
            return cls(name, cpuset=frozenset(int(c) for c in m.group(1).split("-")))
        raise MatrixError(
            f"service {name!r} does not say its limit; name it cpus-<CPUs>, cpuset-<CPU numbers joined by '-'> "
            "or unlimited"
        )

    def problem(self, info: dict) -> str | None:
        """Why the recorded machine info does not show this limit (None: it does)."""
        checks = [
            (info.get("label") != self.label, f"results are labelled {info.get('label')!r}, not {self.label!r}"),
            (
                self.python is not None and info.get("python_build") != self.python,
                f"results record Python {info.get('python_build')!r}, expected {self.python}",
            ),
            (
                self.quota is not None and info.get("cpu_quota") != self.quota,
                f"results record a CPU quota of {info.get('cpu_quota')}, expected {self.quota or 0:g}",
            ),
            (
                self.cpuset is not None and info.get("affinity_cpus") != len(self.cpuset or ()),
                f"results record {info.get('affinity_cpus')} CPUs of affinity, expected {len(self.cpuset or ())}",
            ),
        ]
        for failed, why in checks:
            if failed:
                return why
        return self._cluster_problem(info) if self.cluster_workers is not None else None

    def _cluster_problem(self, info: dict) -> str | None:
        dask = info.get("dask") or {}
        if dask.get("workers") != self.cluster_workers:
            return f"results record a cluster of {dask.get('workers')} workers, expected {self.cluster_workers}"
        quotas = {w.get("cpu_quota") for w in dask.get("worker_info") or []}
        if quotas != {self.quota}:
            return f"the cluster's workers record CPU quotas {sorted(map(str, quotas))}, expected {self.quota or 0:g}"
        return None


#: Python builds scripts.matrix --pythons knows how to make an image of (docker/python-image.sh).
PYTHON_BUILDS = ("3.11", "3.13", "3.13t", "3.14", "3.14t", "3.15", "3.15t")


def parse_pythons(text: str) -> tuple[str, ...]:
    """``--pythons``: a comma list of builds, in the order given, without repeats."""
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or not all(names):
        raise MatrixError(f"--pythons: empty value {text!r}; give a comma list such as 3.11,3.13t,3.14")
    for n in names:
        if n not in PYTHON_BUILDS:
            raise MatrixError(f"--pythons: unknown build {n!r}; choose from {', '.join(PYTHON_BUILDS)}")
    return tuple(dict.fromkeys(names))


def requirements_for(build: str) -> str:
    """The pinned lists an image of ``build`` installs (docker/Dockerfile's REQUIREMENTS)."""
    if build.endswith("t"):  # no free-threaded wheels yet for the plotting stack; the suite needs none of it
        return "requirements-measure.txt"
    if build == "3.15":  # NumPy's first 3.15 wheel, and no plotting stack (requirements-py315.txt says why)
        return "requirements-py315.txt"
    return "requirements.txt requirements-cluster.txt"


def select(available: list[str], wanted: str | None, backend: str) -> list[Limit]:
    limits = [Limit.parse(name) for name in available]
    runnable = [lim for lim in limits if backend == "docker" or lim.quota is None]
    if wanted is None:
        return runnable
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    if not names:
        raise MatrixError(f"--limits: empty value {wanted!r}; give a comma list such as cpus-1,cpuset-0")
    by_name = {lim.name: lim for lim in limits}
    chosen = []
    for n in names:
        if n not in by_name:
            raise MatrixError(f"--limits: unknown {n!r}; choose from {', '.join(available)}")
        if by_name[n].quota is not None and backend == "affinity":
            raise MatrixError(f"--limits: {n} is a CPU quota, which needs cgroups; use --backend docker")
        chosen.append(by_name[n])
    return chosen


def builds_lines(outcome: Sequence[tuple[str, Any]]) -> list[str]:
    """Across Python builds: each executor a build left out, with why, and the builds that ran it.

    ``outcome``: (limit, scripts.matrix Outcome) per run. Read from the results (machine_info
    ``skipped_executors`` and ``config.executors``); one line per such executor, so a user sees where
    the pool was measured, not only where it was not.
    """
    ran: dict[str, list[str]] = {}
    skipped: dict[str, dict[str, str]] = {}
    for _, result in outcome:
        if result.status != "ok":
            continue
        try:
            info = load_file(result.results)[0].run.poolbench
        except (ResultsError, IndexError):
            continue
        build = str(info.get("python_build"))
        for name in (info.get("config") or {}).get("executors") or []:
            ran.setdefault(name, []).append(build)
        for left in info.get("skipped_executors") or []:
            skipped.setdefault(str(left.get("executor")), {})[build] = str(left.get("why"))
    lines = []
    for name, why in skipped.items():
        where = list(dict.fromkeys(ran.get(name, [])))
        lines.append(
            f"matrix: {name} left out of "
            + "; ".join(f"py{b} ({w})" for b, w in why.items())
            + (f"; it ran on {', '.join(f'py{b}' for b in where)}" if where else "; no build ran it")
        )
    return lines
