"""What every evidence block reads: the trimmed result files under evidence/, each analysed once, and the
few phrasings the blocks share (scripts/evidence.py lists the blocks)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from scripts.analysis import Analysis, ScalingPoint, scaling_points
from scripts.results import Record, ResultsError, load

ROOT = Path(__file__).resolve().parents[1]
EVIDENCE = ROOT / "evidence"
#: The band issue #30 holds every one-worker pool of CPU-bound work to (against serial), in the limits and stack blocks.
SOLO_BAND = (0.95, 1.04)


def runs_of(pattern: str) -> list[Path]:
    found = sorted(EVIDENCE.glob(pattern))
    if not found:
        raise ResultsError(f"evidence/{pattern}: no files; run `bash evidence/measure.sh` to measure them")
    return found


#: One analysis per results file (scripts/analysis.py), by path, and by the source of each of its runs.
_BY_PATH: dict[str, Analysis] = {}
_BY_SOURCE: dict[str, Analysis] = {}


def analysis_of(path: Path) -> Analysis:
    key = str(path)
    if key not in _BY_PATH:
        an = _BY_PATH[key] = Analysis(load([key]))
        _BY_SOURCE.update((view.run.source, an) for view in an.runs)
    return _BY_PATH[key]


def records_of(path: Path) -> list[Record]:
    return analysis_of(path).records


def points_of(records: list[Record]) -> list[ScalingPoint]:
    """The scaling points of whole runs read by :func:`records_of`, as their analysis computed them."""
    an = _BY_SOURCE.get(records[0].run.source) if records else None
    return an.points_of(records) if an is not None else scaling_points(records)


def wall_s(records: list[Record]) -> float:
    """A run's wall time: from ``started_at`` (its start) to pytest-benchmark's ``datetime`` (its save)."""
    run = records[0].run
    started = datetime.fromisoformat(run.poolbench["started_at"])
    return (datetime.fromisoformat(run.datetime) - started).total_seconds()


def seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def percent(x: float) -> str:
    return f"{x:.0%}"


def machine_line(records: list[Record]) -> str:
    info = records[0].run.poolbench
    v = info["versions"]
    return f"Python {v['python']}, NumPy {v['numpy']}, {info['effective_cpus']:g} effective CPUs"


def cases_run(records: list[Record]) -> int:
    """Cases pytest ran: a point measured in several passes (joined by the loader) counts once per pass."""
    return sum(max(len(r.passes), 1) for r in records)


def target_text(what: str, value: float, target: float) -> str:
    return f"{what} (target ≥ {target}: {'met' if value >= target else 'NOT met'})"
