"""The A/B gate's statistics (scripts/ab.py): a metric key's pairs and their ratio, and the bars an A/A spread
sets, per metric and per key, after any number of pairs (scripts/ab_noise.py writes the spreads)."""

from __future__ import annotations

import dataclasses
import math
import statistics

from common.stats import t_quantile
from scripts.gating import Metric


@dataclasses.dataclass
class Series:
    """One metric key's figures pair by pair: BASE's value, HEAD's, and their log ratio."""

    metric: Metric
    key: str
    members: int
    base: list[float] = dataclasses.field(default_factory=list)
    head: list[float] = dataclasses.field(default_factory=list)

    @property
    def logs(self) -> list[float]:
        return [math.log(h / b) for b, h in zip(self.base, self.head, strict=True)]

    def estimate(self, confidence: float, pairs: int | None = None) -> tuple[float, float, float]:
        """(ratio, low, high) from the first ``pairs`` pairs: the geometric mean and its t interval."""
        logs = self.logs[:pairs]
        mean = statistics.fmean(logs)
        if len(logs) < 2:
            return math.exp(mean), 0.0, math.inf
        half = t_quantile(1 - (1 - confidence) / 2, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
        return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def bars_at(body: dict, pairs: int) -> dict[str, float]:
    """Each metric's bar after ``pairs`` pairs: a bars file of A/A runs (``kind`` "ab") measured the spread
    after ``at_pairs`` pairs; a mean of ``pairs`` independent pairs spreads sqrt(at_pairs / pairs) as much,
    and the bar stays Z of those spreads. Any other bars (fixed, or the two-file gate's) hold as given."""
    if body.get("kind") != "ab" or pairs <= 0:
        return dict(body["bars"])
    at, z = int(body["at_pairs"]), float(body["z"])
    return {m: math.expm1(z * float(body["spread"][m]) * math.sqrt(at / pairs)) for m in body["bars"]}


def key_quantile(estimates: int) -> float:
    """How many of its A/A spreads a key's bar is (scripts/ab_noise.py): Student's t, one-sided 0.1 %, with one
    degree of freedom per estimate behind the spread."""
    return t_quantile(1 - 0.001, max(1, estimates))


def key_bars_at(body: dict, pairs: int) -> dict[tuple[str, str], tuple[float, int | None]]:
    """Each key's bar after ``pairs`` pairs and its members, for the keys a bars file of A/A runs measured (its
    ``key_spread``): ``exp(t × spread × sqrt(at_pairs / pairs)) − 1``, t from :func:`key_quantile`. Empty for any
    other file."""
    if body.get("kind") != "ab" or pairs <= 0:
        return {}
    at = int(body["at_pairs"])
    return {
        (metric, key): (
            math.expm1(key_quantile(int(entry[1])) * float(entry[0]) * math.sqrt(at / pairs)),
            int(entry[3]) if len(entry) > 3 else None,
        )
        for metric, keys in (body.get("key_spread") or {}).items()
        for key, entry in keys.items()
    }


#: The per-case metric whose A/A spread weighs each member of a grouped metric: a case's time in a workload's
#: work index, its speedup in a pool's scaling index.
MEMBER_METRIC = {"work": "time", "index": "speedup"}


def member_weights(body: dict) -> dict[str, dict[str, float]]:
    """Per grouped metric, each case's weight in its keys: one over its A/A spread squared (the bars file's
    ``key_spread`` of :data:`MEMBER_METRIC`), so an index is the least-noisy mean of its members (inverse-variance
    weighting: a process pool's two-worker rounds spread 2 to 3 times a one-worker round's in the evidence's A/A
    runs, and an equal mean let them set the index's noise). Only a bars file that says its own spreads were
    taken so (``weighted``) gives weights: every other file's keys stay equal means, as they were measured."""
    if body.get("kind") != "ab" or not body.get("weighted"):
        return {}
    spreads = body.get("key_spread") or {}
    return {
        grouped: {case: 1.0 / entry[0] ** 2 for case, entry in spreads.get(per_case, {}).items() if entry[0] > 0}
        for grouped, per_case in MEMBER_METRIC.items()
    }


def shares(weights: dict[str, dict[str, float]] | None, metric: str, names: list[str]) -> list[float]:
    """Each named member's share of its key's mean (summing to 1): its weight where :func:`member_weights` has one
    for every member, else equal shares (a case the A/A runs never measured has no spread to weigh it by)."""
    own = (weights or {}).get(metric, {})
    if names and all(n in own for n in names):
        total = sum(own[n] for n in names)
        return [own[n] / total for n in names]
    return [1.0 / len(names)] * len(names)
