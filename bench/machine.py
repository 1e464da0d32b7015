"""What ``machine_info["poolbench"]`` records besides the CPUs: versions, options, the I/O folder, load.

pytest-benchmark records the machine (``node``, ``cpu``, ``python_*``); this adds what bounds or
colours a measurement here (pyperf's ``_collect_metadata.py`` is the model): effective CPUs and
their sources, BLAS, the allocator setting, versions of everything that measures, the environment
variables that change a measurement, the user's workload files, the folder ``io_file`` writes to
and its file system, where CPU time was read from, and the load average at the start and the end
of the run (a busy machine is named in one line at the end: its numbers are suspect).
"""

from __future__ import annotations

import gc
import hashlib
import importlib.metadata
import os
import platform
import sys
import sysconfig
from pathlib import Path
from typing import Any

import psutil

from bench import allocator, cpus, readings
from bench.backend import backend, missing_line
from bench.config import EXECUTORS, SuiteConfig
from bench.executors import blas_libraries, executor_defaults
from common import plan, reference
from common.denied import busy_line
from common.schema import MEMORY_FILESYSTEMS, SCHEMA_VERSION, python_build
from workloads import stack

#: Environment variables that change what a measurement means; recorded with every run.
RECORDED_ENV = (
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PYTHONHASHSEED",
    "PYTHON_GIL",
    "GLIBC_TUNABLES",  # malloc's own knobs, read at process start (bench/allocator.py)
    "MALLOC_ARENA_MAX",
    cpus.OVERRIDE_ENV,
)


def free_threaded() -> bool:
    """Whether this interpreter was built without the GIL (``--disable-gil``, a "t" build)."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def fstype_of(path: str) -> str | None:
    """File system type of the mount that holds ``path`` (the longest mount point above it)."""
    best, kind = "", None
    try:
        partitions = psutil.disk_partitions(all=True)
    except (OSError, psutil.Error):
        return None
    real = os.path.realpath(path)
    for part in partitions:
        mount = part.mountpoint.rstrip("/") or "/"
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
            best, kind = mount, part.fstype
    return kind


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, or None where the platform has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def busy_warning(start: list[float] | None, end: list[float] | None, cpus_available: float) -> str | None:
    """The end-of-run line when the run started on a busy machine (None: it did not)."""
    line = busy_line(start, end, cpus_available)
    return f"{line}; re-run on an idle machine" if line else None


def _sha256(path: str | None) -> str | None:
    try:
        return hashlib.sha256(Path(str(path)).read_bytes()).hexdigest()
    except OSError:
        return None


def package_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def poolbench_info(
    suite: SuiteConfig,
    *,
    malloc: dict[str, Any],
    user_workloads: list[tuple[str, str | None]],
    loadavg_start: list[float] | None,
    started_at: str | None = None,
    cpu_denied: dict[str, Any] | None = None,
    frozen_objects: int | None = None,
) -> dict[str, Any]:
    """``machine_info["poolbench"]``: every key is part of the results schema (docs/results-schema.md)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "label": suite.label,
        "backend": suite.runner,
        **suite.cpu.as_dict(),
        "default_start_method": suite.default_start_method,
        "blas_threads": suite.blas_threads,
        "blas": blas_libraries(),
        "malloc": malloc,
        "malloc_mmap_threshold": allocator.pinned_threshold(malloc),
        # Where scaling tasks' C stacks lay (workloads/stack.py): each task, serial reference and pool alike,
        # at the next of ``offsets`` positions over ``span_bytes``; ``moved``: whether this process could
        # (a subinterpreter's tasks run where they are).
        "task_stack": {
            "mode": suite.task_stack,
            "offsets": stack.OFFSETS,
            "span_bytes": stack.SPAN_BYTES,
            "moved": suite.task_stack == "rotate" and stack.usable(),
        },
        "executor_defaults": executor_defaults(),
        "gil_switch_interval_s": sys.getswitchinterval(),
        # Read at the end of the run, after every workload module and NumPy were imported: on a
        # free-threaded build an extension without free-threading support turns the GIL back on
        # when it is imported, and a result must say which way its threads ran.
        "gil_enabled": sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True,
        "free_threaded": free_threaded(),
        "python_build": python_build(platform.python_version(), free_threaded()),
        "versions": {
            "python": platform.python_version(),
            **{d: package_version(d) for d in ("numpy", "pytest", "pytest-benchmark", "psutil", "threadpoolctl")},
        },
        "environment": {k: os.environ.get(k) for k in RECORDED_ENV},
        "workload_files": [
            {"workload": name, "file": source, "sha256": _sha256(source)} for name, source in user_workloads
        ],
        "io_dir": suite.io_dir,
        "io_fstype": fstype_of(suite.io_dir),
        "cpu_time_source": readings.CPU_TIME_SOURCE,
        "cpu_time_resolution_s": readings.CPU_TIME_RESOLUTION_S,
        # Run-queue wait and steal over the timed rounds (extra_info cpu_wait_s, steal_s), summed over
        # the finished scaling cases when the results were saved (common.denied.denied_summary).
        "cpu_wait_source": readings.WAIT_SOURCE,
        "cpu_denied": cpu_denied,
        "started_at": started_at,
        "loadavg_start": loadavg_start,
        "loadavg_end": load_average(),
        # per executor whose backend records something (bench/backend.py): the dask cluster, what a
        # subinterpreter could import
        **{name: info(suite) for name in EXECUTORS if (info := backend(name).machine_info) is not None},
        # executors asked for (or in the default set) that this Python or install lacks, and why
        "skipped_executors": [{"executor": n, "why": missing_line(n)} for n in suite.skipped_executors],
        "config": suite.as_dict(),
        # The task size each batched workload ran at, how it was chosen and one serial task's time
        # (bench/calibration.py); what --sizes-from reads back.
        "sizes": {name: s.as_dict() for name, s in (suite.sizes or {}).items()},
        "plan": plan_info(suite),
        # How garbage collection met the timed regions (common/reference.py): the suite's heap and each
        # worker's start-up heap frozen out of it, so a collection costs what the tasks made.
        "gc": {
            "policy": "frozen",
            "enabled": gc.isenabled(),
            "thresholds": list(gc.get_threshold()),
            "frozen_objects": frozen_objects,
        },
    }


def plan_info(suite: SuiteConfig) -> dict[str, Any]:
    """The sampling plan's rules as this run applied them (common/plan.py)."""
    return {
        "target_task_s": plan.TARGET_TASK_S[suite.profile],
        "tasks_per_cpu": suite.settings["tasks_per_cpu"],
        "batch_rule": "k * W tasks up to W = C, W * max(1, floor(k * C / W)) past it; k per busy CPU",
        "batch_tasks": {str(w): suite.batch(w) for w in suite.workers},
        "sweep_rule": f"powers of two up to min(4 * C, {plan.SWEEP_CAP}), and C",
        "passes": suite.settings["passes"],
        "probe_tasks": reference.PROBE_TASKS,
        "probe_warm_tasks": reference.PROBE_WARM_TASKS,
        "reference": "rounds bracketed by serial probes: one before the first timed round and one after each, "
        "each untimed warm task(s) then timed ones; a round's reference is the mean of the probes beside it",
    }


def io_dir_warning(suite: SuiteConfig) -> str | None:
    """One line when ``io_file`` will run in a folder whose fsync reaches no disk (None: fine)."""
    if "io_file" not in suite.workloads or "scaling" not in suite.cases:
        return None
    fstype = fstype_of(suite.io_dir)
    if fstype not in MEMORY_FILESYSTEMS:
        return None
    return (
        f"io_file writes to {suite.io_dir}, a {fstype}: fsync there reaches no disk, so it will measure memory; "
        "pass --io-dir (or POOLBENCH_IO_DIR) on the disk you mean to measure"
    )
