"""The one loader of poolbench results: reads pytest-benchmark JSON, validates it, yields tidy records.

Accepts files and folders (searched recursively for ``*.json``): ``.benchmarks/`` autosave storage,
``--benchmark-json`` files, and matrix result folders; and journals (``*.jsonl``, bench/journal.py)
named as files, which hold the cases that finished before a run was killed. Everything a script knows about the results
schema (docs/results-schema.md) is here; plots, reports and comparisons read :class:`Record`.

Files are parsed as JSON only, never unpickled or evaluated. Any problem is a :class:`ResultsError`
whose message is one line naming the file, the problem and the fix.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.executors import Pool
from common.reference import Paired, case_paired
from common.schema import (
    READABLE_VERSIONS,
    REQUIRED_EXTRA,
    REQUIRED_MACHINE,
    SCHEMA_VERSION,
    python_build,
)

# The schema (its version history, the keys every record carries) lives in common/schema.py.


class ResultsError(Exception):
    """Unusable input; ``str()`` is the one line to show."""


@dataclass(frozen=True)
class Run:
    """One results file: where it came from and the conditions it was measured under."""

    source: str
    datetime: str
    label: str
    machine: Mapping[str, Any] = field(repr=False)

    @property
    def poolbench(self) -> Mapping[str, Any]:
        return self.machine["poolbench"]

    @property
    def effective_cpus(self) -> float:
        return float(self.poolbench["effective_cpus"])

    @property
    def python_build(self) -> str:
        """``3.11``, ``3.13t``: recorded since schema 3, else read off the Python version (GIL builds then)."""
        recorded = self.poolbench.get("python_build")
        if recorded:
            return str(recorded)
        return python_build(str((self.poolbench.get("versions") or {}).get("python", "?")))


@dataclass(frozen=True)
class Record:
    """One benchmark of one run, with its per-round samples (seconds)."""

    run: Run
    name: str
    case: str
    workload: str
    kind: str
    gil: str
    executor: str
    variant: str | None
    workers: int
    tasks: int
    chunksize: int
    samples: tuple[float, ...]
    extra: Mapping[str, Any] = field(repr=False)
    #: Rounds per pass, in the order of ``samples`` (schema 5: a point measured in several passes,
    #: :func:`join_passes`); empty for one pass.
    passes: tuple[int, ...] = ()
    #: The counters ``extra`` sums over the passes (:data:`_SUMMED`), each pass's value, in pass order
    #: (None where a pass did not record it); empty for one pass.
    by_pass: Mapping[str, tuple[Any, ...]] = field(default_factory=dict, repr=False)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def fastest(self) -> float:
        """The fastest round: the gates' time of a case (scripts/gating.py ``Metric``)."""
        return min(self.samples)

    @property
    def quartiles(self) -> tuple[float, float]:
        """First and third quartile of the rounds (both equal the sample when there is one round)."""
        if len(self.samples) < 2:
            return self.samples[0], self.samples[0]
        q = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q[0], q[2]

    @property
    def paired(self) -> Paired | None:
        """This case's rounds paired with its serial probes, pass by pass (common/reference.py), or None.

        The probes around the rounds (schema 7), after each round (5-6) or the whole batch after
        each round (2-4): every reader takes the speedup and its intervals from this one pairing.
        """
        return case_paired(self.extra, self.samples, self.tasks, self.passes)

    @property
    def paired_serial(self) -> tuple[float, ...] | None:
        """Serial time of this case's whole batch, per round, at the round's own reference (None: no probes)."""
        pairing = self.paired
        return None if pairing is None else tuple(self.tasks / s for s in pairing.round_references())

    @property
    def pool(self) -> str:
        """The executor as plotted: ``thread``, ``serial``, or ``process/fork`` and the like."""
        return str(Pool(self.executor, self.variant))


def _fail(path: Path, problem: str, fix: str) -> ResultsError:
    return ResultsError(f"{path}: {problem}; {fix}")


def _files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*.json") if p.is_file())
            if not inside:
                raise _fail(path, "no .json results in this folder", "run `pytest bench --benchmark-autosave` first")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise _fail(path, "no such file or folder", "give a results .json file or a folder of them")
    if not found:
        raise ResultsError("no results given; name at least one results file or folder")
    return found


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _fail(path, "not text (binary data)", "give a pytest-benchmark JSON file") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})", "check the path and its permissions") from None
    if not text.strip():
        raise _fail(path, "is empty", "re-run the benchmarks; the run that wrote it did not finish")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(
            path,
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "the file is truncated or not a results file; re-run the benchmarks",
        ) from None


def _label(path: Path, info: Mapping[str, Any]) -> str:
    """A run's CPU-limit label: the matrix's own label if it set one, else the effective CPUs."""
    if isinstance(info.get("label"), str) and info["label"]:
        # A CPU set imposed by affinity alone (no container) says so in its label.
        return info["label"] + (" [affinity]" if info.get("backend") == "affinity" else "")
    cpus = float(info["effective_cpus"])
    return f"{cpus:g} CPU" + ("" if cpus == 1 else "s")


def _samples(path: Path, bench: Mapping[str, Any]) -> tuple[float, ...]:
    stats = bench.get("stats")
    if not isinstance(stats, Mapping):
        raise _fail(path, f"benchmark {bench.get('name')!r} has no stats", "re-run the benchmarks")
    data = stats.get("data")
    if isinstance(data, list) and data and all(isinstance(x, int | float) for x in data):
        return tuple(float(x) for x in data)
    # Without per-round data (saved by other tools) the median stands in for every round.
    if isinstance(stats.get("median"), int | float):
        return (float(stats["median"]),)
    raise _fail(path, f"benchmark {bench.get('name')!r} has no round times", "re-run the benchmarks")


def _read_journal(path: Path) -> list[dict]:
    """The runs of a journal (bench/journal.py) as pytest-benchmark-shaped dicts, one per "run" line.

    A last line that does not parse was being written when the run died: it is skipped. Any other
    line that does not parse makes the journal unusable.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise _fail(path, "not text (binary data)", "give a poolbench journal (.jsonl)") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})", "check the path and its permissions") from None
    runs: list[dict] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # cut short by the kill that ended the run
            raise _fail(
                path, f"line {number} is not JSON", "the journal is damaged; read the finished cases before it"
            ) from None
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "run":
            runs.append(
                {"machine_info": entry.get("machine_info"), "datetime": entry.get("datetime"), "benchmarks": []}
            )
        elif kind == "benchmark" and runs:
            runs[-1]["benchmarks"].append({k: v for k, v in entry.items() if k != "type"})
        else:
            raise _fail(
                path, f"line {number} is not a poolbench journal entry", "give a journal written by `pytest bench`"
            )
    if not any(run["benchmarks"] for run in runs):
        raise _fail(path, "holds no finished case", "the run ended before its first case finished")
    return runs


def load_file(path: Path) -> list[Record]:
    """Validated records of one results file: pytest-benchmark JSON, or a journal (``.jsonl``)."""
    if path.suffix == ".jsonl":
        return [r for i, run in enumerate(_read_journal(path)) for r in _records(path, run, f"#{i + 1}")]
    return _records(path, _read_json(path))


def _records(path: Path, data: Any, part: str = "") -> list[Record]:
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise _fail(path, "not pytest-benchmark JSON (no 'benchmarks' list)", "give a file saved by `pytest bench`")
    machine = data.get("machine_info")
    info = machine.get("poolbench") if isinstance(machine, dict) else None
    if not isinstance(info, dict):
        raise _fail(
            path, "pytest-benchmark JSON, but not from poolbench (no machine_info.poolbench)", "run `pytest bench`"
        )
    version = info.get("schema_version")
    if not isinstance(version, int) or version not in READABLE_VERSIONS:
        raise _fail(path, f"results schema {version!r} is not one this loader reads (<= {SCHEMA_VERSION})", "update")
    missing = [k for k in REQUIRED_MACHINE if k not in info]
    if missing:
        raise _fail(path, f"machine_info.poolbench lacks {missing[0]!r}", "re-run the benchmarks with this version")
    run = Run(
        source=str(path) + part, datetime=str(data.get("datetime", "")), label=_label(path, info), machine=machine
    )

    records = []
    for bench in data["benchmarks"]:
        extra = bench.get("extra_info") if isinstance(bench, dict) else None
        if not isinstance(extra, dict):
            raise _fail(path, "a benchmark without extra_info", "give a file saved by `pytest bench`")
        lacking = [k for k in REQUIRED_EXTRA if k not in extra]
        if lacking:
            raise _fail(path, f"benchmark {bench.get('name')!r} lacks extra_info {lacking[0]!r}", "re-run it")
        try:
            records.append(
                Record(
                    run=run,
                    name=str(bench.get("name")),
                    case=str(extra["case"]),
                    workload=str(extra["workload"]),
                    kind=str(extra["kind"]),
                    gil=str(extra["gil"]),
                    executor=str(extra["executor"]),
                    variant=extra["start_method"],
                    workers=int(extra["workers"]),
                    tasks=int(extra["tasks"]),
                    chunksize=int(extra["chunksize"]),
                    samples=_samples(path, bench),
                    extra=extra,
                )
            )
        except (TypeError, ValueError):
            raise _fail(path, f"benchmark {bench.get('name')!r} has a malformed extra_info", "re-run it") from None
    return join_passes(records)


#: Extra_info keys that add up over a point's passes (the rest are the first pass's).
_SUMMED = (
    "cpu_time_s",
    "minor_faults",
    "cpu_wait_s",
    "steal_s",
    "throttled_periods",
    "throttled_s",
    "case_wall_s",
)


def pass_of(record: Record) -> int:
    value = record.extra.get("pass")
    return value if isinstance(value, int) and value >= 1 else 1


def base_name(name: str) -> str:
    """A benchmark's name without its pass (``test_scaling[cpu_python-thread-w2-p2]`` → ``...-w2]``)."""
    head, sep, tail = name.rpartition("-p")
    if sep and tail.endswith("]") and tail[:-1].isdigit():
        return head + "]"
    return name


def join_passes(records: list[Record]) -> list[Record]:
    """One record per point of one run: the records of its passes (schema 5) joined, in pass order.

    Samples and paired serial probes are concatenated, ``passes`` holds each pass's rounds, the
    counters that add up over rounds are summed and the peak RSS is the largest; the name is the
    first pass's. Records of one pass are returned unchanged.
    """
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(base_name(r.name) if pass_of(r) > 1 else r.name, []).append(r)
    out = []
    for name, group in groups.items():
        if len(group) == 1:
            out.append(group[0])
            continue
        group.sort(key=pass_of)
        first = group[0]
        extra = dict(first.extra)
        by_pass = {}
        for key in _SUMMED:
            values = [g.extra.get(key) for g in group]
            extra[key] = None if any(v is None for v in values) else sum(values)
            by_pass[key] = tuple(values)
        peaks = [g.extra.get("rss_peak_bytes") for g in group if g.extra.get("rss_peak_bytes") is not None]
        extra["rss_peak_bytes"] = max(peaks) if peaks else None
        for key in ("serial_samples_s", "serial_cpu_samples_s"):  # per round, or around them: joined in pass order
            per_pass = [g.extra.get(key) for g in group]
            sizes = [(len(g.samples), len(g.samples) + 1) for g in group]  # after each round, or bracketing them
            if all(isinstance(x, list) and len(x) in n for x, n in zip(per_pass, sizes, strict=True)):
                extra[key] = [v for x in per_pass for v in x]
            else:
                extra.pop(key, None)
        extra["pass"] = [pass_of(g) for g in group]
        out.append(
            dataclasses.replace(
                first,
                name=name,
                samples=tuple(v for g in group for v in g.samples),
                extra=extra,
                passes=tuple(len(g.samples) for g in group),
                by_pass=by_pass,
            )
        )
    return out


def load(paths: Iterable[str | Path]) -> list[Record]:
    """Records of every results file under ``paths``; raises :class:`ResultsError` on the first bad one."""
    records: list[Record] = []
    for path in _files(paths):
        records.extend(load_file(path))
    if not records:
        raise ResultsError(f"{', '.join(map(str, paths))}: results hold no benchmarks; run `pytest bench` first")
    return with_builds_in_labels(records)


def with_builds_in_labels(records: list[Record]) -> list[Record]:
    """Records of several Python builds: each label names its build (``2 CPUs py3.13t``).

    Every reader keys runs, curves and tables by label, so this one step keeps a 3.11 and a 3.13t
    run of the same CPU limit apart everywhere (plots, report, agreement). Labels that already name
    their build (``scripts.matrix --pythons``: ``cpus-1-py3.14``) are kept; one build: no change.
    """
    if len({r.run.python_build for r in records}) < 2:
        return records
    relabelled: dict[int, Run] = {}  # by identity: a Run holds a dict, so it does not hash
    for r in records:
        if id(r.run) not in relabelled:
            tag = f"py{r.run.python_build}"
            label = r.run.label if tag in r.run.label else f"{r.run.label} {tag}"
            relabelled[id(r.run)] = dataclasses.replace(r.run, label=label)
    return [dataclasses.replace(r, run=relabelled[id(r.run)]) for r in records]


def latest_runs(records: Iterable[Record]) -> list[Record]:
    """Keep, for each CPU-limit label and Python build, only the newest run (autosave folders hold a history)."""
    records = list(records)
    newest: dict[tuple[str, str], Run] = {}
    for r in records:
        key = (r.run.label, r.run.python_build)
        held = newest.get(key)
        if held is None or (r.run.datetime, r.run.source) > (held.datetime, held.source):
            newest[key] = r.run
    return [r for r in records if newest[(r.run.label, r.run.python_build)] == r.run]
