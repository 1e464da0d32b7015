"""The figures of README and docs/ recomputed from the result files they came from: ``python -m scripts.evidence``.

Every figure README.md and the pages under docs/ quote about this machine sits in a block between
two markers::

    <!-- evidence:NAME -->
    ...generated text...
    <!-- /evidence:NAME -->

and each block is generated here from the trimmed result files under ``evidence/`` (measured by
``bash evidence/measure.sh``, which records the command of every run). Commands:

* ``trim RAW``: copy the runs of ``evidence/measure.sh`` from RAW into ``evidence/``, trimmed to
  what the loader reads (per-round samples, extra_info, machine_info without the CPU flag list);
* ``show``: print every block;
* ``write [FILE...]``: rewrite the blocks in place (atomically); default: README.md and docs/*.md;
* ``check [FILE...]``: exit 1 when a block differs from what the files give (tests/test_evidence.py).

A figure outside these blocks is prose about method, not a measurement of this machine.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from common.denied import DENIED_SHARE
from common.executors import family
from common.plan import PROFILE_SETTINGS, SWEEP_CAP, TARGET_TASK_S, batch_tasks, main_job_seconds, sweep
from common.reference import combined
from scripts import agreement, compare, gating
from scripts.analysis import Analysis, ScalingPoint, find, scaling_points
from scripts.builds import build_rows, pool_costs_by_build
from scripts.causes import run_denied
from scripts.claims import xi
from scripts.cli import Parser, run, write_atomic
from scripts.costs import MODEL_TOLERANCE, OverheadModel, overhead_model
from scripts.evidence_reference import block_freethreaded, block_reference
from scripts.results import Record, ResultsError, load

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = ROOT / "evidence"
#: Where each run of evidence/measure.sh goes, by the start of its name.
TOPICS = {
    "growth-": "growth",
    "gate-": "gate",
    "default-run": "limits",
    "crash": "crash",
    "malloc-": "faults",
    "dask-run": "dask",
    "containers-run": "reference",
    "old-reference": "reference",
}


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.evidence", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    trim_p = sub.add_parser("trim", help="copy evidence/measure.sh's runs from RAW into evidence/, trimmed")
    trim_p.add_argument("raw", metavar="RAW", help="the folder evidence/measure.sh wrote (RAW=...)")
    sub.add_parser("show", help="print every generated block")
    for name, what in (("write", "rewrite the blocks of FILE"), ("check", "exit 1 if a block of FILE is stale")):
        p = sub.add_parser(name, help=what)
        p.add_argument("files", metavar="FILE", nargs="*", help="Markdown files (default: README.md and docs/*.md)")
    return parser.parse_args(argv)


# --- trimming ---------------------------------------------------------------------------------------


def trimmed(data: dict) -> dict:
    """A results file cut to what scripts/results.py reads: no CPU flags, no commit, samples only."""
    if not isinstance(data, dict) or "machine_info" not in data or "benchmarks" not in data:
        raise ResultsError(
            "not a pytest-benchmark results file (no machine_info or benchmarks); give RAW the "
            "folder evidence/measure.sh wrote"
        )
    machine = {k: v for k, v in data["machine_info"].items() if k != "cpu"}
    return {
        "datetime": data["datetime"],
        "machine_info": machine,
        "benchmarks": [
            {
                "name": b["name"],
                "group": b.get("group"),
                "extra_info": b["extra_info"],
                "stats": {"data": [round(x, 9) for x in b["stats"]["data"]]},
            }
            for b in data["benchmarks"]
        ],
    }


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, separators=(",", ":")) + "\n")


def end_of_run(log: str) -> str:
    """The poolbench section of a ``pytest bench`` run's output and pytest's last line, as a user saw them."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if re.fullmatch(r"=+ poolbench =+", line)), None)
    if start is None:
        raise ResultsError("the main job's log has no poolbench section; run it again (evidence/measure.sh frontpage)")
    table = list(itertools.takewhile(lambda line: not line.startswith("results: "), lines[start:]))
    last = [line for line in lines if re.fullmatch(r"=+ \d+ passed.* =+", line)]
    return "\n".join([*table, *last[-1:]]) + "\n"


def trim(raw: Path) -> list[Path]:
    written = []
    for src in sorted(raw.glob("*.json")):
        topic = next((t for prefix, t in TOPICS.items() if src.name.startswith(prefix)), None)
        if topic is None:
            continue
        _write_json(EVIDENCE / topic / src.name, trimmed(json.loads(src.read_text())))
        written.append(EVIDENCE / topic / src.name)
    # scripts.matrix's result folders, one run per limit (its own report left out)
    folders = [(raw / f"matrix-{profile}", f"matrix/{profile}/{{}}.json") for profile in ("quick", "default")]
    folders += [(raw / "builds", "builds/{}.json"), (raw / "cluster", "dask/cluster-{}.json")]
    folders += [(raw / "ftscaling", "reference/ftscaling-{}.json")]  # its one limit: unlimited-py3.13t
    for folder, name in folders:
        for src in sorted(folder.glob("*/*.json")):
            if src.parent.name == "report":
                continue
            label = src.parent.name.removeprefix("unlimited-") if folder.name == "ftscaling" else src.parent.name
            dest = EVIDENCE / name.format(label)
            _write_json(dest, trimmed(json.loads(src.read_text())))
            written.append(dest)
    front = raw / "frontpage"
    if (front / "main-job.json").exists():  # the main job: its results, its end-of-run table, its summary plot
        dest = EVIDENCE / "frontpage"
        _write_json(dest / "main-job.json", trimmed(json.loads((front / "main-job.json").read_text())))
        write_atomic(dest / "terminal.txt", end_of_run((front / "main-job.log").read_text()))
        (dest / "summary.png").write_bytes((front / "report" / "plots" / "summary.png").read_bytes())
        written += [dest / "main-job.json", dest / "terminal.txt", dest / "summary.png"]
    lines = {  # JSON lines as the tools wrote them
        "dask-parts.jsonl": "dask/parts.jsonl",
        "interrupt-times.jsonl": "interrupts/interrupt-times.jsonl",
        "independent.jsonl": "reference/independent.jsonl",
        "ftscaling-raw.jsonl": "reference/ftscaling-raw.jsonl",
    }
    for src, name in lines.items():
        if (raw / src).exists():
            dest = EVIDENCE / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(dest, (raw / src).read_text())
            written.append(dest)
    return written


# --- helpers ------------------------------------------------------------------------------------------


def _runs(pattern: str) -> list[Path]:
    found = sorted(EVIDENCE.glob(pattern))
    if not found:
        raise ResultsError(f"evidence/{pattern}: no files; run `bash evidence/measure.sh` to measure them")
    return found


#: One analysis per results file (scripts/analysis.py), by path, and by the source of each of its runs.
_BY_PATH: dict[str, Analysis] = {}
_BY_SOURCE: dict[str, Analysis] = {}


def _analysis(path: Path) -> Analysis:
    key = str(path)
    if key not in _BY_PATH:
        an = _BY_PATH[key] = Analysis(load([key]))
        _BY_SOURCE.update((view.run.source, an) for view in an.runs)
    return _BY_PATH[key]


def _records(path: Path) -> list[Record]:
    return _analysis(path).records


def _points(records: list[Record]) -> list[ScalingPoint]:
    """The scaling points of whole runs read by :func:`_records`, as their analysis computed them."""
    an = _BY_SOURCE.get(records[0].run.source) if records else None
    return an.points_of(records) if an is not None else scaling_points(records)


def wall_s(records: list[Record]) -> float:
    """A run's wall time: from ``started_at`` (its start) to pytest-benchmark's ``datetime`` (its save)."""
    run = records[0].run
    started = datetime.fromisoformat(run.poolbench["started_at"])
    return (datetime.fromisoformat(run.datetime) - started).total_seconds()


def _s(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _machine(records: list[Record]) -> str:
    info = records[0].run.poolbench
    v = info["versions"]
    return f"Python {v['python']}, NumPy {v['numpy']}, {info['effective_cpus']:g} effective CPUs"


# --- the blocks -----------------------------------------------------------------------------------------


def cases_run(records: list[Record]) -> int:
    """Cases pytest ran: a point measured in several passes (joined by the loader) counts once per pass."""
    return sum(max(len(r.passes), 1) for r in records)


def _task_range(records: list[Record]) -> str:
    """The calibrated workloads' serial task times at start (machine_info sizes), fastest–slowest."""
    sizes = records[0].run.poolbench.get("sizes") or {}
    times = [v["task_s"] * 1e3 for v in sizes.values() if v.get("method") == "calibrated" and v.get("task_s")]
    return f"{min(times):.1f}–{max(times):.1f} ms" if times else "not recorded"


def block_profiles() -> list[str]:
    quick = _records(_runs("gate/gate-run1.json")[0])
    defaults = [_records(p) for p in _runs("limits/default-run*.json")]
    rows = []
    for name, runs in (("quick", [quick]), ("default", defaults)):
        cfg = runs[0][0].run.poolbench["config"]
        plan_ = runs[0][0].run.poolbench["plan"]
        batches = plan_["batch_tasks"]
        walls = sorted(wall_s(rs) for rs in runs)
        wall = _s(walls[0]) if len(walls) == 1 else f"{walls[0]:.0f}–{_s(walls[-1])} ({len(walls)} runs)"
        rows.append(
            f"| `{name}` | {cfg['target_task_s'] * 1e3:g} ms ({_task_range(runs[0])}) | "
            f"{cfg['tasks_per_cpu']} ({', '.join(f'W={w}: {n}' for w, n in batches.items())}) | "
            f"{cfg['rounds']} × {cfg['passes']} | {wall}, {cases_run(runs[0])} cases |"
        )
    full = PROFILE_SETTINGS["full"]
    rows.append(
        f"| `full` | {TARGET_TASK_S['full'] * 1e3:g} ms | {full['tasks_per_cpu']} | {full['rounds']} "
        f"× {full['passes']} | not measured here |"
    )
    return [
        "| profile | one serial task: target (calibrated here, fastest–slowest workload) | tasks per busy CPU "
        "(batch at each W here) | timed rounds × passes (after one warm-up task per worker) "
        "| wall time of `pytest bench` here |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Measured with {_machine(quick)} (`bash evidence/measure.sh`: `pytest bench --profile quick` and three "
        "`pytest bench` runs; wall time = the run's `started_at` to its save).",
    ]


def _fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares a + b·x (b = 0 when every x is the same)."""
    if len(set(xs)) < 2:
        return statistics.mean(ys), 0.0
    b, a = np.polyfit(xs, ys, 1)
    return float(a), float(b)


def cost_model(records: list[Record]) -> dict:
    """The constants of common/plan.main_job_seconds, fitted to one measured run (common/plan.py).

    Per scaling case of a pool, what its wall time (``case_wall_s``) held beyond its rounds and
    probes (pool start, warm-up, checks, shutdown, the meter's readings) is fitted as a + b·W per pool
    type; memory cases as a + b·W; everything else (the other case types, the session's start,
    calibration and save) is the rest of the run's wall time.
    """
    run = records[0].run
    cfg = run.poolbench["config"]
    sizes = run.poolbench.get("sizes") or {}
    scaling = [r for r in records if r.case == "scaling"]
    task_s = {}
    for r in scaling:
        if r.executor == "serial":
            t = (sizes.get(r.workload) or {}).get("task_s") or r.median / r.tasks
            task_s[r.workload] = -t if r.kind == "io" else t
    fits = {}
    for pool in sorted({r.pool for r in scaling if r.executor != "serial"}):
        xs, ys = [], []
        for r in scaling:
            if r.pool != pool or "case_wall_s" not in r.extra:
                continue
            passes = max(len(r.passes), 1)
            # the probes' timed tasks, and their untimed warm ones (schema 7) as long again per task
            timed_tasks = r.extra.get("serial_tasks") or 1
            probes = sum(r.extra.get("serial_samples_s") or []) * (
                1 + (r.extra.get("serial_warm_tasks") or 0) / timed_tasks
            )
            per_task = abs(task_s.get(r.workload, r.median / r.tasks))
            warm = per_task * (1 if r.kind == "io" else r.workers / min(r.workers, r.run.effective_cpus))
            timed = sum(r.samples) + probes + warm * passes
            xs.append(r.workers)
            ys.append((r.extra["case_wall_s"] - timed) / passes)
        fits[pool] = _fit_line(xs, ys)
    memory = [r for r in records if r.case == "memory" and r.executor != "serial" and "case_wall_s" in r.extra]
    mem = _fit_line([r.workers for r in memory], [r.extra["case_wall_s"] for r in memory]) if memory else (0.0, 0.0)
    counted = sum(r.extra.get("case_wall_s", 0.0) for r in records if r.case in ("scaling", "memory"))
    return {
        "task_s": task_s,
        "pools": len(fits),
        "rounds": cfg["rounds"],
        "passes": cfg["passes"],
        "per_cpu": cfg["tasks_per_cpu"],
        "case_overhead_s": statistics.mean(a for a, _ in fits.values()),
        "start_per_worker_s": statistics.mean(b for _, b in fits.values()),
        "memory_case_s": mem,
        "memory_pools": len({r.pool for r in memory}),
        "other_s": wall_s(records) - counted,
    }


def block_plan() -> list[str]:
    runs = [_records(p) for p in _runs("limits/default-run*.json")]
    models = [cost_model(r) for r in runs]
    measured = [wall_s(r) for r in runs]
    k = models[0]["per_cpu"]
    # The model times every round at its ideal; this host's runs took longer (GIL-bound work on
    # threads, contention): each run's measured / modelled wall time, carried to the other C as is.
    factors = [w / main_job_seconds(2, **mod) for w, mod in zip(measured, models, strict=True)]
    lines = [
        "| effective CPUs C | workers swept | batch at W = 1 / W = C / W = 4C | scaling cases | main job |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in (2, 16, 64, 128):
        ws = sweep(c)
        m = models[0]
        cases = m["passes"] * len(m["task_s"]) * (1 + m["pools"] * len(ws))
        est = [main_job_seconds(c, **mod) for mod in models]
        top = min(4 * c, SWEEP_CAP)
        cost = (
            f"measured {min(measured):.0f}–{_s(max(measured))} (model {min(est):.0f}–{max(est):.0f} s)"
            if c == 2
            else f"model {min(est) / 60:.1f}–{max(est) / 60:.1f} min; at this host's measured/model "
            f"{min(e * f for e, f in zip(est, factors, strict=True)) / 60:.1f}–"
            f"{max(e * f for e, f in zip(est, factors, strict=True)) / 60:.1f} min"
        )
        lines.append(
            f"| {c} | {', '.join(map(str, ws))} | {batch_tasks(1, c, k)} / {batch_tasks(c, c, k)} / "
            f"{batch_tasks(top, c, k)} | {cases} | {cost} |"
        )
    m = models[0]
    lines += [
        "",
        f"Model (common/plan.main_job_seconds), its constants fitted to each of the three default runs here: "
        f"a scaling case of a pool costs a warm-up of one task per worker and {m['rounds']} timed rounds (about "
        f"k = {k} task times each, with a serial probe of a warm and a timed task before the first and after each) "
        "plus "
        f"{m['case_overhead_s'] * 1e3:.0f} ms + {m['start_per_worker_s'] * 1e3:.1f} ms per worker (pool start, "
        f"warm-up, readings, shutdown: fitted per pool type, W ≤ 8, and extrapolated linearly), "
        f"× {m['passes']} passes; memory cases {m['memory_case_s'][0] * 1e3:.0f} ms + "
        f"{m['memory_case_s'][1] * 1e3:.1f} ms per worker; the other case types and the session "
        f"{m['other_s']:.0f} s as measured (they run at fixed sizes). Task times are the calibrated ones, which "
        "any host matches by construction; a real many-core host's pool start and memory per worker may "
        f"differ. The model times every round at its ideal speed; here each run took {min(factors):.2f}–"
        f"{max(factors):.2f}× the model (GIL-bound work on threads runs on one CPU, contention), the factor "
        "the last column carries to larger C. Same pools as here (serial, thread, process/fork; 3.14 adds "
        "the interpreter pool).",
    ]
    return lines


def _sweep(option: str, note: str) -> list[tuple[str, int, int, float]]:
    """(row label, values given to the option, cases, wall seconds) per growth run of ``option``."""
    out = []
    for path in sorted(_runs(f"growth/growth-{option}-*.json"), key=lambda p: len(p.stem)):
        recs = _records(path)
        values = path.stem.removeprefix(f"growth-{option}-")
        out.append((f"`--{option} {values}` ({note})", len(values.split(",")), len(recs), wall_s(recs)))
    return out


def block_growth() -> list[str]:
    first = _records(_runs("growth/growth-workers-*.json")[0])
    n_workloads = len(first[0].run.poolbench["config"]["workloads"])
    by_workers = _sweep("workers", f"{n_workloads} workloads")
    rows = [(name, n, w) for name, _, n, w in [*by_workers, *_sweep("workloads", "workers 1, 2, 4, 8")]]
    xs_w, ys_w = [k for _, k, _, _ in by_workers], [w for _, _, _, w in by_workers]
    cases, walls = [n for _, n, _ in rows], [w for _, _, w in rows]
    bw, aw = np.polyfit(xs_w, ys_w, 1)
    bc, ac = np.polyfit(cases, walls, 1)
    r2 = float(np.corrcoef(cases, walls)[0, 1] ** 2)
    lines = ["| sweep (quick profile) | cases | wall time |", "| --- | --- | --- |"]
    lines += [f"| {name} | {n} | {w:.1f} s |" for name, n, w in rows]
    lines += [
        "",
        f"Fitted (least squares): each worker count added to `--workers` adds {bw:.1f} s (wall ≈ {aw:.1f} s + "
        f"{bw:.1f} s × worker counts, {n_workloads} workloads); over all {len(rows)} runs, wall ≈ {ac:.1f} s + "
        f"{bc:.2f} s × cases (r² = {r2:.2f}).",
    ]
    return lines


def block_limits() -> list[str]:
    paths = _runs("limits/default-run*.json")
    runs = [_records(p) for p in paths]
    views = [_analysis(p) for p in paths]
    points = [an.points for an in views]
    cases = agreement.agreement([agreement.one_run(str(p)) for p in paths])
    n = len(paths)
    cpu = next(c for c in cases if c.key[0] == "cpu_python" and family(c.key[1]) == "process" and c.key[2] == 2)
    effs = [f"{q.efficiency:.2f} [{q.efficiency_lo:.2f}–{q.efficiency_hi:.2f}]" for q in cpu.points]
    met = sum(q.efficiency >= agreement.EFFICIENCY_GOAL for q in cpu.points)
    at_c = [c for c in cases if c.at_c and c.kind != "io"]
    within = sum(c.spread <= agreement.SPREAD_GOAL for c in at_c)
    widest = sorted(at_c, key=lambda c: -c.spread)[:3]
    held = sum(c.held()[0] for c in cases)
    by_ci = sum(c.held_by_confidence()[0] for c in cases)
    pairs = sum(c.held()[1] for c in cases)
    half = agreement.median_half_width(at_c)
    sizes = [{w: s.get("param") for w, s in r[0].run.poolbench["sizes"].items()} for r in runs]
    methods = sorted({s.get("method") for r in runs for s in r[0].run.poolbench["sizes"].values()})
    header = "| goal (issues #10, #18, #19, #30) | " + " | ".join(f"run {i + 1}" for i in range(n)) + " | met? |"
    lines = [
        header,
        "| --- | " + " | ".join("---" for _ in range(n)) + " | --- |",
        *_physics_rows(points),
        *_reference_rows(views),
        _denied_row(runs),
        f"| `cpu_python`, processes, 2 workers: efficiency ≥ 0.90 in every run | {' | '.join(effs)} | "
        f"{'yes' if met == n else 'no'}, {met} of {n} |",
        f"| the runs did the same work: every task size equal |{' |' * n} "
        f"{'yes' if all(s == sizes[0] for s in sizes) else 'no'} (methods: {', '.join(methods)}) |",
        f"| every CPU-bound pool case at W = C: the runs' speedups within 5 % of their mean |{' |' * n} "
        f"{within} of {len(at_c)}; widest "
        + ", ".join(f"`{w}` {p} {c.spread:.1%}" for c in widest for (w, p, _) in [c.key])
        + " |",
        f"| each run's 95 % prediction interval holds the other runs' figures, ≥ 90 % of (case, run pair) |"
        f"{' |' * n} {'yes' if held / pairs >= agreement.AGREEMENT_GOAL else 'no'}: {held} of {pairs} = "
        f"{held / pairs:.0%} (the 95 % confidence interval: {by_ci / pairs:.0%}) |",
        f"| ... with intervals this narrow: median prediction half-width ≤ 5 % (CPU-bound pool cases at W = C) |"
        f"{' |' * n} {'yes' if half <= agreement.HALF_WIDTH_GOAL else 'no'}: {half:.1%} |",
        "",
        *variance_levels(runs),
        f"{_machine(runs[0])}; `bash evidence/measure.sh` (three `pytest bench` runs, one after the other, the "
        "later two keeping the first one's calibration).",
    ]
    return lines


def _reference_rows(views: list[Analysis]) -> list[str]:
    """The reference checked in each run (issue #30): one-worker pools, points against their limit, the run's own
    check, and the probes against the serial batch."""
    n = len(views)
    solo, above, checks, bias = [], [], [], []
    for an in views:
        users = {w.get("workload") for w in an.records[0].run.poolbench.get("workload_files") or []}
        cpu_bound = [p for p in an.points if p.kind != "io" and p.pool != "serial" and p.workload not in users]
        ones = [p for p in cpu_bound if p.workers == 1]
        inside = sum(0.95 <= p.speedup <= 1.04 for p in ones)
        lo, hi = min(p.speedup for p in ones), max(p.speedup for p in ones)
        solo.append((f"{lo:.2f}–{hi:.2f} ({inside} of {len(ones)} within)", inside == len(ones)))
        pools = [p for p in an.points if p.pool != "serial" and p.workers <= p.effective_cpus]
        over = [p for p in pools if p.speedup_lo > p.ideal * 1.02]
        named = ", ".join(f"`{p.workload}` {p.pool} w{p.workers}" for p in over[:2])
        above.append((str(len(over)) + (f" ({named})" if over else ""), not over))
        found = an.defects(an.runs[0])
        checks.append(("none" if not found else "; ".join(name for name, _, _ in found), not found))
        together = [p.bias for p in an.points if p.bias is not None and p.bias.df]
        if together:
            c = combined(together)
            bias.append((f"{c.value:.3f} [{c.low:.3f}–{c.high:.3f}]", c.low <= 1.0 <= c.high))
        else:
            bias.append(("—", False))

    def row(goal: str, cells: list[tuple[str, bool]]) -> str:
        met = sum(ok for _, ok in cells)
        return f"| {goal} | " + " | ".join(c for c, _ in cells) + f" | {'yes' if met == n else 'no'}, {met} of {n} |"

    return [
        row("every one-worker pool of a built-in CPU-bound workload: 0.95–1.04× of serial", solo),
        row("no point at W ≤ C whose interval's low end lies above its ideal × 1.02", above),
        row("the run's own check (common/reference.py `run_defects`) names no defect", checks),
        row("the probes against the serial batch, all workloads together: 1.0 within the interval", bias),
    ]


def variance_levels(runs: list[list[Record]]) -> list[str]:
    """Where the variance of a pool case's log speedup lives: rounds, passes within a run, or runs.

    Kalibera & Jones' question, per pool scaling case measured in every run: the standard error of a
    pass's mean log speedup from its rounds (rounds), the spread of the passes' log speedups within a
    run (passes), and of the runs' log speedups (runs), as standard deviations; medians over cases
    (common/reference.py ``Paired``).
    """
    by_name = [{r.name: r for r in rs if r.case == "scaling" and r.executor != "serial" and r.paired} for rs in runs]
    rounds_sd, passes_sd, runs_sd = [], [], []
    for name in set(by_name[0]).intersection(*by_name[1:]):
        per_run = []
        for b in by_name:
            pairing = b[name].paired
            assert pairing is not None
            logs = [math.log(x) for x in pairing.round_speedups()]
            sizes = [len(r) for r in pairing.rounds]
            chunks, at = [], 0
            for size in sizes:
                chunks.append(logs[at : at + size])
                at += size
            if len(chunks) > 1:
                passes_sd.append(statistics.stdev(math.log(x) for x in pairing.pass_speedups()))
            rounds_sd.extend(statistics.stdev(c) / math.sqrt(len(c)) for c in chunks if len(c) > 1)
            per_run.append(math.log(pairing.speedup()))
        runs_sd.append(statistics.stdev(per_run))
    if not runs_sd:
        return []
    parts = [f"rounds (a pass's standard error) {statistics.median(rounds_sd):.1%}"] if rounds_sd else []
    if passes_sd:
        parts.append(f"passes within a run {statistics.median(passes_sd):.1%}")
    parts.append(f"runs {statistics.median(runs_sd):.1%}")
    return [
        f"Where the spread lives ({len(runs_sd)} pool cases, log speedup, standard deviations, median over cases): "
        + ", ".join(parts)
        + ". The intervals are built from the passes (common/reference.py): a run's passes stand for the runs "
        "that follow when the passes' spread, over √passes, matches the runs'."
    ]


def _denied_row(runs: list[list[Record]]) -> str:
    """Whether each run had the CPU it asked for (issue #23): its denied run-queue wait, run-wide."""
    summaries = [run_denied(r) for r in runs]
    cells = [f"{(d['wait_share'] or 0.0):.1%} ({d['denied_cases']} of {d['cases']} cases)" for d in summaries]
    ok = sum(not d["denied"] for d in summaries)
    return (
        f"| the run had the CPU it asked for: denied run-queue wait ≤ {DENIED_SHARE:.0%} | "
        + " | ".join(cells)
        + f" | {'yes' if ok == len(runs) else 'no'}, {ok} of {len(runs)} |"
    )


def _physics_rows(runs: list[list[ScalingPoint]]) -> list[str]:
    """The 2-CPU targets of the physics, per run, at 2 workers (issue #18 keeps them)."""

    def row(goal: str, cells: list[tuple[str, bool]]) -> str:
        met = sum(ok for _, ok in cells)
        return (
            f"| {goal} | "
            + " | ".join(c for c, _ in cells)
            + f" | {'yes' if met == len(cells) else 'no'}, {met} of {len(cells)} |"
        )

    def at2(points: list[ScalingPoint], workload: str, pool: str) -> ScalingPoint:
        found = find(points, workload, pool, 2)
        if found is None:
            raise ResultsError(f"evidence/limits: no {workload} on {pool} at 2 workers; re-run evidence/measure.sh")
        return found

    def pair(points: list[ScalingPoint]) -> tuple[str, bool]:
        t, p = at2(points, "hash_alloc", "thread"), at2(points, "hash_alloc", "process")
        apart = abs(t.speedup - p.speedup) / max(t.speedup, p.speedup)
        return f"{t.speedup:.2f}× / {p.speedup:.2f}× ({apart:.0%} apart)", apart <= 0.10 and min(
            t.speedup, p.speedup
        ) >= 1.6

    return [
        row(
            "`cpu_python`, threads, 2 workers: ≤ 1.1× (the GIL)",
            [(xi(q), q.speedup <= 1.1) for q in (at2(r, "cpu_python", "thread") for r in runs)],
        ),
        row(
            "`cpu_python`, processes, 2 workers: ≥ 1.8×",
            [(xi(q), q.speedup >= 1.8) for q in (at2(r, "cpu_python", "process") for r in runs)],
        ),
        row(
            "`numpy_ufunc`, threads, 2 workers: ≥ 1.6×",
            [(xi(q), q.speedup >= 1.6) for q in (at2(r, "numpy_ufunc", "thread") for r in runs)],
        ),
        row("`hash_alloc`, threads / processes, 2 workers: within 10 %, both ≥ 1.6×", [pair(r) for r in runs]),
    ]


def _gate(base: Path, cur: Path) -> gating.Gate:
    args = compare.parse_args([str(base), str(cur)])
    return compare.decide(args, compare.one_run(str(base)), compare.one_run(str(cur)))


def _index_changes(gate: gating.Gate) -> list[float]:
    return [r.change for r in gate.rows if r.metric == "index"]


def _outcomes(gates: list[gating.Gate]) -> str:
    counts = {o: sum(g.outcome == o for g in gates) for o in gating.OUTCOMES}
    return ", ".join(f"{n} {o}" for o, n in counts.items() if n) or "none"


def _work_changes(gate: gating.Gate) -> list[float]:
    return [r.change for r in gate.rows if r.metric == "work"]


def _span(values: list[float], sign: str = "+") -> str:
    """``-4.2% to +41.9%`` (``sign=""``: shares, which have none)."""
    return f"{min(values):{sign}.1%} to {max(values):{sign}.1%}" if values else "not compared"


def block_gate() -> list[str]:
    runs = _runs("gate/gate-run*.json")
    onecpu = _runs("gate/gate-onecpu*.json")
    busy = _runs("gate/gate-busy*.json")
    same = [_gate(runs[0], p) for p in runs[1:]]
    lost = [_gate(runs[0], p) for p in onecpu]
    loud = [_gate(runs[0], p) for p in busy]
    slowed = _gate(_runs("gate/gate-work-base.json")[0], _runs("gate/gate-work-slowed.json")[0])
    same_index = [x for g in same for x in _index_changes(g)]
    lost_index = [x for g in lost for x in _index_changes(g)]
    case_drops = [r.change for g in same for r in g.rows if r.metric == "speedup" and "io_file" not in r.name]
    io_drops = [r.change for g in same for r in g.rows if r.metric == "speedup" and "io_file" in r.name]
    alarms = sum(g.outcome != "pass" for g in same)
    shares = [g.denied[1]["wait_share"] or 0.0 for g in loud if g.denied]
    idle_shares = [g.denied[1]["wait_share"] or 0.0 for g in same if g.denied]
    slowed_row = next(r for r in slowed.rows if r.metric == "work" and r.name.startswith("work[slowable]"))

    def short(name: str) -> str:
        return f"`{name.removeprefix('test_scaling[').rstrip(']')}`"

    fell = ["; ".join(f"{', '.join(map(short, g.fell)) or 'none'} (run {i + 1})" for i, g in enumerate(lost))]
    met = {
        "busy": all(g.outcome == "inconclusive" for g in loud),
        "idle": alarms == 0,
        "onecpu": all(g.outcome == "regression" for g in lost),
        "slowed": slowed.outcome == "regression" and slowed_row.verdict == "regression",
    }
    return [
        "| runs | scaling index change (each pool × worker count ≥ 2) | work index change (same machine) "
        "| single-case speedup change | outcome |",
        "| --- | --- | --- | --- | --- |",
        f"| unchanged, {len(same)} comparisons | {_span(same_index)} (standard deviation "
        f"{statistics.pstdev(same_index):.1%}) | {_span([x for g in same for x in _work_changes(g)])} | "
        f"{_span(case_drops)} (`io_file`, disk-bound, {_span(io_drops)}: excluded from the index) | "
        f"{_outcomes(same)} |",
        f"| one CPU (`taskset -c 0`), {len(lost)} comparisons | {_span(lost_index)} | "
        f"{_span([x for g in lost for x in _work_changes(g)])} | see below | {_outcomes(lost)} |",
        f"| a busy loop on one of the CPUs, {len(loud)} comparisons | "
        f"{_span([x for g in loud for x in _index_changes(g)])} | {_span([x for g in loud for x in _work_changes(g)])} "
        f"| | {_outcomes(loud)} |",
        f"| `slowable` made 30 % slower (`POOLBENCH_SLOWDOWN=1.3`), 1 comparison | "
        f"{_span(_index_changes(slowed))} | `{slowed_row.name}` {slowed_row.change:+.1%} | | {_outcomes([slowed])} |",
        "",
        "Targets (issue #23): a busy loop beside the run, "
        f"{sum(g.outcome == 'inconclusive' for g in loud)} of {len(loud)} inconclusive and "
        f"{sum(g.outcome == 'regression' for g in loud)} regression (met: {'yes' if met['busy'] else 'no'}); "
        f"idle reruns, {alarms} false alarm(s) in {len(same)} (met: {'yes' if met['idle'] else 'no'}); one CPU, "
        f"{sum(g.outcome == 'regression' for g in lost)} of {len(lost)} regression (met: "
        f"{'yes' if met['onecpu'] else 'no'}); code made 30 % slower on an idle machine, "
        f"{'caught' if met['slowed'] else 'NOT caught'}. Run-queue wait of the scaling cases, as a share of the "
        f"CPU time they could use: busy runs {_span(shares, sign='')}, idle reruns "
        f"{_span(idle_shares, sign='')}.",
        "",
        f"What fell past the gate in the one-CPU runs (scaling indexes and single cases): {fell[0]}. "
        f"{_machine(_records(runs[0]))}; "
        "`bash evidence/measure.sh` (topic `gate`: six `pytest bench --profile quick` runs, three under "
        "`taskset -c 0`, each gated against the first with the default bars; topic `denied`: three quick runs "
        "beside a `while True: pass` loop, gated against the first; a quick run with `--workload-file "
        "evidence/slowable.py`, then the same with `POOLBENCH_SLOWDOWN=1.3`, gated against it).",
    ]


def block_crash() -> list[str]:
    crashes = [r for r in _records(_runs("crash/crash.json")[0]) if r.case == "crash"]
    out = []
    threads = [r for r in crashes if r.executor == "thread"]
    how = sorted({r.extra.get("signal") or f"exit code {r.extra.get('returncode')}" for r in threads})
    died = all(not r.extra.get("parent_survived") for r in threads)
    out.append(f"thread pools {'died with every crash' if died else 'survived a crash'} ({', '.join(how)})")
    for method in sorted({r.variant for r in crashes if r.executor == "process"}):
        procs = [r for r in crashes if r.executor == "process" and r.variant == method]
        ms = [float(r.extra["detect_s"]) * 1e3 for r in procs]
        ok = all(r.extra.get("parent_survived") and r.extra.get("recovered") for r in procs)
        outcome = "/".join(sorted({str(r.extra.get("outcome")) for r in procs}))
        out.append(
            f"process pools ({method}) raised {outcome} after {min(ms):.0f}–{max(ms):.0f} ms"
            + (", their owner survived and a new pool worked afterwards" if ok else ", NOT all recovered")
        )
    return [
        "Measured here (`pytest bench --cases crash --start-methods fork,spawn`, "
        f"{_machine(crashes)}): " + "; ".join(out) + "."
    ]


#: The local pools of the allocator runs (evidence/measure.sh, topic faults), as results name them;
#: the dask pools follow as the runs name them (``dask`` before schema 6, ``dask/default`` and
#: ``dask/tuned`` after).
LOCAL_FAULT_POOLS = ("thread", "process/fork", "process/forkserver", "process/spawn")
MALLOC_POLICIES = ("neutral", "fixed", "dynamic")


def _per_task_faults(r: Record) -> float:
    return float(r.extra["minor_faults"]) / (r.tasks * len(r.samples))


def block_faults() -> list[str]:
    runs = {m: _records(_runs(f"faults/malloc-{m}.json")[0]) for m in MALLOC_POLICIES}
    dask_pools = sorted({r.pool for recs in runs.values() for r in recs if r.executor == "dask"})
    fault_pools = (*LOCAL_FAULT_POOLS, *dask_pools)
    workloads = list(dict.fromkeys(r.workload for r in runs["neutral"] if r.case == "scaling"))
    faults: dict[tuple[str, str, str], float] = {}
    speed: dict[tuple[str, str, str], ScalingPoint] = {}
    rows_f, rows_s = [], []
    for m, recs in runs.items():
        at = {(r.workload, r.pool, r.workers): r for r in recs if r.case == "scaling"}
        points = {(p.workload, p.pool, p.workers): p for p in _points(recs)}
        for w in workloads:
            for pool in ("serial", *fault_pools):
                rec = at.get((w, pool, 1 if pool == "serial" else 2))
                if rec is not None:
                    faults[(m, w, pool)] = _per_task_faults(rec)
                if (w, pool, 2) in points:
                    speed[(m, w, pool)] = points[(w, pool, 2)]
            cells = [f"{faults[(m, w, p)]:,.1f}" if (m, w, p) in faults else "—" for p in ("serial", *fault_pools)]
            rows_f.append(f"| `{m}` | `{w}` | " + " | ".join(cells) + " |")
            serial_ms = at[(w, "serial", 1)].median * 1e3
            rows_s.append(
                f"| `{m}` | `{w}` | {serial_ms:.0f} ms | "
                + " | ".join(xi(speed[(m, w, p)]) if (m, w, p) in speed else "—" for p in fault_pools)
                + " |"
            )
    pools = " | ".join(fault_pools)
    t, pr = speed[("neutral", "hash_alloc", "thread")], speed[("neutral", "hash_alloc", "process/fork")]
    apart = abs(t.speedup - pr.speedup) / max(t.speedup, pr.speedup)
    close = apart <= 0.10 and min(t.speedup, pr.speedup) >= 1.6
    shares = {
        p: max(faults[("neutral", w, p)] / faults[("fixed", w, p)] for w in workloads if ("fixed", w, p) in faults)
        for p in ("serial", *fault_pools)
        if all(("neutral", w, p) in faults and faults.get(("fixed", w, p)) for w in workloads)
    }
    worst = max(shares.values())
    return [
        "Minor page faults per task (serial: its own case; pools at 2 workers):",
        "",
        f"| policy | workload | serial | {pools} |",
        "| --- | --- | --- | " + " | ".join("---" for _ in fault_pools) + " |",
        *rows_f,
        "",
        "Speedup over serial at 2 workers, and the serial batch it divides:",
        "",
        f"| policy | workload | serial batch | {pools} |",
        "| --- | --- | --- | " + " | ".join("---" for _ in fault_pools) + " |",
        *rows_s,
        "",
        f"Targets (issue #18), `neutral`: `hash_alloc` at 2 workers, threads {xi(t)} and processes (fork) {xi(pr)}, "
        f"{apart:.0%} apart (target: within 10 %, both ≥ 1.6×: {'met' if close else 'NOT met'}); steady-state "
        "faults per task as a share of `fixed`'s, worst of the workloads: "
        + ", ".join(f"{p} {v:.2%}" for p, v in shares.items())
        + f" (target ≤ 1 % for every executor: {'met' if worst <= 0.01 else 'NOT met'}).",
        "",
        f"Measured here ({_machine(runs['neutral'])}; `bash evidence/measure.sh`, topic `faults`: `pytest bench "
        f"--cases scaling --workloads {','.join(workloads)} --executors serial,thread,process,dask --start-methods "
        "fork,forkserver,spawn --workers 1,2 --malloc POLICY`, default profile, one run per policy).",
    ]


def block_causes() -> list[str]:
    """What the report names beside each recommendation, for run 1 of the three default runs."""
    path = _runs("limits/default-run*.json")[0]
    recs = _records(path)
    at = int(recs[0].run.poolbench["recommended_workers"])
    lines = [
        f"| workload | pool | speedup at {at} workers | of its ideal | what held it back (measured) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in _points(recs):
        if p.workers != at or p.pool == "serial":
            continue
        held = p.cause.text if p.cause else "— (at its ideal within this run's noise)"
        lines.append(f"| `{p.workload}` | {p.pool} | {xi(p)} | {p.efficiency:.0%} | {held} |")
    lines += ["", f"From `{path.relative_to(ROOT).as_posix()}` ({_machine(recs)}), as `scripts.report` reads it."]
    return lines


def block_interrupts() -> list[str]:
    path = _runs("interrupts/interrupt-times.jsonl")[0]
    times = sorted(json.loads(line)["exit_s"] for line in path.read_text().splitlines() if line.strip())
    slowest = max(
        (json.loads(line) for line in path.read_text().splitlines() if line.strip()), key=lambda d: d["exit_s"]
    )
    return [
        f"Measured here, from the signal to the end of the process, over {len(times)} interrupted runs of the "
        "interruption sweep (`POOLBENCH_INTERRUPT_TIMES=times.jsonl .venv/bin/python -m pytest "
        "tests/test_interrupts.py "
        f'-m "interrupt_sweep or not interrupt_sweep"`): median {statistics.median(times):.2f} s, 90th percentile '
        f"{float(np.quantile(times, 0.9)):.2f} s, slowest {times[-1]:.2f} s (`{slowest['point']}`)."
    ]


def _limit_runs(profile: str) -> dict[str, list[Record]]:
    return {p.stem: _records(p) for p in _runs(f"matrix/{profile}/*.json")}


def block_matrix() -> list[str]:
    quick, default = _limit_runs("quick"), _limit_runs("default")
    q = ", ".join(
        f"`{name}` {_s(wall_s(rs))} (effective CPUs {rs[0].run.effective_cpus:g})" for name, rs in quick.items()
    )
    d = []
    for name, rs in default.items():
        points = [p for p in _points(rs) if p.pool != "serial" and p.kind != "io"]
        at = [p for p in points if p.workers == p.recommended_workers]
        worst = min(points, key=lambda p: p.speedup)
        d.append(
            f"`{name}` {_s(wall_s(rs))}: CPU-bound speedups at the recommended {at[0].recommended_workers} worker(s) "
            f"{min(p.speedup for p in at):.2f}–{max(p.speedup for p in at):.2f}× (ideal 1), the worst "
            f"{worst.speedup:.2f}× ({worst.workload}, {worst.pool}, {worst.workers} workers)"
        )
    spread = []
    for profile, runs in (("quick", quick), ("default", default)):
        for r in runs.get("cpus-1") or []:
            if r.case == "scaling" and r.workload == "cpu_python" and r.executor != "serial" and r.workers == 2:
                spread.append(
                    f"{profile} {r.pool}: {min(r.samples) * 1e3:.0f}–{max(r.samples) * 1e3:.0f} ms "
                    f"(median {r.median * 1e3:.0f} ms, {r.extra.get('throttled_periods')} throttled periods)"
                )
    first = next(iter(quick.values()))
    return [
        f"Measured here (2-core host, image cached; in the containers {_machine(first).split(', ', 2)[0]}, "
        f"{_machine(first).split(', ', 2)[1]}): the quick matrix took {q}. With the default profile: "
        + "; ".join(d)
        + ". Rounds of the `cpu_python` batch on 2 workers inside `cpus-1` (two workers on a one-CPU quota "
        "meet the quota's stalls): " + "; ".join(spread) + " (`bash evidence/measure.sh`, topic `matrix`).",
    ]


#: The physical-limit targets on 2 CPUs (issue 13), checked here against the evidence, never in tests.
FREE_THREADED_TARGET = 1.7
INTERPRETER_TARGET = 1.7
PROCESS_EFFICIENCY_TARGET = 0.90


def block_builds() -> list[str]:
    runs = {rs[0].run.python_build: rs for rs in (_records(p) for p in _runs("builds/*.json"))}
    table = build_rows(runs, "cpu_python", workers=2, points_of=_points)
    builds = [row.build for row in table]
    rows, targets = [], []
    for row in table:
        b = row.build
        procs = row.of("process")
        thread, interpreter = (next(iter(row.of(name)), None) for name in ("thread", "interpreter"))
        rows.append(
            [
                f"py{b} ({row.python})",
                "on" if row.gil_enabled else "off",
                f"{row.serial_s * 1e3:.1f} ms",
                xi(thread) if thread else "—",
                xi(interpreter) if interpreter else "—",
                ", ".join(f"{xi(p)} ({p.speedup / p.ideal:.0%})" for p in procs) or "—",
                ", ".join(f"{k} {v / 2**20:.1f}" for k, v in row.memory_per_worker.items()) or "—",
            ]
        )
        if b.endswith("t") and thread:
            targets.append(_target(f"py{b} threads {thread.speedup:.2f}×", thread.speedup, FREE_THREADED_TARGET))
        if interpreter:
            speed = interpreter.speedup
            targets.append(_target(f"py{b} interpreter pool {speed:.2f}×", speed, INTERPRETER_TARGET))
        for p in procs:
            eff = p.speedup / p.ideal
            targets.append(_target(f"py{b} {p.pool} efficiency {eff:.2f}", eff, PROCESS_EFFICIENCY_TARGET))
    costs = [f"py{r.build} {r.gil_twin_ratio:.2f}× py{r.build.rstrip('t')}" for r in table if r.gil_twin_ratio]
    first = runs[builds[0]]
    lines = [
        "| build | GIL | cpu_python serial batch | threads, 2 workers | interpreter pool, 2 "
        "| processes, 2 (efficiency) | MiB per added worker |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
        f"Measured here (`bash evidence/measure.sh` topic `builds`: `scripts.matrix --pythons "
        f"{','.join(builds)} --limits unlimited`, default profile, {first[0].run.effective_cpus:g} effective CPUs, "
        "one container at a time, every build with the first one's task sizes). Single-thread cost of the "
        "free-threaded build: "
        + ("; ".join(costs) if costs else "not measured (no build with the GIL of the same version)")
        + ". Targets: "
        + "; ".join(targets)
        + ".",
    ]
    costs_table = pool_costs_by_build(table)
    if costs_table:  # the interpreter pool's start-up and payload, build by build (3.14 against 3.15)
        lines += [line for line in costs_table if not line.startswith("### ")][1:]
    return lines


#: The pools of the dask runs (evidence/measure.sh, topic dask), as results name them.
DASK_POOLS = ("dask/default", "dask/tuned", "process/fork")
#: Issue #20's bars: the tuned configuration's cpu_python speedup at W = C; the model's distance
#: from the scaling case (scripts/costs.py MODEL_TOLERANCE).
DASK_SPEEDUP_TARGET = 1.5
#: How long evidence/dask_parts.py lets a cluster settle (its SETTLE_S), as the block says it.
SETTLE_TEXT = "0.3 s"


def _parts_rows(rows: list[dict], workload: str) -> list[str]:
    """evidence/dask_parts.py's lines of one workload as table rows, one per configuration (W = 1 and 2)."""
    by = {(r["config"], r["W"]): r for r in rows if r.get("workload_name") == workload}
    out = []
    for config in dict.fromkeys(r["config"] for r in rows if r.get("workload_name") == workload):
        one, two = by.get((config, 1)), by.get((config, 2))
        if one is None or two is None:
            continue
        apart = f"{two['sched_ms']:.2f}" if two["sched_ms"] else "—"
        out.append(
            f"| {config} | {one['speedup']:.2f}× | {two['speedup']:.2f}× | {two['over_ms']:.1f} | "
            f"{two['task_x']:.2f} | {two['loop_ms']:.2f} | {two['client_ms'] + two['nanny_ms']:.2f} | {apart} | "
            f"{two['noop_ms']:.2f} |"
        )
    return out


def block_dask() -> list[str]:
    """dask's two configurations in three default runs, the overhead model against each, and the parts by hand."""
    paths = _runs("dask/dask-run*.json")
    runs = [_records(p) for p in paths]
    at = int(runs[0][0].run.poolbench["recommended_workers"])
    lines = [
        f"| workload | pool | speedup at {at} workers, runs 1–{len(runs)} |",
        "| --- | --- | --- |",
    ]
    points = [{(p.workload, p.pool): p for p in _points(recs) if p.workers == at} for recs in runs]
    for workload in ("cpu_python", "numpy_ufunc"):
        for pool in DASK_POOLS:
            got = [pts.get((workload, pool)) for pts in points]
            if any(g is None for g in got):
                continue
            lines.append(f"| `{workload}` | {pool} | " + "; ".join(xi(g) for g in got) + " |")
    tuned = [pts[("cpu_python", "dask/tuned")].speedup for pts in points if ("cpu_python", "dask/tuned") in pts]
    held = sum(s >= DASK_SPEEDUP_TARGET for s in tuned)
    lines += [
        "",
        f"Target (issue #20): `dask/tuned` `cpu_python` at {at} workers ≥ {DASK_SPEEDUP_TARGET}× in "
        f"{held} of {len(tuned)} runs ({'met' if held == len(tuned) else 'NOT met in every run'}; "
        + ", ".join(f"{s:.2f}×" for s in tuned)
        + ").",
        "",
        "| run | pool | cost per task, by the clock (`cpu_python`) | CPU per task beyond a task alone "
        "| one map call over the batch | model [band] | clock vs model | CPU per empty task | empty tasks predict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def ms(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f} ms"

    per_config: dict[str, list[OverheadModel]] = {}
    for i, recs in enumerate(runs, 1):
        for m in overhead_model(recs, points=_points(recs)):
            band = "—" if m.model_ms is None else f"{m.model_ms:.2f} ms [{m.model_lo:.2f}, {m.model_hi:.2f}]"
            lines.append(
                f"| {i} | {m.pool} | {m.measured_ms:.2f} ms [{m.measured_lo:.2f}, {m.measured_hi:.2f}] "
                f"| {ms(m.cpu_ms)} | {ms(m.call_ms)} | {band} | {'—' if m.gap is None else f'{m.gap:+.0%}'} "
                f"| {ms(m.empty_cpu_ms)} | {ms(m.empty_model_ms)} |"
            )
            if family(m.pool) == "dask" and m.gap is not None:
                per_config.setdefault(m.pool, []).append(m)
    models = [m for ms_ in per_config.values() for m in ms_]
    close = sum(abs(m.gap) <= MODEL_TOLERANCE for m in models)
    banded = sum(bool(m.in_band) for m in models)
    means = {
        pool: (statistics.fmean(m.model_ms for m in ms_), statistics.fmean(m.measured_ms for m in ms_))
        for pool, ms_ in per_config.items()
    }
    pooled = bool(means) and all(abs(meas / model - 1) <= MODEL_TOLERANCE for model, meas in means.values())
    under = [m.measured_ms / m.empty_model_ms for m in models if m.empty_model_ms]
    lines += [
        "",
        f"Target (issue #20): the report's model within {MODEL_TOLERANCE:.0%} of the scaling case's cost per task, "
        f"for both dask configurations. Run by run: {close} of {len(models)} within {MODEL_TOLERANCE:.0%} of the "
        f"model, {banded} of {len(models)} inside its band (the clock's cost itself is noisy: serial time × "
        "(ideal / speedup − 1) moves by tens of per cent for a few per cent of noise in a speedup near its "
        f"ideal). Mean of the {len(runs)} runs, model against clock: "
        + "; ".join(
            f"{pool} {model:.2f} against {meas:.2f} ms ({meas / model - 1:+.0%})"
            for pool, (model, meas) in means.items()
        )
        + f" ({'met' if pooled else 'NOT met'} on the means)."
        + (
            f" Against the empty tasks' prediction (W × a call's latency / n + their CPU per task, the kind of "
            f"figure the report once used alone) the clock's cost is {min(under):.1f}–{max(under):.1f}×."
            if under
            else ""
        ),
    ]
    for path in sorted(EVIDENCE.glob("dask/cluster-*.json")):  # topic cluster, when it was measured
        recs = _records(path)
        shape = path.stem.removeprefix("cluster-")
        pts = [p for p in _points(recs) if p.executor == "dask" and p.workload == "cpu_python"]
        lines += [
            "",
            f"On a cluster of containers (`scripts.matrix --cluster {shape}`: a scheduler and worker containers of "
            "one CPU each and the suite as client, all on one network namespace; the cluster as dask starts it, "
            "`external`): `cpu_python` "
            + ", ".join(f"at {p.workers} workers {xi(p)}" for p in pts)
            + " over the client's serial task; "
            + "; ".join(
                f"{m.pool}: cost per task by the clock {m.measured_ms:.2f} ms [{m.measured_lo:.2f}, "
                f"{m.measured_hi:.2f}], one map call {ms(m.latency_ms)}, the empty tasks predict {ms(m.empty_model_ms)}"
                for m in overhead_model(recs, points=_points(recs))
                if family(m.pool) == "dask"
            )
            + ". No CPU-time model there: the scheduler's and the workers' CPU is spent in other containers, outside "
            f"the suite's process tree (`{path.relative_to(ROOT).as_posix()}`).",
        ]
    parts_path = _runs("dask/parts.jsonl")[0]
    rows = [json.loads(line) for line in parts_path.read_text().splitlines() if line.strip()]
    head = rows[0]
    header = [
        "| configuration | speedup, 1 worker | 2 workers | cost per task at 2 (ms) | task thread's CPU / serial "
        "| worker's other threads (ms CPU per task) | suite's process: client, scheduler, nannies | scheduler "
        "apart | empty task (ms, 200 in one map) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    intro = (
        f"By hand (`evidence/dask_parts.py --rounds 9`, Python {head['python']}, distributed {head['distributed']}, "
        f"{head['cpus']} CPUs; medians of 9 batches of 6 tasks per worker; CPU per part read from each thread's "
        "schedstat). `cpu_python` (holds the GIL):"
    )
    lines += ["", intro, "", *header, *_parts_rows(rows, "cpu_python")]
    lines += ["", "`numpy_ufunc` (releases the GIL):", "", *header, *_parts_rows(rows, "numpy_ufunc")]
    check = next((r["probe_check"] for r in rows if "probe_check" in r), None)
    if check:
        lines += [
            "",
            "The suite's pairing, checked: a serial task timed right after a batch of 12 on 2 workers, and "
            f"{SETTLE_TEXT} later (medians of 12 batches): "
            + "; ".join(
                f"{pool} {c['probe_now_ms']:.1f} against {c['probe_later_ms']:.1f} ms "
                f"({c['probe_now_ms'] / c['probe_later_ms'] - 1:+.0%}), paired speedup {c['speedup_now']:.2f}× "
                f"against {c['speedup_later']:.2f}×"
                for pool, c in check.items()
            )
            + ".",
        ]
    lines += [
        "",
        f"From `{'`, `'.join(p.relative_to(ROOT).as_posix() for p in [*paths, parts_path])}` ({_machine(runs[0])}; "
        "`bash evidence/measure.sh`, topic `dask`: `pytest bench --cases scaling,dispatch --workloads "
        "cpu_python,numpy_ufunc --executors serial,process,dask`, default profile, three runs).",
    ]
    return lines


def _target(what: str, value: float, target: float) -> str:
    return f"{what} (target ≥ {target}: {'met' if value >= target else 'NOT met'})"


def block_frontpage() -> list[str]:
    """README's front page: the end of the main job as a user saw it, each speedup checked against the report's."""
    path = EVIDENCE / "frontpage" / "main-job.json"
    records = _records(path)
    table = (EVIDENCE / "frontpage" / "terminal.txt").read_text().splitlines()
    at = int(records[0].run.poolbench["recommended_workers"])
    points = {(p.workload, p.pool): p for p in _points(records) if p.workers == at}
    header = next(i for i, line in enumerate(table) if line.strip().startswith("workload"))
    pools = table[header].split()[1:]
    for line in table[header + 1 :]:
        cells = line.split()
        if len(cells) != len(pools) + 1 or not cells[1].endswith("×"):
            break
        for pool, cell in zip(pools, cells[1:], strict=True):
            p = points.get((cells[0], pool))
            if p is None or abs(p.speedup - float(cell.rstrip("×"))) > 0.006:
                raise ResultsError(
                    f"evidence/frontpage/terminal.txt: {cells[0]} {pool} {cell} is not the run's "
                    f"{'missing point' if p is None else f'{p.speedup:.3f}'}; measure both again "
                    "(ONLY=frontpage bash evidence/measure.sh)"
                )
    return [
        "```text",
        *table,
        "```",
        "",
        "![speedup per workload, with 95 % intervals](evidence/frontpage/summary.png)",
        "",
        f"The end of the main job here ({_machine(records)}; {cases_run(records)} cases in {_s(wall_s(records))}; "
        "`bash evidence/measure.sh` topic `frontpage`), and the report's summary plot of the same run. Every "
        "speedup in the table is the one the report states for that run (`evidence/frontpage/main-job.json`), "
        "checked whenever this block is generated.",
    ]


BLOCKS: dict[str, Callable[[], list[str]]] = {
    "profiles": block_profiles,
    "frontpage": block_frontpage,
    "plan": block_plan,
    "growth": block_growth,
    "limits": block_limits,
    "gate": block_gate,
    "matrix": block_matrix,
    "crash": block_crash,
    "faults": block_faults,
    "causes": block_causes,
    "interrupts": block_interrupts,
    "reference": block_reference,
    "freethreaded": block_freethreaded,
    "builds": block_builds,
    "dask": block_dask,
}

_MARK = re.compile(r"(<!-- evidence:(?P<name>[a-z]+) -->\n)(?P<body>.*?)(<!-- /evidence:(?P=name) -->)", re.S)


def generated(name: str) -> str:
    return "\n".join(BLOCKS[name]()) + "\n"


def rewrite(text: str) -> tuple[str, list[str]]:
    """``text`` with every block regenerated, and the names of the blocks that changed."""
    changed = []

    def fill(m: re.Match) -> str:
        if m.group("name") not in BLOCKS:
            raise ResultsError(
                f"README block evidence:{m.group('name')}: no such block; use one of {', '.join(BLOCKS)}"
            )
        body = generated(m.group("name"))
        if body != m.group("body"):
            changed.append(m.group("name"))
        return m.group(1) + body + m.group(4)

    return _MARK.sub(fill, text), changed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "trim":
        raw = Path(args.raw)
        if not raw.is_dir():
            raise ResultsError(f"{raw}: not a folder; give the RAW folder evidence/measure.sh wrote")
        for path in trim(raw):
            print(path)
        return 0
    if args.command == "show":
        for name in BLOCKS:
            print(f"<!-- evidence:{name} -->\n{generated(name)}<!-- /evidence:{name} -->\n")
        return 0
    paths = [Path(f) for f in args.files] or doc_files()
    texts = {}
    for path in paths:
        try:
            texts[path] = path.read_text()
        except OSError as exc:
            raise ResultsError(f"{path}: cannot be read ({exc.strerror}); give README.md or a page of docs/") from None
    stale = 0
    for path, text in texts.items():
        new, changed = rewrite(text)
        if args.command == "write":
            if changed:
                write_atomic(path, new)
            print(f"{path}: {len(changed)} block(s) rewritten" + (f" ({', '.join(changed)})" if changed else ""))
        elif changed:
            stale += 1
            print(f"{path}: stale evidence blocks: {', '.join(changed)}; run `python -m scripts.evidence write {path}`")
        else:
            print(f"{path}: every evidence block matches the files under evidence/")
    return 1 if stale else 0


def doc_files() -> list[Path]:
    """README.md and every page of docs/: where generated blocks may sit."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.evidence", main))
