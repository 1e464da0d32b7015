"""The executor registry (common/executors.py) and the backends it names (bench/backend.py).

An executor is one record, one backend module and its tests: these tests add one the way a
contributor would (a record and a module, nothing else) and check it joins the sweep, is built,
labelled, ranked and plotted; and that the code names the dask and interpreter pools only in their
own modules and where its content is about them.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import sys
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import common.executors as registry
from bench import backend as backends
from bench import cases, config, executors, harness
from bench.backend import Backend
from bench.config import DEFAULT_EXECUTORS, EXECUTORS, build_config
from bench.cpus import CpuInfo
from bench.options import Option, OptionError
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


class EchoPool(ThreadPoolExecutor):
    """The contributor's pool: a thread pool that remembers its option and how often it was settled."""

    def __init__(self, workers: int | None, loudness: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="echo")
        self.loudness = loudness
        self.settled = 0

    def settle(self) -> float:
        self.settled += 1
        return 0.001


def _echo_loudness(options):
    text = options.get("echo_loudness")
    if text is not None and not text.isdigit():
        raise OptionError(f"--echo-loudness: {text!r} is not a whole number; give 0 or more")
    return int(text or 3)


@pytest.fixture
def one_more_executor(monkeypatch):
    """A contributor's new executor: a record and a module with its backend, nothing else. Its backend has an
    option of its own (``--echo-loudness``, also ECHO_LOUDNESS), a wait before each serial probe (settle) and
    a key of its own in every batch case's record."""
    module = types.ModuleType("poolbench_test_echo_backend")
    module.BACKEND = Backend(
        make=lambda workers, _variant, _setup, state: EchoPool(workers, state),
        options=(Option("echo_loudness", "how loud the echo pool is (default: 3)", env="ECHO_LOUDNESS"),),
        configure=_echo_loudness,
        recorded=lambda state: {"echo_loudness": state},
        variants=lambda _cfg: ("a", "b"),
        settle=lambda pool: pool.settle,
        extra_info=lambda pool: {"echo_loudness": pool.loudness},
    )
    monkeypatch.setitem(sys.modules, module.__name__, module)
    record = registry.Executor(
        name="echo",
        words="echo pools",
        cost_rank=5,
        shares_memory=True,
        shares_gil=True,
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
    monkeypatch.setattr(config, "EXECUTORS", (*config.EXECUTORS, "echo"))
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
    pool = executors.make_executor("echo", 2, "a", blas_threads=1, state=cfg.state("echo"))
    with executors.closing(pool):
        assert pool.submit(sum, [1, 2]).result() == 3
        assert pool.loudness == 3  # its option's default, through its state
    from scripts import plot  # noqa: PLC0415

    assert plot.style("echo/a") == ("tab:pink", "*")
    assert registry.cost_order()[-1] == "echo"  # ranked by its record
    assert registry.of("echo/b") is one_more_executor


def test_a_new_executors_option_settle_and_record_key_come_through_its_backend(one_more_executor, monkeypatch):
    cfg = build_config(
        {"executors": "serial,thread", "cases": "scaling", "workloads": "cpu_python", "echo_loudness": "7"},
        TWO_CPUS,
        missing=INSTALLED,
    )
    assert cfg.state("echo") == 7 and cfg.as_dict()["echo_loudness"] == 7  # read once, recorded with the run
    monkeypatch.setenv("ECHO_LOUDNESS", "9")
    assert build_config({}, TWO_CPUS, environ={"ECHO_LOUDNESS": "9"}, missing=INSTALLED).state("echo") == 9
    with pytest.raises(OptionError, match="--echo-loudness: 'loud' is not a whole number"):
        build_config({"echo_loudness": "loud"}, TWO_CPUS, missing=INSTALLED)
    assert "echo_loudness" in [o.name for o in config.executor_options()]  # what pytest bench registers
    cfg = dataclasses.replace(cfg, executors=(*cfg.executors, "echo"))
    case = next(c for c in cases.scaling_cases(cfg) if c.executor == "echo" and c.workers == 2)
    bench = _Recorder()
    with harness.case_pool(case, cfg) as pool:
        info = harness.run_batches(
            bench, cfg, case, pool, func=abs, args=[-1] * 4, check=lambda _, r: r == 1, rounds=2,
            warmup_rounds=0, probe_args=[-1], warm_args=[-1] * 2,
        )  # fmt: skip
        assert pool.settled == 3  # before each of the three probes: the pool's own wait, asked of its backend
    assert info["echo_loudness"] == 7 and len(info["settle_samples_s"]) == 3


def test_a_new_executor_gets_its_column_in_the_builds_table(one_more_executor, tmp_path):
    # the same results as two builds, the second's thread points relabelled as the echo pool's: the
    # table across builds gains an "echo pools" column from the record, with no change to the report
    from scripts.analysis import Analysis  # noqa: PLC0415
    from scripts.builds import build_rows, builds_section  # noqa: PLC0415
    from scripts.results import load  # noqa: PLC0415

    fixtures = ROOT / "tests" / "fixtures"
    data = json.loads((fixtures / "quick-2cpus-py3.14.json").read_text())
    for bench in data["benchmarks"]:
        if bench["extra_info"].get("executor") == "thread":
            bench["extra_info"]["executor"] = "echo"
            bench["name"] = bench["name"].replace("-thread-", "-echo-")
    relabelled = tmp_path / "echo.json"
    relabelled.write_text(json.dumps(data))
    records = load([fixtures / "quick-2cpus.json", relabelled])
    an = Analysis(records)
    by_build = {r.run.python_build: [x for x in records if x.run is r.run] for r in records}
    rows = {row.build: row for row in build_rows(by_build, "cpu_python", points_of=an.points_of)}
    assert rows["3.14"].of("echo") and not rows["3.14"].of("thread") and not rows["3.11"].of("echo")
    section = builds_section(an)
    header = next(line for line in section if line.startswith("| build | GIL"))
    assert header.split(" | ")[-2] == "echo pools"  # last in the recommendation order, its record's words
    row = next(line for line in section if line.startswith("| py3.14"))
    assert row.split(" | ")[-2].endswith("]")  # its speedup and interval


class _Recorder:
    """pytest-benchmark's fixture as far as run_batches uses it."""

    def __init__(self) -> None:
        self.extra_info: dict = {}

    def pedantic(self, target, setup, teardown, rounds, warmup_rounds):
        for _ in range(warmup_rounds + rounds):
            setup()
            target()
            teardown()


#: Modules that may name the dask and interpreter pools in code: their own, and (scripts) those whose
#: content is about them.
OWN_MODULES = {
    "dask": {
        "bench/cluster.py",  # its backend
        "scripts/cluster_report.py",  # its section of the report
        "scripts/evidence_dask.py",  # this repository's dask evidence topic (evidence/dask/)
        "scripts/evidence.py",  # ... which it lists beside every other topic
        "scripts/limits.py",  # a --cluster shape is a dask cluster of containers
        "scripts/containers.py",  # ... whose services are a dask scheduler and workers
        "scripts/matrix.py",  # ... which its --cluster option runs
    },
    "interpreter": {
        "bench/interpreters.py",  # its backend
        "scripts/claims.py",  # the GIL and cost claims, which name the subinterpreters' figures
        "scripts/evidence_builds.py",  # the builds evidence's interpreter-pool target
    },
}


def code_words(path: Path) -> Iterator[tuple[int, str]]:
    """(line, word) for every identifier and string literal of a module's code: names, attributes, arguments,
    definitions, imports, and strings that are not docstrings (comments and docstrings are prose)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.lineno, node.name
        elif isinstance(node, ast.arg):
            yield node.lineno, node.arg
        elif isinstance(node, ast.keyword) and node.arg:
            yield node.value.lineno, node.arg
        elif isinstance(node, ast.alias):
            yield node.lineno if hasattr(node, "lineno") else 0, node.asname or node.name
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


@pytest.mark.parametrize("name", sorted(OWN_MODULES))
def test_the_suite_names_the_dask_and_interpreter_pools_only_in_their_own_modules(name):
    # an identifier that holds the name (dask_config, init_dask_worker), or a literal that names it as a word
    # ("dask", "dask/tuned", "the dask scheduler"): "subinterpreter" and "the interpreter's exit" are not it
    word = re.compile(rf"\b{name}\b(?!'s)", re.IGNORECASE)
    found = []
    for path in sorted([*(ROOT / "bench").glob("*.py"), *(ROOT / "scripts").glob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel in OWN_MODULES[name]:
            continue
        for n, text in code_words(path):
            if (name in text.lower() and text.isidentifier()) or (not text.isidentifier() and word.search(text)):
                found.append(f"{rel}:{n}: {text[:80]!r}")
    assert not found, "\n".join(found)
