"""Command-line options, read once into one frozen :class:`SuiteConfig`.

The parsing here is plain Python (no pytest), so the tests can feed it every bad value directly;
``bench/conftest.py`` only registers the options and turns :class:`OptionError` into a pytest usage
error (one line, exit code 4).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from bench import allocator
from bench.backend import backend, missing_line
from bench.cpus import CpuInfo
from bench.options import Option, OptionError, items, parse_names
from common import executors as executor_names
from common import plan, reference
from common.environment import LABEL_ENV, RUNNER_ENV, SKIP_MISSING_ENV
from common.plan import Sizing
from workloads import PROFILES, get, scaling_names
from workloads.io_bound import IO_DIR_ENV

#: Every executor, in registry order (common/executors.py: one record each).
EXECUTORS = executor_names.NAMES
#: Run unless --executors says otherwise (each record's ``default``). An executor this Python or
#: install lacks is skipped from the default set with one line; opt-in ones (a dask cluster costs
#: seconds to start per case, and ``distributed`` is an optional dependency) run when named.
DEFAULT_EXECUTORS = executor_names.DEFAULTS
CASES = executor_names.CASES
#: ``--sizes``: calibrated keeps this machine's last calibration while it fits (bench/calibration.py), fresh
#: calibrates anew, fixed runs the registry's sizes.
SIZES = ("calibrated", "fresh", "fixed")
#: ``--task-stack``'s choices (workloads/stack.py).
TASK_STACKS = ("rotate", "fixed")
#: The default-workers trap is shown on one CPU-bound and one I/O-bound workload, in every run.
DEFAULT_WORKERS_WORKLOADS = ("cpu_python", "io_sleep")

#: Rounds, passes and tasks per busy CPU per profile (common/plan.py).
PROFILE_SETTINGS = plan.PROFILE_SETTINGS
DISPATCH_CHUNKSIZES = (1, 16, 256)
PAYLOAD_BYTES = MappingProxyType({"1KiB": 1024, "1MiB": 1024**2, "16MiB": 16 * 1024**2})


def default_start_method() -> str:
    """The platform's default start method (fork on Linux up to 3.13, forkserver from 3.14)."""
    return multiprocessing.get_context().get_start_method()


def parse_workers(text: str | None, recommended: int) -> tuple[int, ...]:
    """``--workers``: positive whole numbers, comma-separated; default common/plan.sweep (1,2,4,8 on 2 CPUs)."""
    if text is None:
        return plan.sweep(recommended)
    values = []
    for item in items("--workers", text):
        try:
            value = int(item)
        except ValueError:
            value = 0
        if value < 1 or value > 1024:
            raise OptionError(
                f"--workers: {item!r} is not a whole number from 1 to 1024; use a comma list such as 1,2,4,8"
            )
        values.append(value)
    return tuple(sorted(set(values)))


def parse_executors(
    text: str | None, missing: Mapping[str, str | None] | None = None, skip_missing: bool = False
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``--executors``, and the executors left out because this Python or install lacks them.

    ``missing`` maps an executor to why it cannot run here (None: it can; default: asked of
    :func:`missing_line`). Naming such an executor is an error, unless ``skip_missing`` (a matrix
    across builds: common.schema SKIP_MISSING_ENV); the default set and ``all`` skip it, and the run says so in
    one line at start. With ``skip_missing``, a list whose named pools all are missing (serial aside)
    is an error too: that build has nothing of what was asked to measure.
    """
    chosen = parse_names("--executors", text, EXECUTORS, DEFAULT_EXECUTORS)
    asked = None if text is None or text.strip() == "all" else set(items("--executors", text))
    keep, skipped, why_not = [], [], {}
    for name in chosen:
        why = missing[name] if missing is not None and name in missing else missing_line(name)
        if why is None:
            keep.append(name)
        elif asked is None or skip_missing:
            skipped.append(name)
            why_not[name] = why
        else:
            raise OptionError(f"--executors {name}: {why}, or leave {name} out")
    if skip_missing and asked is not None and skipped and not [k for k in keep if k != "serial"]:
        reasons = "; ".join(f"{n}: {why_not[n]}" for n in skipped)
        raise OptionError(
            f"--executors {text.strip()}: no pool of these runs on this Python ({reasons}); "
            "run this build with executors it has, or leave it out of --pythons"
        )
    return tuple(keep), tuple(skipped)


def parse_profile(text: str | None) -> str:
    if text is None:
        return "default"
    if text not in PROFILES:
        raise OptionError(f"--profile: unknown {text!r}; choose one of {', '.join(PROFILES)}")
    return text


def parse_malloc(text: str | None) -> str:
    """``--malloc``: the allocator policy (bench/allocator.py says what each models)."""
    if text is None:
        return allocator.DEFAULT
    if text not in allocator.POLICIES:
        raise OptionError(f"--malloc: unknown {text!r}; choose neutral (the default), fixed or dynamic")
    return text


def parse_task_stack(text: str | None) -> str:
    """``--task-stack``: rotate (the default; workloads/stack.py) or fixed."""
    if text is None:
        return "rotate"
    if text not in TASK_STACKS:
        raise OptionError(f"--task-stack: unknown {text!r}; choose rotate (the default) or fixed")
    return text


def parse_sizes(text: str | None, sizes_from: str | None) -> str:
    """``--sizes``: calibrated (the default: this machine's last calibration kept while it fits), fresh or
    fixed; ``--sizes-from`` replaces them."""
    if text is not None and text not in SIZES:
        raise OptionError(
            f"--sizes: unknown {text!r}; choose calibrated (the default), fresh or fixed, or use --sizes-from"
        )
    if text is not None and sizes_from is not None:
        raise OptionError(f"--sizes {text} and --sizes-from: choose one (--sizes-from reuses a run's sizes exactly)")
    return "from" if sizes_from is not None else (text or "calibrated")


def read_sizes_from(path: str, profile: str, names: tuple[str, ...]) -> dict[str, Sizing]:
    """``--sizes-from RESULT``: the task parameters a saved run used, for every workload of this run.

    One line (an :class:`OptionError`) when the file is missing, is not JSON, is not a poolbench
    result that recorded its sizes (schema 5), was another profile, or lacks a workload.
    """
    where = f"--sizes-from {path}"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise OptionError(
            f"{where}: no such file; give a results .json saved by `pytest bench --benchmark-autosave`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"{where}: cannot be read ({exc}); check the path and its permissions") from None
    except json.JSONDecodeError as exc:
        raise OptionError(
            f"{where}: not valid JSON (line {exc.lineno}: {exc.msg}); give a results file saved by pytest bench"
        ) from None
    info = data.get("machine_info", {}).get("poolbench") if isinstance(data, dict) else None
    sizes = info.get("sizes") if isinstance(info, dict) else None
    if not isinstance(sizes, dict) or not all(isinstance(v, dict) and "param" in v for v in sizes.values()):
        raise OptionError(
            f"{where}: not a poolbench result that recorded its task sizes (schema 5 or newer); "
            "give a results file of this poolbench version, or leave --sizes-from out to calibrate"
        )
    ran = (info.get("config") or {}).get("profile")
    if ran != profile:
        raise OptionError(f"{where}: that run was profile {ran!r}, this one is {profile!r}; pass --profile {ran}")
    lacking = [name for name in names if name not in sizes]
    if lacking:
        raise OptionError(
            f"{where}: holds no size for workload {lacking[0]!r}; leave it out of --workloads, "
            "or leave --sizes-from out to calibrate"
        )
    return {name: Sizing(as_saved(sizes[name]["param"]), f"from {path}", sizes[name].get("task_s")) for name in names}


def as_saved(param: Any) -> Any:
    """A parameter read back from JSON: a list was a tuple when it was saved (``io_file``'s (KiB, files))."""
    return tuple(param) if isinstance(param, list) else param


#: Per-case time limit: far above any case of the full profile here (the longest took about a
#: minute), low enough that a hung task cannot stall an unattended run for long.
DEFAULT_CASE_TIMEOUT_S = 600.0


def parse_case_timeout(text: str | None) -> float:
    """``--case-timeout``: seconds (0 turns the limit off)."""
    if text is None:
        return DEFAULT_CASE_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and value < 1e7):
        raise OptionError(f"--case-timeout: {text!r} is not a number of seconds >= 0; use e.g. 600, or 0 for no limit")
    return value


def parse_journal(text: str | None) -> str | None:
    if text is None:
        return None
    if not text.strip():
        raise OptionError("--journal: empty path; give a file path such as results/run.journal.jsonl")
    parent = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(parent):
        raise OptionError(f"--journal: folder {parent!r} does not exist; create it or choose another path")
    return text


def parse_blas_threads(text: str | None) -> int:
    if text is None:
        return 1
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise OptionError(f"--blas-threads: {text!r} is not a whole number >= 1; use 1 (the default) or more")
    return value


def parse_settings(passes: str | None, profile: str, tasks_per_cpu: str | None = None) -> Mapping[str, Any]:
    """``--passes`` (how many times every scaling point is measured) and ``--tasks-per-cpu`` (k of a scaling
    round, common/plan.py): the profile's settings with them (default: the profile's)."""
    settings = dict(PROFILE_SETTINGS[profile])
    for option, key, text_ in (("--passes", "passes", passes), ("--tasks-per-cpu", "tasks_per_cpu", tasks_per_cpu)):
        if text_ is None:
            continue
        try:
            value = int(text_)
        except ValueError:
            value = 0
        if value < 1:
            raise OptionError(
                f"{option}: {text_!r} is not a whole number >= 1; use {settings[key]} (the {profile} profile's) or more"
            )
        settings[key] = value
    return MappingProxyType(settings)


#: Where the run itself runs (common/environment.py RUNNER_ENV).
RUNNERS = ("host", "docker", "affinity")


def parse_label(text: str | None) -> str | None:
    """``POOLBENCH_LABEL``: the name of the CPU limit a run measures (a matrix service name)."""
    if text is None or text == "":
        return None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", text):
        raise OptionError(
            f"{LABEL_ENV}={text!r}: use up to 64 letters, digits, '.', '_' or '-' (e.g. cpus-1.5), or unset it"
        )
    return text


def parse_io_dir(text: str | None) -> str:
    """``--io-dir`` / ``POOLBENCH_IO_DIR``: an existing folder for ``io_file``'s files (default: the temp folder).

    Returned absolute, so workers started anywhere write to the same place.
    """
    if text is None or text == "":
        return os.path.realpath(tempfile.gettempdir())
    if not os.path.isdir(text):
        raise OptionError(
            f"--io-dir / {IO_DIR_ENV}: {text!r} is not an existing folder; "
            "create it (on the disk to measure) or leave it unset"
        )
    return os.path.realpath(text)


def parse_runner(text: str | None) -> str:
    if text is None or text == "":
        return "host"
    if text not in RUNNERS:
        raise OptionError(f"{RUNNER_ENV}={text!r}: choose one of {', '.join(RUNNERS)}, or unset it")
    return text


@dataclass(frozen=True)
class SuiteConfig:
    """Everything a run needs to know, fixed before the first case is collected."""

    profile: str
    workers: tuple[int, ...]
    executors: tuple[str, ...]
    workloads: tuple[str, ...]
    start_methods: tuple[str, ...]
    cases: tuple[str, ...]
    blas_threads: int
    malloc: str
    cpu: CpuInfo
    default_start_method: str
    settings: Any = field(default=None)
    label: str | None = None
    #: Where scaling tasks' C stacks lie (``--task-stack``): "rotate" or "fixed" (workloads/stack.py).
    task_stack: str = "rotate"
    runner: str = "host"  # RUNNERS
    case_timeout: float = DEFAULT_CASE_TIMEOUT_S
    journal: str | None = None
    io_dir: str = field(default_factory=lambda: os.path.realpath(tempfile.gettempdir()))
    #: Executors the default set or ``all`` asked for that cannot run here (no ``distributed``;
    #: a Python without InterpreterPoolExecutor); the run says so at start.
    skipped_executors: tuple[str, ...] = ()
    #: Per executor, what its backend made of its own options and found at start (bench/backend.py
    #: ``configure`` and ``prepare``: a dask cluster's address, configurations and size, what a
    #: subinterpreter can import); None for an executor with nothing of its own.
    executor_state: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: How task sizes are chosen: "calibrated" (at start, bench/calibration.py), "fixed" (the registry's)
    #: or "from" (``--sizes-from``, read into ``sizes`` by :func:`build_config`).
    sizes_mode: str = "calibrated"
    sizes_from: str | None = None
    #: Each selected scaling workload's task parameter, filled in before the first case
    #: (bench/conftest.py calibrates); None until then.
    sizes: Mapping[str, Sizing] | None = None

    def param(self, workload: str) -> Any:
        """The task parameter ``workload`` runs at in this run."""
        if self.sizes and workload in self.sizes:
            return self.sizes[workload].param
        return get(workload).size(self.profile).param

    def batch(self, workers: int) -> int:
        """Tasks in one scaling batch at ``workers`` workers (common/plan.batch_tasks)."""
        return plan.batch_tasks(workers, self.cpu.recommended_workers, self.settings["tasks_per_cpu"])

    def as_dict(self) -> dict:
        """The options as recorded in ``machine_info["poolbench"]["config"]``."""
        return {
            "profile": self.profile,
            "workers": list(self.workers),
            "executors": list(self.executors),
            "workloads": list(self.workloads),
            "start_methods": list(self.start_methods),
            "cases": list(self.cases),
            "blas_threads": self.blas_threads,
            "malloc": self.malloc,
            "task_stack": self.task_stack,
            "case_timeout_s": self.case_timeout,
            "sizes": self.sizes_mode,
            "sizes_from": self.sizes_from,
            "target_task_s": plan.TARGET_TASK_S[self.profile],
            "probe_tasks": reference.PROBE_TASKS,
            "probe_warm_tasks": reference.PROBE_WARM_TASKS,
            **dict(self.settings),
            # each executor's own options as its backend records them (dask: its configurations)
            **{k: v for name in EXECUTORS for k, v in backend(name).recorded(self.state(name)).items()},
        }

    def state(self, executor: str) -> Any:
        """What ``executor``'s backend made of its options and found at start (None: nothing of its own)."""
        return self.executor_state.get(executor)


def sized_workloads(cfg: SuiteConfig) -> tuple[str, ...]:
    """The workloads this run times in batches, whose task sizes are chosen at start."""
    names = list(cfg.workloads) if "scaling" in cfg.cases else []
    if "default_workers" in cfg.cases:
        names += [n for n in DEFAULT_WORKERS_WORKLOADS if n not in names]
    return tuple(names)


def configure_executors(options: Mapping[str, str | None], environ: Mapping[str, str]) -> dict[str, Any]:
    """Each executor's state from its own options (bench/backend.py ``options``, ``configure``): the option's
    value, else its environment variable's; OptionError on a bad one."""
    out = {}
    for name in EXECUTORS:
        impl = backend(name)
        given = {o.name: options.get(o.name) or (environ.get(o.env) if o.env else None) for o in impl.options}
        out[name] = impl.configure(given)
    return out


def executor_options() -> list[Option]:
    """Every option an executor's backend adds to ``pytest bench``, in registry order."""
    return [o for name in EXECUTORS for o in backend(name).options]


def build_config(
    options: dict[str, str | None],
    cpu: CpuInfo,
    environ: Mapping[str, str] | None = None,
    missing: Mapping[str, str | None] | None = None,
) -> SuiteConfig:
    """Turn raw option strings (None: not given) and the environment into a :class:`SuiteConfig`.

    ``missing`` overrides :func:`missing_line` per executor (the tests' stand-in for what is installed).
    Raises :class:`OptionError` on the first bad value.
    """
    environ = os.environ if environ is None else environ
    states = configure_executors(options, environ)
    if options.get("executors") is None:  # an executor's own options may name what to measure (a cluster given)
        implied = next((found for name, st in states.items() if (found := backend(name).implies(st))), None)
        if implied:
            options = {**options, "executors": ",".join(implied)}
    executors, skipped = parse_executors(
        options.get("executors"), missing, skip_missing=environ.get(SKIP_MISSING_ENV, "").strip() == "1"
    )
    methods = tuple(multiprocessing.get_all_start_methods())
    default_method = default_start_method()
    profile = parse_profile(options.get("profile"))
    names = parse_names("--workloads", options.get("workloads"), scaling_names(), scaling_names())
    sizes_from = options.get("sizes_from")
    if sizes_from is not None and not sizes_from.strip():
        raise OptionError("--sizes-from: empty path; give a results .json file of an earlier run")
    sizes_mode = parse_sizes(options.get("sizes"), sizes_from)
    cfg = SuiteConfig(
        profile=profile,
        workers=parse_workers(options.get("workers"), cpu.recommended_workers),
        executors=executors,
        workloads=names,
        start_methods=parse_names("--start-methods", options.get("start_methods"), methods, (default_method,)),
        cases=parse_names("--cases", options.get("cases"), CASES, CASES),
        blas_threads=parse_blas_threads(options.get("blas_threads")),
        malloc=parse_malloc(options.get("malloc")),
        cpu=cpu,
        task_stack=parse_task_stack(options.get("task_stack")),
        default_start_method=default_method,
        settings=parse_settings(options.get("passes"), profile, options.get("tasks_per_cpu")),
        case_timeout=parse_case_timeout(options.get("case_timeout")),
        journal=parse_journal(options.get("journal")),
        label=parse_label(environ.get(LABEL_ENV)),
        runner=parse_runner(environ.get(RUNNER_ENV)),
        io_dir=parse_io_dir(options.get("io_dir") or environ.get(IO_DIR_ENV)),
        skipped_executors=skipped,
        executor_state=MappingProxyType(states),
        sizes_mode=sizes_mode,
        sizes_from=sizes_from,
    )
    if sizes_from is not None:
        cfg = dataclasses.replace(cfg, sizes=read_sizes_from(sizes_from, profile, sized_workloads(cfg)))
    return cfg
