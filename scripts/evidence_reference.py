"""Evidence blocks of the serial reference (issue #30): its figures checked by other methods, and what moved.

``reference`` (docs/guide.md, "Against the physical limits"): the suite's speedups against an
independent method (evidence/independent.py: plain executors, warm serial tasks, timing code of its
own), a workload of many small objects (examples/containers.py) in three runs, and the main job of
the code before the warm reference beside this one's. ``freethreaded`` (docs/builds.md): CPython's
ftscalingbench patterns on 3.13t, the suite's thread pool against raw threads. Read by scripts/evidence.py.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from scripts.analysis import Analysis, ScalingPoint, find
from scripts.claims import xi
from scripts.evidence_files import SOLO_BAND
from scripts.results import ResultsError, load

EVIDENCE = Path(__file__).resolve().parents[1] / "evidence"
#: issue #30's bar for the independent method: the suite's figure within this share of it.
INDEPENDENT_WITHIN = 0.07
#: issue #30's bar on 3.13t: the suite's thread pool within this share of raw threads.
RAW_WITHIN = 0.15


def _lines(path: Path) -> list[dict]:
    if not path.exists():
        raise ResultsError(f"{path}: missing; measure it (bash evidence/measure.sh)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _points(path: Path) -> list[ScalingPoint]:
    return Analysis(load([path])).points


def _pool(executor: str, points: list[ScalingPoint]) -> str:
    """A plain executor's name as the suite's pool names it (``process`` → ``process/fork``)."""
    if executor != "process":
        return executor
    return next((p.pool for p in points if p.executor == "process"), "process")


def independent_rows(evidence: Path = EVIDENCE) -> list[str]:
    """The suite's figure (three default runs) against the independent method's, point by point."""
    runs = [_points(p) for p in sorted((evidence / "limits").glob("default-run*.json"))]
    mixed = [_points(p) for p in sorted((evidence / "reference").glob("containers-run*.json"))]
    runs = [a + b for a, b in zip(runs, mixed, strict=False)] if mixed else runs
    rows = _lines(evidence / "reference" / "independent.jsonl")
    out = [
        "| workload | pool | W | independent method | this suite, three runs | apart (their median) | within 7 %? |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    met = 0
    for row in rows:
        pool = _pool(row["executor"], runs[0])
        found = [find(points, row["workload"], pool, row["workers"]) for points in runs]
        suite = [p for p in found if p is not None]
        if not suite:
            continue
        middle = statistics.median(p.speedup for p in suite)
        apart = middle / row["speedup"] - 1
        ok = abs(apart) <= INDEPENDENT_WITHIN
        met += ok
        out.append(
            f"| `{row['workload']}` | {pool} | {row['workers']} | {row['speedup']:.2f}× [{row['low']:.2f}–"
            f"{row['high']:.2f}] ({row['blocks']} block pairs) | {', '.join(f'{p.speedup:.2f}×' for p in suite)} | "
            f"{apart:+.1%} | {'yes' if ok else 'no'} |"
        )
    out += [
        "",
        f"{met} of {len(out) - 2} points within 7 % of the independent method (`python evidence/independent.py "
        "evidence/limits/default-run1.json evidence/reference/containers-run1.json`: plain `ThreadPoolExecutor` "
        "and `ProcessPoolExecutor(fork)`, a serial block of 6 tasks and a pool block of 6 × W tasks in turn, "
        "each after an untimed task a worker (the first runs cold), 20 s a point in five turns round the points, "
        "throughput of all blocks; its own allocator and BLAS set-up; "
        "nothing from bench/ or common/), at those runs' task sizes.",
    ]
    return out


def containers_rows(evidence: Path = EVIDENCE) -> list[str]:
    """A workload of many small objects per task (examples/containers.py) in three default runs."""
    runs = [_points(p) for p in sorted((evidence / "reference").glob("containers-run*.json"))]
    if not runs:
        raise ResultsError(f"{evidence / 'reference'}: no containers runs; measure them (topic reference)")
    process = _pool("process", runs[0])
    cells = {
        "thread w1": [find(r, "containers", "thread", 1) for r in runs],
        f"{process} w1": [find(r, "containers", process, 1) for r in runs],
        "thread w2": [find(r, "containers", "thread", 2) for r in runs],
    }
    out = [
        "| `containers` (examples/containers.py) | "
        + " | ".join(f"run {i + 1}" for i in range(len(runs)))
        + " | met? |",
        "| --- | " + " | ".join("---" for _ in runs) + " | --- |",
    ]
    for name, points in cells.items():
        if any(p is None for p in points):
            continue
        goal = "≤ 1.05×" if name == "thread w2" else "0.95–1.04×"
        ok = [p.speedup <= 1.05 if name == "thread w2" else 0.95 <= p.speedup <= 1.04 for p in points]
        out.append(
            f"| {name}: {goal} | "
            + " | ".join(xi(p) for p in points)
            + f" | {'yes' if all(ok) else 'no'}, {sum(ok)} of {len(ok)} |"
        )
    return out


def moved_rows(evidence: Path = EVIDENCE) -> list[str]:
    """The main job of the code before the warm reference beside this one's, on the same machine."""
    old = _points(evidence / "reference" / "old-reference.json")
    new = _points(evidence / "frontpage" / "main-job.json")
    at = new[0].recommended_workers
    out = [
        "| workload | pool | W = 1 before → now | W = C before → now |",
        "| --- | --- | --- | --- |",
    ]
    for p in sorted((p for p in new if p.workers == at and p.pool != "serial"), key=lambda p: (p.workload, p.pool)):
        before1, now1 = find(old, p.workload, p.pool, 1), find(new, p.workload, p.pool, 1)
        before = find(old, p.workload, p.pool, at)
        one = f"{before1.speedup:.2f}× → {now1.speedup:.2f}×" if before1 and now1 else "—"
        out.append(
            f"| `{p.workload}` | {p.pool} | {one} | {before.speedup:.2f}× → {p.speedup:.2f}× |" if before else ""
        )
    return out


def block_reference() -> list[str]:
    return [
        *independent_rows(),
        "",
        *containers_rows(),
        "",
        "Before and now, the main job on this machine: the code before the warm reference (`evidence/reference/"
        "old-reference.json`, `bash evidence/measure.sh` topic `reference`, a `git worktree` of that commit) and "
        "this one's (`evidence/frontpage/main-job.json`):",
        "",
        *moved_rows(),
    ]


def _figures(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}×" for v in values) if values else "—"


#: The free-threaded block's comparisons: (column, method, how the file was loaded) of evidence/ftscaling_raw.py.
FT_WAYS = (
    ("raw threads, file imported", "threads", "import"),
    ("raw threads, file loaded as the suite does", "threads", "suite"),
    ("plain pool, a new one per try", "pool", "import"),
)


def block_freethreaded() -> list[str]:
    """ftscalingbench's patterns on 3.13t: the suite's thread pool at W = 2 against raw threads (loaded two ways) and
    a plain pool, each in three fresh processes (a 3.13t process or pool can land in a state in which a pattern
    scales or not: docs/builds.md)."""
    paths = sorted((EVIDENCE / "reference").glob("ftscaling-py3.13t-run*.json"))
    if not paths:
        raise ResultsError(
            "evidence/reference/ftscaling-py3.13t-run*.json: missing; measure them (evidence/measure.sh)"
        )
    suites = [_points(p) for p in paths]
    raw = _lines(EVIDENCE / "reference" / "ftscaling-raw.jsonl")
    out = [
        f"| pattern | suite's thread pool, W = 2 | {' | '.join(c for c, _, _ in FT_WAYS)} | medians within 15 %? |",
        "| --- | --- | " + "--- | " * len(FT_WAYS) + "--- |",
    ]
    met = 0
    for name in dict.fromkeys(r["pattern"] for r in raw):
        suite = [p.speedup for p in (find(points, name, "thread", 2) for points in suites) if p is not None]
        if not suite:
            continue
        found = [
            [
                r["speedup"]
                for r in raw
                if r["pattern"] == name and (r.get("method", "threads"), r["load_as"]) == (method, how)
            ]
            for _, method, how in FT_WAYS
        ]
        centre = statistics.median(suite)
        agree = [bool(v) and abs(centre / statistics.median(v) - 1) <= RAW_WITHIN for v in found]
        met += any(agree)
        cells = " | ".join(_figures(v) for v in found)
        said = ", ".join(c.split(",")[0] for (c, _, _), ok in zip(FT_WAYS, agree, strict=True) if ok) or "none"
        out.append(f"| `{name}` | {_figures(suite)} | {cells} | {'yes' if any(agree) else 'no'} ({said}) |")
    run = load([paths[0]])[0].run
    tries = {m: next((len(r["tries"]) for r in raw if r.get("method", "threads") == m), 0) for m in ("threads", "pool")}
    out += [
        "",
        f"{met} of {len(out) - 2} patterns: the median of the suite's runs within 15 % of the median of another "
        f"method's processes; Python {run.poolbench['versions']['python']} free-threaded, the GIL "
        f"{'on' if run.poolbench.get('gil_enabled') else 'off'}; each figure one fresh process: the suite's "
        "`scripts.matrix --pythons 3.13t`; raw threads `evidence/ftscaling_raw.py` (the task on one thread and on "
        f"two at once, each pinned to a CPU of its own, the threads' own clocks, the median of {tries['threads']} "
        "tries); the plain pool `evidence/ftscaling_raw.py --method pool` (a new `ThreadPoolExecutor(2)` per try, "
        f"three rounds of 12 tasks against two serial tasks in the main thread, the median of {tries['pool']} "
        "tries); `bash evidence/measure.sh` topic `freethreaded`.",
    ]
    return out


def _range(values: list[float]) -> str:
    return f"{min(values):.3f}, {statistics.median(values):.3f}, {max(values):.3f}" if values else "none"


def block_stack() -> list[str]:
    """One-worker pools with each thread's stack where it lies (``--task-stack fixed``) and rotated (the default),
    in short runs made alternately (docs/guide.md, "Against the physical limits"): the suite's figure, and the
    CPU per task timed inside the tasks (evidence/stacklog.py)."""
    paths = sorted((EVIDENCE / "stack").glob("stack-*.json"))
    if not paths:
        raise ResultsError("evidence/stack/stack-*.json: missing; measure them (bash evidence/measure.sh stack)")
    figures: dict[tuple[str, str], list[float]] = {}
    stamps = []
    runs = []
    for path in paths:
        records = load([path])
        runs.append(records[0].run)
        mode = records[0].run.poolbench["task_stack"]["mode"]
        stamps.append(records[0].run.poolbench["started_at"])
        for p in Analysis(records).points:
            if p.workers == 1 and p.executor != "serial":
                figures.setdefault((mode, p.executor), []).append(p.speedup)
    timed: dict[tuple[str, str], list[float]] = {}
    for row in _lines(EVIDENCE / "stack" / "tasks.jsonl"):
        for side, ratio in row["ratio"].items():
            timed.setdefault((row["mode"], side), []).append(ratio)
    lo, hi = SOLO_BAND
    out = [
        "| `--task-stack` | pool | runs | the suite's one-worker figure: lowest, median, highest | "
        f"outside {lo:.2f}–{hi:.2f} | a worker's CPU per task / the suite's thread's, timed in the task: "
        "lowest, median, highest | over 1.04 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (mode, pool), values in sorted(figures.items()):
        inside = timed.get((mode, pool), [])
        out.append(
            f"| {mode} | {pool} | {len(values)} | {_range(values)} | {sum(not lo <= v <= hi for v in values)} | "
            f"{_range(inside)} | {sum(v > 1.04 for v in inside)} |"
        )
    run = runs[0]
    out += [
        "",
        f"`count_primes` ({run.poolbench['sizes']['stacklog']['param']} by trial division) through "
        "evidence/stacklog.py, which writes each task's own thread CPU time; one worker, "
        f"{run.poolbench['config']['passes']} passes a run, the two modes alternating run by run, "
        f"{min(stamps)[:16].replace('T', ' ')}–{max(stamps)[11:16]} UTC; Python "
        f"{run.poolbench['versions']['python']}, {run.poolbench['effective_cpus']:g} effective CPUs; "
        "`bash evidence/measure.sh` topic `stack`.",
    ]
    return out
