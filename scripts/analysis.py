"""One analysis per invocation: the loader's records become scaling points with their intervals once.

Every tool (report, plot, claims, compare, agreement, export, evidence) reads an :class:`Analysis`
instead of recomputing: the 4000-resample bootstrap behind each interval is drawn once per record,
and the same draws give the report's interval and the gate's.

    records (scripts/results.py) ──► Analysis ──► points, draws, per-run views ──► report · plot · claims · compare

A record's draws are seeded by its results file's name and its case name (scripts/metrics.py
``seeded``), so the same file gives the same interval in any checkout, in any tool.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.reference import Estimate
from scripts.metrics import ScalingPoint, estimate_draws, record_medians, run_checks, scaling_points, seeded
from scripts.results import Record, Run


@dataclass(frozen=True)
class RunView:
    """One run's records and points, out of an analysis."""

    records: list[Record]
    points: list[ScalingPoint]

    @property
    def run(self) -> Run:
        return self.records[0].run


class Analysis:
    """The records of one invocation and what is derived from them, each computed once."""

    def __init__(self, records: Iterable[Record], *, salt: str = "") -> None:
        """``salt`` tells apart two analyses whose files share a name (a gate's two sides), so their
        draws are independent."""
        self.records: list[Record] = list(records)
        self.salt = salt
        self._draws: dict[int, np.ndarray] = {}
        self._medians: dict[int, np.ndarray] = {}
        self.points: list[ScalingPoint] = scaling_points(self.records, draws=self.speedup_draws)
        by_source: dict[str, list[Record]] = {}
        for r in self.records:
            by_source.setdefault(r.run.source, []).append(r)
        points: dict[str, list[ScalingPoint]] = {}
        for p in self.points:
            points.setdefault(p.source, []).append(p)
        #: One view per run, the run with the most effective CPUs first (as the report lists them).
        self.runs: list[RunView] = sorted(
            (RunView(rs, points.get(source, [])) for source, rs in by_source.items()),
            key=lambda v: -v.run.effective_cpus,
        )
        self._by_record = {(p.source, p.workload, p.pool, p.workers): p for p in self.points}

    def _seed(self, kind: str, r: Record) -> np.random.Generator:
        # seeded by the file's name, not its path: the same file gives the same interval in any checkout
        return seeded(f"{self.salt}{kind}{Path(r.run.source).name}:{r.name}")

    def speedup_draws(self, pool: Record, estimate: Estimate) -> np.ndarray:
        """Draws of a pool's speedup from its estimate (drawn once per pool record: scaling_points asks
        once per pool)."""
        key = id(pool)
        if key not in self._draws:
            self._draws[key] = estimate_draws(estimate, self._seed("", pool))
        return self._draws[key]

    def draws_of(self, pool: Record) -> np.ndarray:
        """The speedup draws behind a pool record's point (one that :meth:`point_of` finds)."""
        return self._draws[id(pool)]

    def medians(self, r: Record) -> np.ndarray:
        """Bootstrap draws of a record's median round (drawn once per record)."""
        key = id(r)
        if key not in self._medians:
            self._medians[key] = record_medians(r, self._seed("median:", r))
        return self._medians[key]

    def point_of(self, r: Record) -> ScalingPoint | None:
        """The scaling point of a scaling record (None: not one, or no serial baseline in its run)."""
        return self._by_record.get((r.run.source, r.workload, r.pool, r.workers))

    def points_of(self, records: Iterable[Record]) -> list[ScalingPoint]:
        """The points of the runs ``records`` belong to (records of this analysis)."""
        sources = {r.run.source for r in records}
        return [p for p in self.points if p.source in sources]

    def defects(self, view: RunView) -> list[tuple[str, Estimate, float]]:
        """One run's measurement defects (scripts/metrics.py ``run_checks``), as the terminal names them."""
        return run_checks(view.points)

    @functools.cached_property
    def evidence(self) -> dict[str, object]:
        """Per run (by source), its claims' Evidence (scripts/claims.py), built on first use."""
        from scripts.claims import Evidence  # noqa: PLC0415  (claims reads this module)

        return {v.run.source: Evidence(v.records, v.points) for v in self.runs}
