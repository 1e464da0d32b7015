"""Workloads give right answers, their checks reject wrong ones, and they run under every start method."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import tempfile
import zlib
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

import workloads
from workloads import cpu_bound, io_bound, overhead, registry

SCALING = list(workloads.SCALING.values())


def test_count_primes_matches_known_values():
    # pi(x): the number of primes below x, from any table of primes
    assert cpu_bound.count_primes(2) == 0
    assert cpu_bound.count_primes(3) == 1
    assert cpu_bound.count_primes(100) == 25
    assert cpu_bound.count_primes(1000) == 168
    assert registry.primes_below(1000) == 168
    assert registry.primes_below(10_000) == 1229


def test_object_square_sum_is_exact_and_uses_python_ints():
    assert cpu_bound.object_square_sum(10) == 285
    big = cpu_bound.object_square_sum(3_000_000)
    assert big == (3_000_000 - 1) * 3_000_000 * (2 * 3_000_000 - 1) // 6  # beyond float64's exact range


def test_ufunc_chain_sums_to_one_and_a_half_n():
    assert cpu_bound.ufunc_chain(1001) == pytest.approx(1.5 * 1001, rel=1e-12)


def test_matmul_trace_agrees_with_numpy():
    a = cpu_bound.matmul_matrix(37)
    assert set(np.unique(a)) <= set(range(7))
    assert cpu_bound.matmul_trace(37) == float(np.trace(a @ a))


def test_zlib_roundtrip_returns_the_input_crc_and_compresses():
    crc, packed = cpu_bound.zlib_roundtrip(100_000)
    assert crc == zlib.crc32(cpu_bound.compressible_bytes(100_000))
    assert packed < 100_000 * 0.75  # 16-letter alphabet: about 4 bits per byte


def test_hash_fresh_buffer_is_a_sha256_chain_over_the_buffer_and_the_last_digest():
    data = bytes(range(256)) * 16
    digest = b""
    for _ in range(8):
        digest = hashlib.sha256(data + digest).digest()
    assert cpu_bound.hash_fresh_buffer(4096) == digest
    assert workloads.get("hash_alloc").check(4096, digest)


def test_sleep_for_sleeps_as_asked_and_returns_the_time_it_measured(monkeypatch):
    # Scripted clock readings, not a measured time: the task asks time.sleep for exactly what it was
    # given and returns the difference of its two clock readings.
    slept, readings = [], iter([100.0, 100.25])
    monkeypatch.setattr(io_bound.time, "sleep", slept.append)
    monkeypatch.setattr(io_bound.time, "perf_counter", lambda: next(readings))
    assert io_bound.sleep_for(0.01) == 0.25
    assert slept == [0.01]


def test_file_roundtrip_reads_back_what_it_wrote_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert io_bound.file_roundtrip((8, 3)) == registry.crc_of_blocks(8 * 1024, 3)
    assert list(tmp_path.iterdir()) == []


def test_overhead_tasks():
    assert overhead.noop(7) == 7
    assert overhead.echo(b"abc") == b"abc"
    assert overhead.whoami(0.0) == os.getpid()


@pytest.mark.parametrize("work", SCALING, ids=lambda w: w.name)
def test_each_workload_passes_its_own_check_at_quick_size(work):
    param = work.size("quick").param
    assert work.check(param, work.func(param))


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("cpu_python", 0),
        ("numpy_object", 1),
        ("numpy_ufunc", 1.0),
        ("numpy_matmul", 1.0),
        ("zlib", (0, 10)),
        ("hash_alloc", b"\0" * 32),
        ("io_sleep", 0.0),
        ("io_file", 0),
    ],
)
def test_checks_reject_wrong_answers(name, wrong):
    work = workloads.get(name)
    assert not work.check(work.size("quick").param, wrong)


def test_registry_records_are_complete():
    assert set(workloads.SCALING) >= {"io_sleep", "io_file", "cpu_python", "numpy_ufunc", "numpy_matmul"}
    for work in [*workloads.SCALING.values(), *workloads.PROBES.values()]:
        assert work.kind in workloads.KINDS
        assert work.gil in workloads.GIL
        assert set(work.sizes) == set(workloads.PROFILES)
        assert work.models
        assert pickle.loads(pickle.dumps(work.func)) is work.func  # by reference, not by value
    kinds = {(w.kind, w.gil) for w in SCALING}
    # CPU-bound and GIL-bound are different things: native code on both sides of the GIL.
    assert ("cpu-native", "holds") in kinds
    assert ("cpu-native", "releases") in kinds
    assert ("cpu-python", "holds") in kinds


def test_default_profile_is_bigger_than_quick():
    for work in SCALING:
        assert work.size("default").tasks >= work.size("quick").tasks >= 8


@pytest.mark.parametrize("method", multiprocessing.get_all_start_methods())
def test_workloads_run_in_worker_processes_under_each_start_method(method):
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for work in SCALING:
            param = work.size("quick").param
            assert work.check(param, pool.submit(work.func, param).result()), work.name
