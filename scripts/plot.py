"""Scaling curves from saved results: ``python -m scripts.plot PATH... --out DIR``.

For each workload: speedup and efficiency against workers for every pool, beside the ideal, with
a marker at the effective CPU count and each point's 95 % interval (from its passes,
common/reference.py) as error bars. When
the results hold several CPU limits (a matrix run), one more figure per workload draws each limit's
curve. A summary figure puts every workload's speedup at the recommended worker count side by side,
and, where the default_workers case ran, one figure sets each executor's default ``max_workers``
against the recommended count, per CPU limit.
PNG and SVG, written atomically; the paths written are printed, one per line.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt

from common.executors import Pool
from common.reference import ideal_speedup
from scripts.analysis import Analysis, DefaultWorkers, ScalingPoint
from scripts.cli import Parser, prepare_out, run, write_atomic
from scripts.results import ResultsError, latest_runs, load

FORMATS = ("png", "svg")


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.plot", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="PATH", help="results .json files or folders (e.g. .benchmarks)")
    parser.add_argument("--out", default="results/plots", help="output folder (default: results/plots)")
    parser.add_argument(
        "--all-runs", action="store_true", help="plot every run found, not only the newest per CPU limit"
    )
    return parser.parse_args(argv)


def style(pool: str) -> tuple[str, str]:
    """Colour and marker of a pool's curve: its executor's, coloured by its variant where it has one."""
    named = Pool.parse(pool)
    spec = named.spec
    if spec is None:
        return "black", "x"
    colour, marker = spec.style
    return spec.variant_colours.get(named.variant or "", colour), marker


def save(fig, out: Path, stem: str) -> list[Path]:
    written = []
    for fmt in FORMATS:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=110, bbox_inches="tight")
        written.append(write_atomic(out / f"{stem}.{fmt}", buf.getvalue()))
    plt.close(fig)
    return written


def _workers_axis(ax, workers: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(workers))
    ax.set_xticklabels([str(w) for w in workers])
    ax.set_xlabel("max_workers")
    ax.grid(True, alpha=0.3)


def _ideal_curve(
    ax, kind: str, tasks: dict[int, int], cpus: float, workers: Sequence[int], *, colour: str = "black", label=None
):
    """The ideal at each worker count for the batch that count ran (``tasks``: workers → batch)."""
    xs = sorted(workers)
    fallback = max(tasks.values())
    ax.plot(
        xs,
        [ideal_speedup(kind, w, tasks.get(w, fallback), cpus) for w in xs],
        linestyle="--",
        color=colour,
        linewidth=1,
        label=label or ("ideal: N / ceil(N / W)" if kind == "io" else "ideal: min(W, CPUs)"),
    )


def _batches(points: Sequence[ScalingPoint]) -> str:
    """ "16 tasks per batch", or "8-16 tasks per batch (by workers)" when the batch follows the sweep."""
    sizes = sorted({p.tasks for p in points if p.pool != "serial"} or {p.tasks for p in points})
    if len(sizes) == 1:
        return f"{sizes[0]} tasks per batch"
    return f"{sizes[0]}-{sizes[-1]} tasks per batch (by workers)"


def _yerr(points: Sequence[ScalingPoint], attr: str = "speedup") -> list[list[float]]:
    """Error-bar lengths below and above each point: its 95 % interval."""
    mid = [getattr(p, attr) for p in points]
    lo = [getattr(p, f"{attr}_lo") for p in points]
    hi = [getattr(p, f"{attr}_hi") for p in points]
    return [
        [max(m - a, 0) for m, a in zip(mid, lo, strict=True)],
        [max(b - m, 0) for m, b in zip(mid, hi, strict=True)],
    ]


def plot_workload(points: list[ScalingPoint], out: Path, suffix: str = "") -> list[Path]:
    """Speedup and efficiency of one workload in one run, every pool, beside the ideal."""
    first = points[0]
    workers = sorted({p.workers for p in points})
    fig, (ax_s, ax_e) = plt.subplots(1, 2, figsize=(11, 4.2))
    by_pool: dict[str, list[ScalingPoint]] = defaultdict(list)
    for p in points:
        by_pool[p.pool].append(p)
    for pool, series in sorted(by_pool.items()):
        series.sort(key=lambda p: p.workers)
        colour, marker = style(pool)
        xs = [p.workers for p in series]
        for ax, attr in ((ax_s, "speedup"), (ax_e, "efficiency")):
            mid = [getattr(p, attr) for p in series]
            ax.errorbar(xs, mid, yerr=_yerr(series, attr), color=colour, marker=marker, capsize=3, label=pool)
    _ideal_curve(ax_s, first.kind, {p.workers: p.tasks for p in points}, first.effective_cpus, workers)
    ax_e.axhline(1.0, linestyle="--", color="black", linewidth=1, label="ideal")
    for ax in (ax_s, ax_e):
        _workers_axis(ax, workers)
        ax.axvline(
            first.effective_cpus, color="gray", linestyle=":", label=f"effective CPUs = {first.effective_cpus:g}"
        )
    ax_s.set_ylabel("speedup over serial (×)")
    ax_e.set_ylabel("efficiency (speedup / ideal)")
    ax_s.set_title("speedup")
    ax_e.set_title("efficiency")
    ax_s.legend(fontsize="small")
    fig.suptitle(
        f"{first.workload} ({first.kind}, {first.gil} the GIL): {_batches(points)}, "
        f"serial {first.serial_s * 1e3:.0f} ms; {first.label}; bars: 95 % intervals"
        + (" (serial rounds paired)" if any(p.paired for p in points) else "")
    )
    return save(fig, out, f"scaling-{first.workload}{suffix}")


def plot_by_limit(points: list[ScalingPoint], out: Path) -> list[Path]:
    """One workload across CPU limits: a panel per executor, a curve per limit beside its own ideal."""
    first = points[0]
    executors = sorted({p.pool for p in points if p.pool != "serial"})
    labels = sorted({p.label for p in points})
    workers = sorted({p.workers for p in points})
    # Runs of several Python builds carry the build in their labels (scripts.results.with_builds_in_labels).
    what = "CPU limit and Python build" if any("py3." in p.label for p in points) else "CPU limit"
    fig, axes = plt.subplots(1, len(executors), figsize=(5.5 * len(executors), 4.2), squeeze=False)
    colours = plt.get_cmap("viridis")
    for ax, pool in zip(axes[0], executors, strict=True):
        for i, label in enumerate(labels):
            series = sorted((p for p in points if p.pool == pool and p.label == label), key=lambda p: p.workers)
            if not series:
                continue
            colour = colours(i / max(len(labels) - 1, 1))
            ax.errorbar(
                [p.workers for p in series],
                [p.speedup for p in series],
                yerr=_yerr(series),
                marker="o",
                color=colour,
                capsize=3,
                label=label,
            )
            _ideal_curve(
                ax,
                first.kind,
                {p.workers: p.tasks for p in series},
                series[0].effective_cpus,
                workers,
                colour=colour,
                label="_nolegend_",
            )
        _workers_axis(ax, workers)
        ax.set_title(pool)
        ax.set_ylabel("speedup over serial (×)")
        ax.legend(fontsize="small", title=what)
    fig.suptitle(f"{first.workload}: speedup per {what} (dashed: each one's ideal; bars: 95 % intervals)")
    return save(fig, out, f"scaling-{first.workload}-by-limit")


def plot_summary(points: list[ScalingPoint], out: Path, suffix: str = "") -> list[Path]:
    """Every workload's speedup at the recommended worker count, threads against processes."""
    label = points[0].label
    target = points[0].recommended_workers  # as the run recorded it
    workloads = list(dict.fromkeys(p.workload for p in points))
    pools = sorted({p.pool for p in points if p.pool != "serial"})
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(workloads)), 4.2))
    width = 0.8 / max(len(pools), 1)
    for j, pool in enumerate(pools):
        xs, chosen = [], []
        for i, w in enumerate(workloads):
            x = i + (j - (len(pools) - 1) / 2) * width
            match = [p for p in points if p.workload == w and p.pool == pool and p.workers == target]
            if match:
                xs.append(x)
                chosen.append(match[0])
            else:  # a gap, not a 0× bar: absent is not slow
                ax.text(x, 0.05, "not measured", rotation=90, ha="center", va="bottom", fontsize="x-small")
        ax.bar(
            xs,
            [p.speedup for p in chosen],
            yerr=_yerr(chosen),
            capsize=2,
            width=width,
            color=style(pool)[0],
            label=pool,
        )
        # Each bar's own ideal (the one every other figure and the report use: reference.ideal_speedup),
        # drawn across the bar: it differs between I/O and CPU-bound work and with the batch size.
        ax.hlines(
            [p.ideal for p in chosen],
            [x - width / 2 for x in xs],
            [x + width / 2 for x in xs],
            colors="black",
            linestyles="--",
            linewidth=1,
            label="ideal (each bar's)" if j == 0 else "_nolegend_",
        )
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_xticks(range(len(workloads)))
    ax.set_xticklabels(workloads, rotation=20)
    ax.set_ylabel(f"speedup over serial at {target} workers (×)")
    ax.set_title(f"Which executor, per workload ({label}; bars: 95 % intervals)")
    ax.legend(fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    return save(fig, out, f"summary{suffix}")


def plot_default_workers(pairs: list[DefaultWorkers], out: Path) -> list[Path]:
    """Time of each executor's default size against the recommended size, per workload and CPU limit."""
    workloads = list(dict.fromkeys(p.workload for p in pairs))
    labels = sorted({p.label for p in pairs})
    pools = sorted({p.pool for p in pairs})
    fig, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4.4), squeeze=False)
    width = 0.8 / max(len(pools), 1)
    for ax, workload in zip(axes[0], workloads, strict=True):
        for j, pool in enumerate(pools):
            xs, ys, notes = [], [], []
            for i, label in enumerate(labels):
                match = [p for p in pairs if p.workload == workload and p.pool == pool and p.label == label]
                if match:
                    xs.append(i + (j - (len(pools) - 1) / 2) * width)
                    ys.append(match[0].ratio)
                    notes.append(f"{match[0].default_workers} vs {match[0].recommended_workers}")
            bars = ax.bar(xs, ys, width=width, color=style(pool)[0], label=pool)
            ax.bar_label(bars, labels=notes, fontsize="x-small", rotation=90, padding=2)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="same as recommended")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=20)
        ax.set_ylabel("time with max_workers=None / with recommended (×)")
        ax.set_title(f"{workload}: above 1, the default is slower")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("Default max_workers against recommended_workers (bar labels: workers default vs recommended)")
    return save(fig, out, "default-workers")


def _suffixes(points: list[ScalingPoint]) -> dict[str, str]:
    """A file-name suffix per run: none for a single run, the CPU-limit label (and file) otherwise."""
    sources = list(dict.fromkeys(p.source for p in points))
    if len(sources) == 1:
        return {sources[0]: ""}
    label_of = {p.source: p.label for p in points}
    shared = {lab for lab in label_of.values() if list(label_of.values()).count(lab) > 1}
    out = {}
    for src, lab in label_of.items():
        name = lab + (f"-{Path(src).stem}" if lab in shared else "")
        out[src] = "-" + re.sub(r"[^A-Za-z0-9.]+", "_", name).strip("_")
    return out


def work(an: Analysis, out: Path | str, *, sources: Sequence[str] = ()) -> list[Path]:
    """Write every figure the analysed records support into ``out``; returns the paths written.

    ``sources`` (the paths the user gave) only name the input in the error raised when the records
    hold no scaling case.
    """
    points = an.points
    if not points:
        raise ResultsError(
            f"{', '.join(sources) or 'the results'}: no scaling cases with a serial baseline; "
            "run `pytest bench` with --cases scaling and the serial executor"
        )
    out = prepare_out(str(out))
    suffixes = _suffixes(points)
    written: list[Path] = []
    by_run: dict[tuple[str, str], list[ScalingPoint]] = defaultdict(list)
    for p in points:
        by_run[(p.source, p.workload)].append(p)
    for (source, _), series in by_run.items():
        written += plot_workload(series, out, suffixes[source])
    if len({p.label for p in points}) > 1:
        by_workload: dict[str, list[ScalingPoint]] = defaultdict(list)
        for p in points:
            by_workload[p.workload].append(p)
        for series in by_workload.values():
            written += plot_by_limit(series, out)
    for source, suffix in suffixes.items():
        written += plot_summary([p for p in points if p.source == source], out, suffix)
    pairs = an.default_workers
    if pairs:
        written += plot_default_workers(pairs, out)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    records = load(args.paths)
    if not args.all_runs:
        records = latest_runs(records)
    for path in work(Analysis(records), args.out, sources=args.paths):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.plot", main))
