"""The executor registry (common/executors.py) and the backends it names (bench/backend.py).

An executor is one record, one backend module and its tests: these tests add one the way a
contributor would (a record and a module, nothing else) and check it joins the sweep, is built,
labelled, ranked and plotted; and that the code names the dask and interpreter pools only in their
own modules and where its content is about them.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import common.executors as registry
from bench import backend as backends
from bench import cases, executors
from bench.backend import Backend
from bench.config import DEFAULT_EXECUTORS, EXECUTORS, build_config
from bench.cpus import CpuInfo
from common.executors import Pool

ROOT = Path(__file__).resolve().parent.parent
TWO_CPUS = CpuInfo(cpu_count=2, affinity_cpus=2, process_cpu_count=2)
INSTALLED = {"dask": None, "interpreter": None}


def test_every_record_resolves_to_a_backend_and_the_options_list_them_in_order():
    assert tuple(registry.REGISTRY) == EXECUTORS
    assert tuple(n for n, e in registry.REGISTRY.items() if e.default) == DEFAULT_EXECUTORS
    for name, spec in registry.REGISTRY.items():
        assert spec.name == name
        assert isinstance(backends.backend(name), Backend), spec.backend
        assert spec.cases <= registry.ALL_CASES
    assert registry.cost_order() == ["thread", "interpreter", "process", "dask"]


@pytest.mark.parametrize("text", ["thread", "process/fork", "dask/tuned", "serial"])
def test_a_pool_name_round_trips_through_the_pool_value(text):
    pool = Pool.parse(text)
    assert str(pool) == text
    assert pool.spec is registry.REGISTRY[text.split("/")[0]]
    assert registry.family(text) == pool.executor


@pytest.fixture
def one_more_executor(monkeypatch):
    """A contributor's new executor: a record and a module with its backend, nothing else."""
    module = types.ModuleType("poolbench_test_echo_backend")
    module.BACKEND = Backend(
        make=lambda workers, _variant, _setup, _scheduler: ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="echo"
        ),
        variants=lambda _cfg: ("a", "b"),
    )
    monkeypatch.setitem(sys.modules, module.__name__, module)
    record = registry.Executor(
        name="echo",
        words="echo pools",
        cost_rank=5,
        shares_memory=True,
        in_process=True,
        variant="flavour",
        cases=frozenset({"scaling", "dispatch"}),
        default=False,
        isolated=False,
        honours_chunksize=False,
        style=("tab:pink", "*"),
        backend=f"{module.__name__}:BACKEND",
    )
    table = types.MappingProxyType({**registry.REGISTRY, "echo": record})
    for where in (registry, backends, cases, executors):
        monkeypatch.setattr(where, "REGISTRY", table)
    backends.backend.cache_clear()
    yield record
    backends.backend.cache_clear()


def test_a_new_executor_is_one_record_and_its_module(one_more_executor):
    cfg = build_config(
        {"executors": "serial,thread", "workers": "1,2", "cases": "scaling,dispatch"}, TWO_CPUS, missing=INSTALLED
    )
    cfg = dataclasses.replace(cfg, executors=(*cfg.executors, "echo"))
    scaling = [c.id for c in cases.scaling_cases(cfg) if c.workload == "cpu_python" and c.pass_no == 1]
    assert "cpu_python-echo-a-w2" in scaling and "cpu_python-echo-b-w1" in scaling
    assert [c.id for c in cases.dispatch_cases(cfg) if c.executor == "echo"] == [
        "noop-echo-a-w2-c1",
        "noop-echo-b-w2-c1",
    ]  # one chunksize: its record says chunksize changes nothing
    assert not [c for c in cases.crash_cases(cfg) if c.executor == "echo"]  # its record does not join crash cases
    pool = executors.make_executor("echo", 2, "a", blas_threads=1)
    with executors.closing(pool):
        assert pool.submit(sum, [1, 2]).result() == 3
    from scripts import plot  # noqa: PLC0415

    assert plot.style("echo/a") == ("tab:pink", "*")
    assert registry.cost_order()[-1] == "echo"  # ranked by its record
    assert registry.of("echo/b") is one_more_executor


#: Modules that may spell the dask and interpreter pools' names as values: their own, and (scripts)
#: those whose content is about them.
OWN_MODULES = {
    "dask": {
        "bench/cluster.py",  # its backend
        "scripts/cluster_report.py",  # its section of the report
        "scripts/evidence.py",  # this repository's dask evidence topic (evidence/dask/)
        "scripts/limits.py",  # a --cluster shape is a dask cluster of containers
    },
    "interpreter": {
        "bench/interpreters.py",  # its backend
        "scripts/claims.py",  # the GIL and cost claims, which name the subinterpreters' figures
        "scripts/metrics.py",  # the builds table's interpreter-pool column
    },
}


@pytest.mark.parametrize("name", sorted(OWN_MODULES))
def test_the_suite_names_the_dask_and_interpreter_pools_only_in_their_own_modules(name):
    found = []
    for path in sorted([*(ROOT / "bench").glob("*.py"), *(ROOT / "scripts").glob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel in OWN_MODULES[name]:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(rf"""["']{name}["']""", line):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
