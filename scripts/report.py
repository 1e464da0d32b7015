"""An evidence report from saved results: ``python -m scripts.report PATH... --out DIR``.

Writes ``DIR/report.md`` (and the plots it embeds, through scripts.plot) and ``DIR/summary.json``
(every speedup with its 95 % interval, one record per label, Python, workload, executor, start
method and worker count: docs/results-schema.md): the tutorial's eight
claims about threads and processes, each with the numbers these results measured and a verdict
(confirmed, refuted, depends, or not measured with the case that would measure it); corrections of
stale claims; and a recommendation per workload for the machine or container measured. Every
number in the report is computed from the results given; none is typed in.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Sequence
from pathlib import Path

from common import executors
from common.checks import defects_line
from common.denied import busy_line, denied_line
from common.schema import MEMORY_FILESYSTEMS
from scripts import plot
from scripts.analysis import CONFIDENCE, Analysis, RunView, ScalingPoint
from scripts.builds import builds_section
from scripts.causes import run_denied
from scripts.claims import CLAIMS, corrections, evidence_of, judge, recommend, recommendation_order, times, xi
from scripts.cli import Parser, markdown_table, prepare_out, run, write_atomic
from scripts.costs import MIN_PERIODS_PER_ROUND, short_rounds_under_quota
from scripts.results import Record, ResultsError, Run, latest_runs, load

#: Version of summary.json's layout (docs/results-schema.md). 2 added ``signals`` and ``cause``
#: (where a point's time went, and the largest measured reason it is off its ideal); 3 added
#: ``tasks`` (the batch, which grows with the worker count since results schema 5) and ``passes``
#: (how many passes the rounds came from; the interval resamples passes, then rounds); 4 added
#: ``prediction_low`` and ``prediction_high`` (the 95 % interval of the next run's figure),
#: ``defect`` (above its physical limit beyond the run's noise), per serial record ``reference_bias``
#: (its probes against its batch, with ``_low``/``_high``), and per run ``checks`` (every
#: measurement defect named, common/checks.py run_defects); the intervals are built from
#: pass-level values with spreads pooled per workload (they were a bootstrap); 5: each defect adds
#: ``high`` and ``side`` (``above`` its physical limit, or ``below`` the run's other one-worker pools:
#: a failed A/A test, whose pool's points for that workload all carry ``defect``; common/checks.py).
SUMMARY_SCHEMA = 5


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="PATH", help="results .json files or folders (e.g. .benchmarks)")
    parser.add_argument("--out", default="results", help="output folder for report.md and its plots (default: results)")
    return parser.parse_args(argv)


def summary(an: Analysis) -> dict:
    """summary.json: every scaling point with its intervals, the identity of each run it came from, and each
    run's measurement defects."""
    by_source = {view.run.source: view.run for view in an.runs}
    records = []
    for p in (p for view in an.runs for p in view.points):
        run_ = by_source.get(p.source)
        bias = (
            {
                "reference_bias": round(p.bias.value, 6),
                "reference_bias_low": round(p.bias.low, 6),
                "reference_bias_high": round(p.bias.high, 6),
            }
            if p.bias is not None
            else {}
        )
        records.append(
            {
                "label": p.label,
                "python": p.python,
                "workload": p.workload,
                "kind": p.kind,
                "gil": p.gil,
                "executor": p.executor,
                "start_method": p.variant,
                "workers": p.workers,
                "speedup": round(p.speedup, 6),
                "speedup_low": round(p.speedup_lo, 6),
                "speedup_high": round(p.speedup_hi, 6),
                "prediction_low": round(p.prediction_lo, 6),
                "prediction_high": round(p.prediction_hi, 6),
                "efficiency": round(p.efficiency, 6),
                "efficiency_low": round(p.efficiency_lo, 6),
                "efficiency_high": round(p.efficiency_hi, 6),
                "ideal": round(p.ideal, 6),
                "tasks": p.tasks,
                "rounds": p.rounds,
                "passes": p.passes,
                "paired": p.paired,
                "defect": p.defect,
                **bias,
                "signals": p.signals.as_dict() if p.signals else None,
                "cause": dataclasses.asdict(p.cause) if p.cause else None,
                "effective_cpus": p.effective_cpus,
                "run": {
                    "source": p.source,
                    "datetime": run_.datetime if run_ else None,
                    "node": run_.machine.get("node") if run_ else None,
                    "profile": (run_.poolbench.get("config") or {}).get("profile") if run_ else None,
                },
            }
        )
    return {
        "summary_schema": SUMMARY_SCHEMA,
        "confidence": CONFIDENCE,
        "interval": "Student's t on the log speedups of the passes (one pass: of the rounds), each point's spread "
        "moderated toward its group's (the same run and workload, the same side of C: empirical Bayes); "
        "speedup_low/high: this run's figure; "
        "prediction_low/high: the next run's figure under the same plan (common/reference.py)",
        "checks": [
            {
                "source": view.run.source,
                "defects": [
                    {
                        "figure": d.name,
                        "value": round(d.estimate.value, 6),
                        "low": round(d.estimate.low, 6),
                        "high": round(d.estimate.high, 6),
                        "limit": round(d.limit, 6),
                        "side": "below" if d.below else "above",
                    }
                    for d in an.defects(view)
                ],
            }
            for view in an.runs
        ],
        "records": records,
    }


def _machine_lines(run: Run, records: list[Record] | None = None) -> list[str]:
    info = run.poolbench
    quota = info.get("cpu_quota")
    versions = info.get("versions", {})
    cfg = info.get("config", {})
    return [
        f"- results: `{run.source}` ({run.datetime}), label **{run.label}**",
        f"- CPUs: `os.cpu_count()` {info.get('cpu_count')}, affinity {info.get('affinity_cpus')}, "
        f"cgroup v{info.get('cgroup_version')} quota {quota if quota is not None else 'none'} → "
        f"**effective {info.get('effective_cpus')}**, recommended workers {info.get('recommended_workers')}",
        f"- Python {versions.get('python')}, NumPy {versions.get('numpy')}, pytest-benchmark "
        f"{versions.get('pytest-benchmark')}; default start method {info.get('default_start_method')}; "
        f"BLAS threads per worker {info.get('blas_threads')}",
        f"- profile {cfg.get('profile')}, workers {cfg.get('workers')}, {cfg.get('rounds')} timed rounds per case",
        *(
            [
                f"- **caution:** the median scaling round lasted {periods:.1f} CFS periods under a quota of "
                f"{info.get('cpu_quota')} CPUs; below {MIN_PERIODS_PER_ROUND} periods a round's time depends on "
                "whether it met a throttling stall, so these speedups are unreliable: use a larger profile (`full`)"
            ]
            if (periods := short_rounds_under_quota(records or [])) is not None
            else []
        ),
        *_cautions(info),
        *(
            [f"- **caution:** {denied}; re-run on an idle machine"]
            if (denied := denied_line(run_denied(records or [])))
            else []
        ),
    ]


#: A CPU-time reading in clock ticks is off by up to a tick per process: fine above this many ticks.
TICKS_PER_READING = 100


def _cautions(info: dict) -> list[str]:
    """Conditions recorded with a run (schema 3) that make some of its numbers mean less."""
    out = []
    fstype = info.get("io_fstype")
    if fstype in MEMORY_FILESYSTEMS:
        out.append(
            f"- **caution:** `io_file` wrote to `{info.get('io_dir')}`, a {fstype}: fsync there reaches no disk, so "
            "its numbers measure memory, not disk I/O; run with `--io-dir` on the disk you mean to measure"
        )
    if info.get("cpu_time_source") == "ticks":
        tick = float(info.get("cpu_time_resolution_s") or 0.01)
        out.append(
            f"- **caution:** CPU time was read in clock ticks of {tick * 1e3:g} ms (no per-thread scheduler "
            f"counters here): CPUs-busy figures of rounds shorter than {TICKS_PER_READING * tick:g} s are coarse"
        )
    if allocator := _allocator_caution(info):
        out.append(f"- **caution:** {allocator}")
    if busy := busy_line(info.get("loadavg_start"), info.get("loadavg_end"), info.get("effective_cpus")):
        out.append(f"- **caution:** {busy}")
    return out


def _allocator_caution(info: dict) -> str | None:
    """What the allocator policy of a run means for its allocating workloads (None: neutral and applied)."""
    malloc = info.get("malloc")
    if not isinstance(malloc, dict):  # schema 3 and older: the policy was not recorded by name
        if info.get("malloc_mmap_threshold"):
            malloc = {"policy": "fixed", "applied": True}
        else:
            return None
    policy = malloc.get("policy")
    if not malloc.get("applied"):
        return (
            f"the allocator policy `{policy}` was not applied ({malloc.get('note')}); workloads that allocate "
            "large buffers may take page faults per task that a long-running program would not"
        )
    pages = malloc.get("huge_pages") or {}
    if policy == "neutral" and pages.get("host") in ("always", "madvise") and pages.get("off") is False:
        return (
            f"transparent huge pages stayed on ({pages.get('note') or 'not turned off'}): the suite's own heap can "
            "hold more of them than a pool's thread or worker, and NumPy pools read up to 5 % low"
        )
    if policy == "fixed":
        return (
            "`--malloc fixed`: every buffer of 128 KiB or more was mapped and faulted in anew per task, in every "
            "executor; threads take such faults in turn, so verdicts on allocating workloads favour processes"
        )
    if policy == "dynamic":
        return (
            "`--malloc dynamic`: glibc's own threshold let the serial baseline pay page faults that pool threads "
            "did not, so thread speedups of allocating workloads can read above the CPU count"
        )
    return None


def executor_sections(view: RunView) -> list[str]:
    """The report's sections of executors whose record names one (common/executors.py ``report_section``),
    in registry order; each is empty when its executor did not run."""
    lines: list[str] = []
    for spec in executors.REGISTRY.values():
        if spec.report_section:
            module, _, name = spec.report_section.partition(":")
            lines += getattr(importlib.import_module(module), name)(view)
    return lines


def render(an: Analysis, figures: list[Path], out: Path) -> str:
    """The Markdown report of one analysis (its runs: the one with the most CPUs first)."""
    by_run = evidence_of(an)  # built once: claims, recommendations and the builds section read it
    main = by_run[an.runs[0].run.source]
    lines = ["# poolbench report", "", "Every number below was measured in the results named here.", ""]
    for view in an.runs:
        lines += _machine_lines(view.run, view.records)
        if defect := defects_line(an.defects(view)):
            lines.append(f"- **{defect}**")
    lines.append("")
    summary = [f for f in figures if f.name.startswith("summary") and f.suffix == ".png"]
    if summary:
        lines += [f"![speedup per workload]({summary[0].relative_to(out).as_posix()})", ""]

    lines += [f"## The tutorial's claims, measured ({main.run.label})", ""]
    verdicts = [judge(check, main) for check in CLAIMS]
    lines += markdown_table(
        ["topic", "claim", "measured here", "verdict"],
        [(v.topic, v.claim, v.measured or "—", f"**{v.verdict}**") for v in verdicts],
    )
    lines += ["", "## Stale claims corrected", ""]
    lines += [f"- {c}" for c in corrections(main)]

    for view in an.runs:
        ev = by_run[view.run.source]
        lines += ["", f"## Recommendation for this machine ({ev.run.label}, {ev.cpus:g} effective CPUs)", ""]
        lines += markdown_table(
            ["workload", "kind", "use", "speedup over serial", "what held it back (measured)"], recommend(ev)
        )
    lines += builds_section(an, by_run)
    lines += executor_sections(an.runs[0])
    trap = an.default_workers
    if trap:
        lines += [
            "",
            "## The default-workers trap",
            "",
            "`max_workers=None` sizes both executors for the CPUs the OS shows, not for a CPU quota. "
            "Time of the same batch with the default size and with `recommended_workers`:",
            "",
        ]
        rows = []
        for t in trap:
            throttled = (
                f"{t.default_throttled} vs {t.recommended_throttled}"
                if t.default_throttled is not None and t.recommended_throttled is not None
                else "not readable"
            )
            rows.append(
                (
                    t.label,
                    t.workload,
                    t.pool,
                    f"{t.default_workers} → {t.default_s * 1e3:.1f} ms",
                    f"{t.recommended_workers} → {t.recommended_s * 1e3:.1f} ms",
                    times(t.ratio)
                    if t.default_workers != t.recommended_workers
                    else f"{times(t.ratio)} (same size: noise)",
                    throttled,
                )
            )
        lines += markdown_table(
            ["limit", "workload", "executor", "default", "recommended", "default / recommended", "throttled periods"],
            rows,
        )
    lines += reference_section(an)
    lines += [
        "",
        "How to read the numbers: " + reading(an.points) + " Rule for a recommendation: the cheapest choice whose "
        f"interval overlaps the best one's ({recommendation_order()}; fewer workers before more); nothing is capped "
        "at its ideal, and a figure above it is named a measurement defect.",
        "",
        "## Scaling curves",
        "",
    ]
    for f in figures:
        if f.suffix == ".png" and not f.name.startswith("summary"):
            lines += [f"![{f.stem}]({f.relative_to(out).as_posix()})", ""]
    return "\n".join(lines) + "\n"


def reading(points: Sequence[ScalingPoint]) -> str:
    """How this report's speedups and intervals were made, in words (common/reference.py says why)."""
    probed = any(p.paired for p in points)
    passes = max((p.passes for p in points), default=1)
    how = (
        "a speedup is the pool's throughput over the serial throughput (tasks per second), pass by pass, and the "
        "geometric mean over the passes; the serial side is a bracket of warm probes around the pool's rounds "
        "(an untimed task, then a timed one, before the first round and after each), so a slow phase of the "
        "machine hits both sides alike. "
        if probed
        else "a speedup is the serial case's median round over the pool's (these results predate paired probes). "
    )
    level = f"the {passes} passes" if passes > 1 else "the rounds"
    return (
        how + f"[low–high] is its {CONFIDENCE:.0%} confidence interval for this run, from the spread of {level} "
        "(Student's t, each point's spread moderated toward that of the points of the same workload on the same side "
        "of C); the next run's figure lands in "
        f"the wider {CONFIDENCE:.0%} prediction interval (summary.json: prediction_low, prediction_high)."
    )


def reference_section(an: Analysis) -> list[str]:
    """The serial reference checked against itself, per run: its probes against the serial batch, and the
    one-worker pools (an A/A test of the reference: 1.0 less the pool's own cost)."""
    lines: list[str] = []
    for view in an.runs:
        serial = {p.workload: p.bias for p in view.points if p.pool == "serial" and p.bias is not None}
        solo = [p for p in view.points if p.workers == 1 and p.pool != "serial"]
        if not serial and not solo:
            continue
        pools = sorted({p.pool for p in solo})
        rows = []
        for workload in dict.fromkeys(p.workload for p in view.points):
            bias = serial.get(workload)
            cells = [next((xi(p) for p in solo if p.workload == workload and p.pool == pool), "—") for pool in pools]
            rows.append(
                (workload, "—" if bias is None else f"{bias.value:.3f} [{bias.low:.3f}–{bias.high:.3f}]", *cells)
            )
        lines += [
            "",
            f"## The serial reference, checked ({view.run.label})",
            "",
            "Probe per task over the serial batch's per task (1.0: the probes measure what a serial batch does), "
            "and each one-worker pool's speedup (1.0 less the pool's own cost; above 1 beyond its interval, the "
            "reference ran slow):",
            "",
            *markdown_table(["workload", "probe / serial batch", *(f"{p} w1" for p in pools)], rows),
        ]
    return lines


def work(args, an: Analysis) -> list[Path]:
    """Write the plots, summary.json and report.md; returns their paths, the report last."""
    out = prepare_out(args.out)
    figures = plot.work(an, out / "plots", sources=args.paths)
    table = summary(an)
    return [
        *figures,
        write_atomic(out / "summary.json", json.dumps(table, indent=1) + "\n"),
        write_atomic(out / "report.md", render(an, figures, out)),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    an = Analysis(latest_runs(load(args.paths)))
    if not an.points:
        raise ResultsError(
            f"{', '.join(args.paths)}: no scaling cases with a serial baseline; run `pytest bench` with --cases scaling"
        )
    for path in work(args, an):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.report", main))
