"""Effective-CPU detection on fake /proc and cgroup trees (v1 and v2) built under tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import cpus
from bench.cpus import CgroupCpu, CpuInfo

V1_MOUNT = "35 25 0:30 {root} /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
V1_OTHER = "36 25 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
V2_MOUNT = "30 25 0:26 {root} /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def make_tree(root: Path, cgroup: str, mountinfo: str, files: dict[str, str]) -> Path:
    """A fake filesystem: /proc/self/{cgroup,mountinfo} and cgroup files at the given paths."""
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(cgroup)
    (root / "proc/self/mountinfo").write_text(mountinfo)
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return root


def v1(root: Path, path: str, mount_root: str, files: dict[str, str]) -> CgroupCpu:
    make_tree(root, f"5:memory:{path}\n4:cpu,cpuacct:{path}\n", V1_OTHER + V1_MOUNT.format(root=mount_root), files)
    return cpus.read_cgroup(root)


def v2(root: Path, path: str, mount_root: str, files: dict[str, str]) -> CgroupCpu:
    make_tree(root, f"0::{path}\n", V2_MOUNT.format(root=mount_root), files)
    return cpus.read_cgroup(root)


CPU = "/sys/fs/cgroup/cpu,cpuacct"


def test_v1_container_whose_mount_root_is_its_own_cgroup(tmp_path):
    # As seen in a `cpus: 0.5` container here: /proc/self/cgroup names /docker/<id>, but the files
    # sit at the mount point, because the mount's root is that cgroup (golang/go #76390).
    found = v1(
        tmp_path,
        "/docker/abc123",
        "/docker/abc123",
        {f"{CPU}/cpu.cfs_quota_us": "50000\n", f"{CPU}/cpu.cfs_period_us": "100000\n"},
    )
    assert found.version == 1
    assert found.quota_cpus == 0.5
    assert found.leaf_dir == str(tmp_path / CPU.lstrip("/"))


def test_v1_host_nested_cgroup_limit_below_the_mount_root(tmp_path):
    found = v1(
        tmp_path,
        "/batch/job7",
        "/",
        {
            f"{CPU}/cpu.cfs_quota_us": "-1",
            f"{CPU}/cpu.cfs_period_us": "100000",
            f"{CPU}/batch/cpu.cfs_quota_us": "-1",
            f"{CPU}/batch/cpu.cfs_period_us": "100000",
            f"{CPU}/batch/job7/cpu.cfs_quota_us": "150000",
            f"{CPU}/batch/job7/cpu.cfs_period_us": "100000",
        },
    )
    assert found.quota_cpus == 1.5
    assert found.quota_us == 150000
    assert found.period_us == 100000
    assert found.limit_dir.endswith("batch/job7")


def test_v1_minus_one_means_no_quota(tmp_path):
    found = v1(tmp_path, "/", "/", {f"{CPU}/cpu.cfs_quota_us": "-1", f"{CPU}/cpu.cfs_period_us": "100000"})
    assert found.version == 1
    assert found.quota_cpus is None


def test_v1_parent_limit_tighter_than_leaf_wins(tmp_path):
    found = v1(
        tmp_path,
        "/team/app",
        "/",
        {
            f"{CPU}/team/cpu.cfs_quota_us": "100000",
            f"{CPU}/team/cpu.cfs_period_us": "100000",
            f"{CPU}/team/app/cpu.cfs_quota_us": "400000",
            f"{CPU}/team/app/cpu.cfs_period_us": "100000",
        },
    )
    assert found.quota_cpus == 1.0
    assert found.limit_dir.endswith("/team")


def test_v2_quota_in_cpu_max(tmp_path):
    found = v2(tmp_path, "/", "/", {"/sys/fs/cgroup/cpu.max": "150000 100000\n"})
    assert (found.version, found.quota_cpus) == (2, 1.5)


def test_v2_parent_limit_binds_an_unlimited_leaf(tmp_path):
    # golang/go #81180: leaf "max", parent 2 CPUs; reading only the leaf finds no limit.
    found = v2(
        tmp_path,
        "/kubepods/pod1/ctr",
        "/",
        {
            "/sys/fs/cgroup/kubepods/pod1/cpu.max": "200000 100000",
            "/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "max 100000",
        },
    )
    assert found.quota_cpus == 2.0
    assert found.leaf_dir.endswith("kubepods/pod1/ctr")


@pytest.mark.parametrize("text", ["max 100000", "max", "", "garbage here", "0 100000", "-5 100000", "100000 0"])
def test_v2_unlimited_empty_or_malformed_cpu_max_means_no_quota(tmp_path, text):
    found = v2(tmp_path, "/", "/", {"/sys/fs/cgroup/cpu.max": text})
    assert found.version == 2
    assert found.quota_cpus is None


def test_v2_quota_without_period_uses_the_default_period(tmp_path):
    assert v2(tmp_path, "/", "/", {"/sys/fs/cgroup/cpu.max": "50000"}).quota_cpus == 0.5


def test_missing_quota_files_mean_no_quota(tmp_path):
    found = v1(tmp_path, "/x", "/", {f"{CPU}/x/tasks": ""})
    assert found.version == 1
    assert found.quota_cpus is None


def test_process_cgroup_outside_the_mount_falls_back_to_the_mount_point(tmp_path):
    found = v1(
        tmp_path,
        "/elsewhere/x",
        "/docker/abc",
        {f"{CPU}/cpu.cfs_quota_us": "100000", f"{CPU}/cpu.cfs_period_us": "100000"},
    )
    assert found.quota_cpus == 1.0


def test_escaped_mount_point(tmp_path):
    mount = "30 25 0:26 / /sys/fs/cg\\040root rw - cgroup2 cgroup2 rw\n"
    make_tree(tmp_path, "0::/\n", mount, {"/sys/fs/cg root/cpu.max": "100000 100000"})
    assert cpus.read_cgroup(tmp_path).quota_cpus == 1.0


def test_no_proc_files_falls_back_to_root_files(tmp_path):
    (tmp_path / "sys/fs/cgroup").mkdir(parents=True)
    (tmp_path / "sys/fs/cgroup/cpu.max").write_text("250000 100000")
    assert cpus.read_cgroup(tmp_path).quota_cpus == 2.5
    v1_root = tmp_path / "other"
    (v1_root / "sys/fs/cgroup/cpu").mkdir(parents=True)
    (v1_root / "sys/fs/cgroup/cpu/cpu.cfs_quota_us").write_text("50000")
    (v1_root / "sys/fs/cgroup/cpu/cpu.cfs_period_us").write_text("100000")
    found = cpus.read_cgroup(v1_root)
    assert (found.version, found.quota_cpus) == (1, 0.5)


def test_nothing_at_all_means_no_cgroup(tmp_path):
    found = cpus.read_cgroup(tmp_path)
    assert found == CgroupCpu()
    assert cpus.read_throttling(found) is None


def test_hybrid_host_prefers_the_v1_cpu_controller(tmp_path):
    make_tree(
        tmp_path,
        "0::/\n4:cpu,cpuacct:/\n",
        V1_MOUNT.format(root="/") + "40 25 0:40 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        {f"{CPU}/cpu.cfs_quota_us": "200000", f"{CPU}/cpu.cfs_period_us": "100000"},
    )
    found = cpus.read_cgroup(tmp_path)
    assert (found.version, found.quota_cpus) == (1, 2.0)


def test_throttling_counters_v1_and_v2(tmp_path):
    d1 = tmp_path / "v1"
    d1.mkdir()
    (d1 / "cpu.stat").write_text("nr_periods 40\nnr_throttled 7\nthrottled_time 250000000\n")
    t1 = cpus.read_throttling(CgroupCpu(version=1, leaf_dir=str(d1)))
    assert t1 == {"nr_periods": 40, "nr_throttled": 7, "throttled_s": 0.25}
    d2 = tmp_path / "v2"
    d2.mkdir()
    (d2 / "cpu.stat").write_text("usage_usec 100\nnr_periods 3\nnr_throttled 2\nthrottled_usec 1500000\n")
    t2 = cpus.read_throttling(CgroupCpu(version=2, leaf_dir=str(d2)))
    assert t2 == {"nr_periods": 3, "nr_throttled": 2, "throttled_s": 1.5}
    (d2 / "cpu.stat").write_text("usage_usec 100\n")  # no CFS bandwidth counters
    assert cpus.read_throttling(CgroupCpu(version=2, leaf_dir=str(d2))) is None


@pytest.mark.parametrize(
    ("cpu_count", "affinity", "quota", "override", "effective", "recommended"),
    [
        (64, 64, 2.0, None, 2.0, 2),  # the container trap: 64 visible, 2 usable
        (2, 2, 0.5, None, 0.5, 1),
        (2, 2, 1.5, None, 1.5, 2),  # rounded up: two workers can use the whole quota
        (8, 1, None, None, 1.0, 1),  # cpuset
        (8, 8, None, 3.0, 3.0, 3),
        (8, 8, None, None, 8.0, 8),
        (None, None, None, None, 1.0, 1),
    ],
)
def test_effective_cpus_is_the_tightest_bound(cpu_count, affinity, quota, override, effective, recommended):
    info = CpuInfo(cpu_count, affinity, None, CgroupCpu(version=2 if quota else None, quota_cpus=quota), override)
    assert info.effective_cpus == effective
    assert info.recommended_workers == recommended
    record = info.as_dict()
    for key in ("cpu_count", "affinity_cpus", "cgroup_version", "cpu_quota", "effective_cpus", "recommended_workers"):
        assert key in record
    assert record["cpu_quota"] == quota


@pytest.mark.parametrize("text", ["abc", "0", "-1", "nan", "inf"])
def test_bad_override_is_refused_with_the_variable_named(text):
    with pytest.raises(cpus.CpuOverrideError, match=cpus.OVERRIDE_ENV):
        cpus.parse_override(text)


def test_override_caps_detection(tmp_path):
    info = cpus.detect(tmp_path, environ={cpus.OVERRIDE_ENV: "1.5"})
    assert info.override == 1.5
    assert info.effective_cpus == 1.5
    assert cpus.parse_override("") is None


def test_detect_on_this_machine_is_consistent():
    info = cpus.detect()
    assert info.cpu_count == os.cpu_count()
    assert info.affinity_cpus == len(os.sched_getaffinity(0))
    assert 0 < info.effective_cpus <= info.cpu_count
    assert 1 <= info.recommended_workers <= info.cpu_count
