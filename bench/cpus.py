"""How many CPUs this process may really use: counts, affinity, and the cgroup CPU quota.

``os.cpu_count()`` and the executors' defaults see the host's CPUs. A container's ``cpus:`` limit is
a CFS quota that no CPU count shows, and ``cpuset:`` is an affinity mask. So::

    effective_cpus = min(cpu_count, affinity, process_cpu_count, quota / period, override)

The quota is found the way the kernel applies it, not by reading fixed root paths:

    /proc/self/cgroup      which cgroup this process is in (v2 line "0::/path"; v1 "N:cpu,cpuacct:/path")
          │
    /proc/self/mountinfo   where that hierarchy is mounted, and the mount's root inside it
          │                (a container mounts its own cgroup as the root: path "/docker/<id>",
          │                 mount root "/docker/<id>", so the files sit at the mount point itself)
          ▼
    leaf directory ──► every ancestor up to the mount point; the tightest quota wins
                       (a limit on a parent binds its children: golang/go #81180)

Every file is optional: a missing, empty or unreadable file, ``max`` (v2) or ``-1`` (v1) all mean
"no limit at this level". All paths hang off ``root``, so tests run the same code on fake trees.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from common.schema import recommended_workers

#: Environment variable that caps the effective CPU count by hand (a float > 0), like loky's
#: LOKY_MAX_CPU_COUNT: for hosts whose limit is invisible from inside (a VM's vCPU share, say).
OVERRIDE_ENV = "POOLBENCH_CPUS"


class CpuOverrideError(ValueError):
    """The override variable holds something other than a positive number."""


@dataclass(frozen=True)
class CgroupCpu:
    """The CPU quota found in this process's cgroup (v1 or v2), and where its counters live."""

    version: int | None = None  # 1, 2, or None when no cgroup CPU controller was found
    quota_cpus: float | None = None  # quota / period of the tightest level; None: no quota
    quota_us: int | None = None
    period_us: int | None = None
    limit_dir: str | None = None  # the directory whose quota is the tightest
    leaf_dir: str | None = None  # this process's own cgroup directory (cpu.stat is read there)


@dataclass(frozen=True)
class CpuInfo:
    """Everything that bounds the CPUs available to this process, and the resulting effective count."""

    cpu_count: int | None
    affinity_cpus: int | None
    process_cpu_count: int | None
    cgroup: CgroupCpu = field(default_factory=CgroupCpu)
    override: float | None = None

    @property
    def effective_cpus(self) -> float:
        """The smallest bound, as a float: a quota can be 0.5 or 1.5 CPUs."""
        bounds = [
            float(b)
            for b in (self.cpu_count, self.affinity_cpus, self.process_cpu_count, self.cgroup.quota_cpus, self.override)
            if b
        ]
        return min(bounds) if bounds else 1.0

    @property
    def recommended_workers(self) -> int:
        """Pool size for CPU-bound work (the rule and its reasons: common.schema.recommended_workers)."""
        return recommended_workers(self.effective_cpus)

    def as_dict(self) -> dict:
        """Plain data for ``machine_info``; the key names are part of the results schema."""
        return {
            "cpu_count": self.cpu_count,
            "affinity_cpus": self.affinity_cpus,
            "process_cpu_count": self.process_cpu_count,
            "cgroup_version": self.cgroup.version,
            "cpu_quota": self.cgroup.quota_cpus,
            "cpu_quota_us": self.cgroup.quota_us,
            "cpu_period_us": self.cgroup.period_us,
            "cgroup_limit_dir": self.cgroup.limit_dir,
            "cgroup_dir": self.cgroup.leaf_dir,
            "cpu_override": self.override,
            "effective_cpus": self.effective_cpus,
            "recommended_workers": self.recommended_workers,
        }


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _to_int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _quota_v2(directory: Path) -> tuple[int, int] | None:
    """``cpu.max`` holds "QUOTA PERIOD" or "max PERIOD"; a bare "QUOTA" means the default period."""
    text = _read(directory / "cpu.max")
    if not text:
        return None
    parts = text.split()
    quota = _to_int(parts[0])
    period = _to_int(parts[1]) if len(parts) > 1 else 100_000
    if quota is None or quota <= 0 or not period or period <= 0:
        return None
    return quota, period


def _quota_v1(directory: Path) -> tuple[int, int] | None:
    """``cpu.cfs_quota_us`` is -1 when unlimited; ``cpu.cfs_period_us`` is usually 100000."""
    quota = _to_int(_read(directory / "cpu.cfs_quota_us"))
    period = _to_int(_read(directory / "cpu.cfs_period_us"))
    if quota is None or quota <= 0 or not period or period <= 0:
        return None
    return quota, period


@dataclass(frozen=True)
class _Mount:
    root: str  # the path inside the hierarchy that is mounted
    point: str  # where it is mounted
    fstype: str
    super_options: frozenset[str]


def _unescape(text: str) -> str:
    """mountinfo writes a space, tab, newline or backslash in a path as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def _mounts(text: str) -> list[_Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 1:
            continue
        options = frozenset(tail[2].split(",")) if len(tail) > 2 else frozenset()
        mounts.append(_Mount(_unescape(fields[3]), _unescape(fields[4]), tail[0], options))
    return mounts


def _cgroup_paths(text: str, controller: str = "cpu") -> tuple[str | None, str | None]:
    """(v2 path, v1 path of ``controller``) from /proc/self/cgroup."""
    v2 = v1 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and controllers == "":
            v2 = path
        elif controller in controllers.split(","):
            v1 = path
    return v2, v1


def _map_to_dir(root: Path, mount: _Mount, cgroup_path: str) -> Path:
    """Where the files of ``cgroup_path`` are, given the mount that exposes its hierarchy."""
    point = root / mount.point.lstrip("/")
    mroot = mount.root.rstrip("/") or "/"
    if mroot == "/":
        rel = cgroup_path.lstrip("/")
    elif cgroup_path == mroot or cgroup_path.startswith(mroot + "/"):
        rel = cgroup_path[len(mroot) :].lstrip("/")
    else:
        # The process's cgroup is outside what is mounted (a container whose mount root is its own
        # cgroup, with a path that names it from the host): the mount point is the nearest view.
        rel = ""
    target = point / rel
    return target if target.is_dir() else point


def _tightest(leaf: Path, top: Path, reader) -> tuple[tuple[int, int] | None, Path | None]:
    """Walk from ``leaf`` up to ``top``; return the smallest quota/period found and where."""
    best: tuple[int, int] | None = None
    where: Path | None = None
    here = leaf
    while True:
        found = reader(here)
        if found and (best is None or found[0] / found[1] < best[0] / best[1]):
            best, where = found, here
        if here == top or top not in here.parents:
            break
        here = here.parent
    return best, where


def read_cgroup(root: Path | str = "/") -> CgroupCpu:
    """The CPU quota of this process's cgroup, through /proc/self/cgroup and /proc/self/mountinfo.

    Falls back to the root files (``/sys/fs/cgroup/cpu.max``, ``/sys/fs/cgroup/cpu/cpu.cfs_*``) when
    /proc cannot be read, which is right inside a container's own namespace.
    """
    root = Path(root)
    v2_path, v1_path = _cgroup_paths(_read(root / "proc/self/cgroup") or "")
    mounts = _mounts(_read(root / "proc/self/mountinfo") or "")

    candidates: list[tuple[int, Path, Path]] = []  # (version, leaf dir, mount point)
    if v1_path is not None:
        for m in mounts:
            if m.fstype == "cgroup" and "cpu" in m.super_options:
                candidates.append((1, _map_to_dir(root, m, v1_path), root / m.point.lstrip("/")))
                break
    if v2_path is not None:
        for m in mounts:
            if m.fstype == "cgroup2":
                candidates.append((2, _map_to_dir(root, m, v2_path), root / m.point.lstrip("/")))
                break
    if not candidates:
        fs = root / "sys/fs/cgroup"
        if (fs / "cpu.max").exists() or (fs / "cgroup.controllers").exists():
            candidates.append((2, fs, fs))
        elif (fs / "cpu").is_dir():
            candidates.append((1, fs / "cpu", fs / "cpu"))

    # v1's cpu controller comes first: on a hybrid host the v2 hierarchy holds no cpu controller.
    for version, leaf, top in candidates[:1]:
        best, where = _tightest(leaf, top, _quota_v1 if version == 1 else _quota_v2)
        return CgroupCpu(
            version=version,
            quota_cpus=round(best[0] / best[1], 6) if best else None,
            quota_us=best[0] if best else None,
            period_us=best[1] if best else None,
            limit_dir=str(where) if where else None,
            leaf_dir=str(leaf),
        )
    return CgroupCpu()


def read_throttling(cgroup: CgroupCpu) -> dict[str, float] | None:
    """Throttling counters of this process's cgroup: ``nr_throttled`` and ``throttled_s``.

    v2 reports ``throttled_usec``; v1 reports ``throttled_time`` in nanoseconds. None if the file
    is missing (no cgroup, or a kernel without CFS bandwidth control).
    """
    if cgroup.leaf_dir is None:
        return None
    text = _read(Path(cgroup.leaf_dir) / "cpu.stat")
    if not text:
        return None
    stat = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        number = _to_int(value.strip())
        if number is not None:
            stat[key] = number
    if "nr_throttled" not in stat:
        return None
    if "throttled_usec" in stat:
        seconds = stat["throttled_usec"] / 1e6
    else:
        seconds = stat.get("throttled_time", 0) / 1e9
    return {"nr_periods": stat.get("nr_periods", 0), "nr_throttled": stat["nr_throttled"], "throttled_s": seconds}


@dataclass(frozen=True)
class MemoryCgroup:
    """This process's memory cgroup: where it is, its limit, and how often the OOM killer struck."""

    version: int | None = None
    directory: str | None = None

    def _file(self, v1: str, v2: str) -> str | None:
        if self.directory is None:
            return None
        return _read(Path(self.directory) / (v1 if self.version == 1 else v2))

    def oom_kills(self) -> int | None:
        """Processes killed by the OOM killer in this cgroup so far (v1 memory.oom_control, v2 memory.events)."""
        for line in (self._file("memory.oom_control", "memory.events") or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return _to_int(value.strip())
        return None

    def limit_bytes(self) -> int | None:
        """The memory limit; None when unlimited (v1 reports a huge number, v2 "max")."""
        value = _to_int(self._file("memory.limit_in_bytes", "memory.max"))
        return value if value is not None and value < 2**62 else None


def read_memory_cgroup(root: Path | str = "/") -> MemoryCgroup:
    """This process's memory cgroup, found like the CPU one (through /proc/self/cgroup and mountinfo)."""
    root = Path(root)
    v2_path, v1_path = _cgroup_paths(_read(root / "proc/self/cgroup") or "", "memory")
    for m in _mounts(_read(root / "proc/self/mountinfo") or ""):
        if v1_path is not None and m.fstype == "cgroup" and "memory" in m.super_options:
            return MemoryCgroup(1, str(_map_to_dir(root, m, v1_path)))
    for m in _mounts(_read(root / "proc/self/mountinfo") or ""):
        if v1_path is None and v2_path is not None and m.fstype == "cgroup2":
            return MemoryCgroup(2, str(_map_to_dir(root, m, v2_path)))
    return MemoryCgroup()


def parse_override(text: str | None) -> float | None:
    """The value of ``POOLBENCH_CPUS``: None when unset or empty; a positive float otherwise."""
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise CpuOverrideError(
            f"{OVERRIDE_ENV}={text!r} is not a positive number of CPUs; set it to e.g. 2 or 1.5, or unset it"
        )
    return value


def detect(root: Path | str = "/", environ: dict[str, str] | None = None) -> CpuInfo:
    """Every CPU bound of this process. ``root`` and ``environ`` exist so tests can fake them."""
    environ = os.environ if environ is None else environ
    real = Path(root) == Path("/")
    affinity = len(os.sched_getaffinity(0)) if real and hasattr(os, "sched_getaffinity") else None
    process_count = os.process_cpu_count() if real and hasattr(os, "process_cpu_count") else None
    return CpuInfo(
        cpu_count=os.cpu_count() if real else None,
        affinity_cpus=affinity,
        process_cpu_count=process_count,
        cgroup=read_cgroup(root),
        override=parse_override(environ.get(OVERRIDE_ENV)),
    )


__all__ = [
    "OVERRIDE_ENV",
    "CgroupCpu",
    "CpuInfo",
    "CpuOverrideError",
    "MemoryCgroup",
    "detect",
    "read_cgroup",
    "read_memory_cgroup",
    "read_throttling",
]
