"""The CPU-limit matrix: ``python -m scripts.matrix [--backend docker|affinity] [--limits ...]``.

Runs the suite once per CPU limit, ONE LIMIT AT A TIME (containers run side by side would share
the same cores and poison each other's numbers), checks that each run recorded the limit its name
promises, then plots across limits and writes the report::

    docker/compose.yaml services ──► build the image once ──► for each limit, in turn:
        docker compose run --rm -e POOLBENCH_LABEL=<limit> <limit>   (docker backend)
        pytest bench under sched_setaffinity(<CPU set>)                 (affinity backend)
    ──► RESULTS/<limit>/<run id>.json ──► check the recorded limit ──► scripts.report (plots + report.md)

``--pythons 3.11,3.13t,3.14`` adds the Python build as an axis: one image per build
(``poolbench:py<build>``, its base from docker/python-image.sh), then every (build, limit) pair in
turn, labelled ``<limit>-py<build>``; each run must record the build it promises, and a
free-threaded run says whether the GIL stayed off after every import. Without it, the image's
own Python (the host's build: ``--base-image``) is the only build.

A limit is named by what it sets: ``cpus-<CPUs>`` is a CFS quota (docker only: a quota needs a
cgroup), ``cpuset-<CPU numbers joined by '-'>`` a CPU set (both backends), ``unlimited`` none.
The driver keeps going when one limit fails and says so in its exit code: 0 every limit ran and
recorded its limit, 1 one or more failed or were interrupted, 2 it could not start (no engine, a
bad option), 130 the driver itself was interrupted (Ctrl-C or SIGTERM).

Interruptions: a limit whose suite was stopped by a signal (`docker stop` on its container: the
suite saves its finished cases and exits 2) is reported as interrupted, never as a success, and the
driver goes on to the next limit or stops there (``--on-interrupt``). Ctrl-C or SIGTERM on the
driver stops the container it is running the same way (``docker stop``), reports, and exits 130.
Each suite runs in a session of its own, so that a terminal's Ctrl-C reaches the driver only and
the driver decides how its child stops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from common.schema import PROFILES, SKIP_MISSING_ENV, STATUS_FILE_ENV, WORKLOAD_FILES_ENV
from scripts import report
from scripts.cli import Parser, run, write_atomic
from scripts.results import ResultsError, load_file

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
#: The compose services of a dask cluster (profile "cluster"): not CPU limits (``--cluster`` runs them).
CLUSTER_SERVICES = ("scheduler", "worker", "client")
DASK_SERVICES = ("scheduler", "worker")  # dask's own processes; the client runs the suite
PUBLIC_BASE = "python:3.11-slim"  # the Dockerfile's default BASE_IMAGE
CONTAINER_UID = 10001  # the non-root user of docker/Dockerfile
#: Where --workload-file's files are mounted (read-only) in the suite's and the dask workers' containers.
CONTAINER_WORKLOADS = "/workloads"
#: The compose override the driver writes into the results folder when it mounts workload files.
WORKLOADS_OVERRIDE = "workload-files.compose.json"
#: pytest's exit code for an interrupted session: the suite exits with it on SIGINT or SIGTERM.
SUITE_INTERRUPTED = 2
#: pytest's exit code for a usage error: the suite refused an option or a workload file before any case.
USAGE_ERROR = 4
#: Seconds `docker stop` waits before SIGKILL; the suite stops within 8 s of SIGTERM
#: (bench.stopping.STOP_DEADLINE_S), so its finished cases are saved first.
STOP_GRACE_S = 10
#: Exit code of the driver when it was interrupted itself (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


class MatrixError(ResultsError):
    """The matrix cannot start; one line for the user (exit code 2)."""


@dataclass(frozen=True)
class Limit:
    """A CPU limit as its service name states it."""

    name: str
    quota: float | None = None
    cpuset: frozenset[int] | None = None
    cluster_workers: int | None = None  # a dask cluster shape WORKERSxcpus-LIMIT: that many worker containers
    python: str | None = None  # the Python build of its image (--pythons); None: the one image's own

    @property
    def label(self) -> str:
        """What the run is labelled and its results folder is called: the limit, and the build if chosen."""
        return self.name if self.python is None else f"{self.name}-py{self.python}"

    @property
    def image(self) -> str | None:
        return None if self.python is None else f"poolbench:py{self.python}"

    @classmethod
    def parse_cluster(cls, shape: str) -> Limit:
        """``2xcpus-1``: two dask worker containers of one CPU each (and a client of one CPU)."""
        m = re.fullmatch(r"(\d+)x(cpus-\d+(?:\.\d+)?)", shape)
        if not m or not 1 <= int(m.group(1)) <= 64:
            raise MatrixError(
                f"--cluster: {shape!r} is not a cluster shape; give WORKERSxcpus-LIMIT such as 2xcpus-1 "
                "(1 to 64 workers, each with that CPU quota)"
            )
        return cls(shape, quota=cls.parse(m.group(2)).quota, cluster_workers=int(m.group(1)))

    @classmethod
    def parse(cls, name: str) -> Limit:
        if name == "unlimited":
            return cls(name)
        if m := re.fullmatch(r"cpus-(\d+(?:\.\d+)?)", name):
            return cls(name, quota=float(m.group(1)))
        if m := re.fullmatch(r"cpuset-(\d+(?:-\d+)*)", name):
            return cls(name, cpuset=frozenset(int(c) for c in m.group(1).split("-")))
        raise MatrixError(
            f"service {name!r} does not say its limit; name it cpus-<CPUs>, cpuset-<CPU numbers joined by '-'> "
            "or unlimited"
        )

    def problem(self, info: dict) -> str | None:
        """Why the recorded machine info does not show this limit (None: it does)."""
        checks = [
            (info.get("label") != self.label, f"results are labelled {info.get('label')!r}, not {self.label!r}"),
            (
                self.python is not None and info.get("python_build") != self.python,
                f"results record Python {info.get('python_build')!r}, expected {self.python}",
            ),
            (
                self.quota is not None and info.get("cpu_quota") != self.quota,
                f"results record a CPU quota of {info.get('cpu_quota')}, expected {self.quota or 0:g}",
            ),
            (
                self.cpuset is not None and info.get("affinity_cpus") != len(self.cpuset or ()),
                f"results record {info.get('affinity_cpus')} CPUs of affinity, expected {len(self.cpuset or ())}",
            ),
        ]
        for failed, why in checks:
            if failed:
                return why
        return self._cluster_problem(info) if self.cluster_workers is not None else None

    def _cluster_problem(self, info: dict) -> str | None:
        dask = info.get("dask") or {}
        if dask.get("workers") != self.cluster_workers:
            return f"results record a cluster of {dask.get('workers')} workers, expected {self.cluster_workers}"
        quotas = {w.get("cpu_quota") for w in dask.get("worker_info") or []}
        if quotas != {self.quota}:
            return f"the cluster's workers record CPU quotas {sorted(map(str, quotas))}, expected {self.quota or 0:g}"
        return None


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.matrix", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("docker", "affinity"), default="docker", help="default: docker")
    parser.add_argument(
        "--limits", help="comma list of limits (compose services); default: all that the backend can run"
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="default",
        help="default: default. quick is a smoke test: under a CPU quota its rounds are shorter than the "
        "100 ms CFS period and its speedups are luck",
    )
    parser.add_argument("--results", default="results/matrix", help="results folder (default: results/matrix)")
    parser.add_argument(
        "--compose-file",
        action="append",
        help="compose file(s), in order (default: docker/compose.yaml); add an override file for more limits",
    )
    parser.add_argument(
        "--base-image",
        help="base image for the build (default: $BASE_IMAGE, else python:3.11-slim if it can be pulled, "
        "else one built by docker/base-image.sh)",
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one limit may run (default: 1800)")
    parser.add_argument(
        "--on-interrupt",
        choices=("next", "stop"),
        default="next",
        help="when a limit's suite is stopped by a signal (docker stop on its container): go on with the "
        "next limit (default) or stop the matrix there",
    )
    parser.add_argument(
        "--cluster",
        help="comma list of dask cluster shapes WORKERSxcpus-LIMIT (e.g. 2xcpus-1,4xcpus-0.5) to run instead of "
        "--limits: a scheduler, that many worker containers with that CPU quota, and the suite as their client "
        "(docker backend; needs requirements-cluster.txt in the image, which docker/Dockerfile installs)",
    )
    parser.add_argument(
        "--pythons",
        help="comma list of Python builds to run every limit on, one image each: 3.11, 3.13, 3.13t, 3.14, 3.14t, "
        "3.15, 3.15t "
        "(docker backend; default: the image's own Python only). Free-threaded builds (t) are compiled once "
        "(docker/python-image.sh) and install requirements-measure.txt only. Every build after the first at a "
        "limit reuses the first one's task sizes (--sizes-from), so that all do the same work; name --sizes or "
        "--sizes-from after -- to choose yourself",
    )
    parser.add_argument(
        "--workload-file",
        dest="workload_files",
        action="append",
        default=[],
        metavar="PATH",
        help="a Python file of your own workloads (repeatable): checked here first, then mounted read-only "
        f"into every container at {CONTAINER_WORKLOADS}/<its name> (the cluster's workers too) and given to each "
        "suite; the affinity backend passes the path as it is",
    )
    parser.add_argument("--no-report", action="store_true", help="skip the plots and report at the end")
    parser.add_argument("pytest_args", nargs="*", help="extra `pytest bench` options, after --")
    args = parser.parse_args(argv)
    if args.timeout < 1:
        parser.error(f"--timeout: {args.timeout} is not a positive number of seconds")
    if args.cluster is not None and (args.limits is not None or args.backend != "docker"):
        parser.error("--cluster runs cluster shapes instead of --limits, with the docker backend; drop --limits")
    if any(a == "--workload-file" or a.startswith("--workload-file=") for a in args.pytest_args):
        parser.error(
            "--workload-file after --: a container cannot see the host's path; give it before --, to the matrix, "
            "which mounts the file into each container"
        )
    if args.pythons is not None:
        args.pythons = parse_pythons(args.pythons)
        if args.backend != "docker" or args.cluster is not None:
            parser.error(
                "--pythons needs the docker backend and --limits (a cluster runs on the one image); "
                "for interpreters on this host use tox -e bench-py313 and the like"
            )
        if args.base_image:
            parser.error("--pythons picks each build's base image itself; drop --base-image")
    return args


#: Python builds scripts.matrix --pythons knows how to make an image of (docker/python-image.sh).
PYTHON_BUILDS = ("3.11", "3.13", "3.13t", "3.14", "3.14t", "3.15", "3.15t")


def parse_pythons(text: str) -> tuple[str, ...]:
    """``--pythons``: a comma list of builds, in the order given, without repeats."""
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or not all(names):
        raise MatrixError(f"--pythons: empty value {text!r}; give a comma list such as 3.11,3.13t,3.14")
    for n in names:
        if n not in PYTHON_BUILDS:
            raise MatrixError(f"--pythons: unknown build {n!r}; choose from {', '.join(PYTHON_BUILDS)}")
    return tuple(dict.fromkeys(names))


def requirements_for(build: str) -> str:
    """The pinned lists an image of ``build`` installs (docker/Dockerfile's REQUIREMENTS)."""
    if build.endswith("t"):  # no free-threaded wheels yet for the plotting stack; the suite needs none of it
        return "requirements-measure.txt"
    if build == "3.15":  # NumPy's first 3.15 wheel, and no plotting stack (requirements-py315.txt says why)
        return "requirements-py315.txt"
    return "requirements.txt requirements-cluster.txt"


def python_base(build: str) -> str:
    """docker/python-image.sh's base image for ``build``; MatrixError with its one line when it cannot be had."""
    done = _run(["bash", str(ROOT / "docker" / "python-image.sh"), build], timeout=1800)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.startswith("python-image.sh:")]
        raise MatrixError(lines[-1] if lines else f"docker/python-image.sh {build} failed (exit {done.returncode})")
    return done.stdout.strip().splitlines()[-1]


def _run(cmd: Sequence[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=False, capture_output=True, text=True, **kw)


# --- docker ---------------------------------------------------------------------------------------


def compose_cmd(files: Sequence[str]) -> list[str]:
    if shutil.which("docker") is None:
        raise MatrixError("no docker command; install Docker, or run `bash scripts/docker-engine.sh` on Debian")
    if _run(["docker", "info"]).returncode != 0:
        raise MatrixError(
            "no Docker engine answers; run `bash scripts/docker-engine.sh` (Debian, root) or start Docker"
        )
    base = ["docker", "compose"] if _run(["docker", "compose", "version"]).returncode == 0 else ["docker-compose"]
    if base == ["docker-compose"] and shutil.which("docker-compose") is None:
        raise MatrixError("Docker Compose v2 is missing; run `bash scripts/docker-engine.sh` to install it")
    cmd = list(base)
    for f in files:
        if not Path(f).is_file():
            raise MatrixError(f"{f}: no such compose file; give --compose-file an existing file")
        cmd += ["-f", str(f)]
    return cmd


def services_docker(compose: list[str]) -> list[str]:
    done = _run([*compose, "config", "--services"])
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise MatrixError(f"compose files do not parse: {lines[-1] if lines else 'no message'}; fix the file")
    return [s for s in done.stdout.split() if s]


def base_image(requested: str | None) -> str:
    if requested or os.environ.get("BASE_IMAGE"):
        return requested or os.environ["BASE_IMAGE"]
    if _run(["docker", "image", "inspect", PUBLIC_BASE]).returncode == 0:
        return PUBLIC_BASE
    print(f"matrix: pulling {PUBLIC_BASE} ...", flush=True)
    if _run(["docker", "pull", PUBLIC_BASE], timeout=300).returncode == 0:
        return PUBLIC_BASE
    print("matrix: no registry answers; building a local base image (docker/base-image.sh, about a minute)", flush=True)
    done = _run(["bash", str(ROOT / "docker" / "base-image.sh")], timeout=900)
    if done.returncode != 0 or not done.stdout.strip():
        lines = done.stderr.strip().splitlines()
        raise MatrixError(f"docker/base-image.sh failed: {lines[-1] if lines else 'no message'}; pass --base-image")
    return done.stdout.strip().splitlines()[-1]


# --- affinity -------------------------------------------------------------------------------------


def services_in_file(path: Path) -> list[str]:
    """Service names of a compose file (its ``services`` mapping, read with a YAML parser), limits only."""
    import yaml  # noqa: PLC0415  (PyYAML: requirements.txt)

    try:
        body = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise MatrixError(
            f"{path}: not a readable compose file{at}; fix the file or give another --compose-file"
        ) from None
    services = body.get("services") if isinstance(body, dict) else None
    if not isinstance(services, dict):
        raise MatrixError(f"{path}: has no services mapping; give a compose file with services: <limit>: ...")
    return [str(n) for n in services if n not in CLUSTER_SERVICES]


# --- workload files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadFile:
    """A ``--workload-file``: where it is here, its sha256, and where a container sees it."""

    host: Path
    sha256: str
    workloads: tuple[str, ...] = ()  # the names its WORKLOADS defines

    @property
    def inside(self) -> str:
        return f"{CONTAINER_WORKLOADS}/{self.host.name}"


def _others_can_read(path: Path) -> bool:
    """Whether a user that owns neither the file nor its folders (the containers' uid) can read it."""
    try:
        if path.stat().st_uid != CONTAINER_UID and not path.stat().st_mode & stat.S_IROTH:
            return False
        return all(d.stat().st_uid == CONTAINER_UID or d.stat().st_mode & stat.S_IXOTH for d in path.parents)
    except OSError:
        return False


#: Loads the files named on its command line as ``pytest bench`` does; one line and exit 4 if one is bad.
_CHECK_FILES = """
import json, sys
from workloads.user import WorkloadFileError, load_files
try:
    found = {}
    for w in load_files(sys.argv[1:]):
        found.setdefault(w.source, []).append(w.name)
    print(json.dumps(found))
except WorkloadFileError as exc:
    print(exc, file=sys.stderr)
    raise SystemExit(4)
"""


def check_workload_files(raw: Sequence[str], backend: str) -> list[WorkloadFile]:
    """Each file checked here, as the suite would check it, before any image is built or container started.

    The check imports the user's code, so it runs in a Python process of its own: the driver keeps
    none of its modules or side effects.
    """
    files = [Path(r).expanduser().resolve() for r in dict.fromkeys(raw)]
    by_name: dict[str, Path] = {}
    for path in files:
        if path.name in by_name:
            raise MatrixError(
                f"--workload-file {path}: its name is the same as {by_name[path.name]}'s; rename one "
                "(workers import each file by its name)"
            )
        by_name[path.name] = path
    names = workload_names(files)
    if backend == "docker":
        for path in files:
            if not _others_can_read(path):
                raise MatrixError(
                    f"workload file {path}: the containers' user (uid {CONTAINER_UID}) cannot read it; "
                    f"`chmod o+r {path}` (and o+x on its folders), or copy it somewhere readable"
                )
    return [WorkloadFile(p, hashlib.sha256(p.read_bytes()).hexdigest(), tuple(names[str(p)])) for p in files]


def workload_names(files: Sequence[Path]) -> dict[str, list[str]]:
    """The workloads each file defines, loaded together as the suite loads them; MatrixError with its one line."""
    if not files:
        return {}
    done = _run([sys.executable, "-c", _CHECK_FILES, *map(str, files)], cwd=ROOT, timeout=300)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()[-1:] or [f"the check exited {done.returncode}"]
        raise MatrixError(f"{said[0]} (checked on this host, before any run)")
    return json.loads(done.stdout.strip().splitlines()[-1])


def workloads_override(files: Sequence[WorkloadFile], services: Sequence[str], results: Path) -> Path:
    """A compose override that mounts the files read-only into ``services`` and names them to the suite.

    The dask scheduler and workers get the folder on PYTHONPATH instead: they import the task
    functions by module name (the scheduler unpickles the task graph), as process workers do, also
    when dask restarts one. JSON is YAML.
    """
    mounts = [{"type": "bind", "source": str(f.host), "target": f.inside, "read_only": True} for f in files]
    suite_env = {WORKLOAD_FILES_ENV: ":".join(f.inside for f in files)}
    worker_env = {"PYTHONPATH": f"/opt/poolbench:{CONTAINER_WORKLOADS}"}
    body = {
        "services": {
            name: {"volumes": mounts, "environment": worker_env if name in DASK_SERVICES else suite_env}
            for name in services
        }
    }
    return write_atomic(results / WORKLOADS_OVERRIDE, json.dumps(body, indent=2) + "\n")


def files_problem(info: dict, files: Sequence[WorkloadFile]) -> str | None:
    """Why a run's results do not show it ran the workload files given (None: they do)."""
    recorded = {r.get("sha256") for r in info.get("workload_files") or []}
    for f in files:
        if f.sha256 not in recorded:
            return f"results do not record workload file {f.host.name} (sha256 {f.sha256[:12]}…) as the host has it"
    return None


# --- the loop -------------------------------------------------------------------------------------


def prepare_folder(folder: Path) -> None:
    """A results folder the container's non-root user can write to."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(folder, CONTAINER_UID, CONTAINER_UID)
    else:
        folder.chmod(0o777)


def select(available: list[str], wanted: str | None, backend: str) -> list[Limit]:
    limits = [Limit.parse(name) for name in available]
    runnable = [lim for lim in limits if backend == "docker" or lim.quota is None]
    if wanted is None:
        return runnable
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    if not names:
        raise MatrixError(f"--limits: empty value {wanted!r}; give a comma list such as cpus-1,cpuset-0")
    by_name = {lim.name: lim for lim in limits}
    chosen = []
    for n in names:
        if n not in by_name:
            raise MatrixError(f"--limits: unknown {n!r}; choose from {', '.join(available)}")
        if by_name[n].quota is not None and backend == "affinity":
            raise MatrixError(f"--limits: {n} is a CPU quota, which needs cgroups; use --backend docker")
        chosen.append(by_name[n])
    return chosen


def _elapsed(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


@dataclass(frozen=True)
class Outcome:
    """What became of one limit: ``status`` is ok, failed or interrupted."""

    status: str
    what: str
    results: Path


class DriverInterrupted(Exception):
    """Ctrl-C or SIGTERM reached the driver; carries the outcome of the limit it stopped."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.what)
        self.outcome = outcome


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt("SIGTERM")


def _wait(child: subprocess.Popen, stop, timeout: float) -> tuple[int | None, str | None]:
    """Wait for the suite; (exit code, what stopped it early: "timeout", "driver" or None)."""
    try:
        return child.wait(timeout=timeout), None
    except subprocess.TimeoutExpired:
        why = "timeout"
    except KeyboardInterrupt:
        why = "driver"
        # A second Ctrl-C must not cut the stop short and leave the container running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"matrix: stopping the running suite ({'--timeout' if why == 'timeout' else 'interrupted'})", flush=True)
    stop()
    try:
        return child.wait(timeout=STOP_GRACE_S + 30), why
    except subprocess.TimeoutExpired:
        child.kill()
        return child.wait(), why


def own_sizes(pytest_args: Sequence[str]) -> bool:
    """Whether the matrix picks the task sizes (False: the user's options name them: --sizes, --sizes-from)."""
    return not any(a.split("=")[0] in ("--sizes", "--sizes-from") for a in pytest_args)


def status_file(out: Path) -> Path:
    """Where a suite writing ``out`` records the signal that stopped it (STATUS_FILE_ENV).

    Not ``*.json``: the results folder is read as a folder of result files (scripts.report).
    """
    return out.with_name(out.name.removesuffix(".json") + ".status")


def _stop_signal(status: Path) -> str | None:
    """The signal that stopped the suite, from the status file it writes then (bench/stopping.py); None if none did.

    pytest's exit code 2 also means a collection error, which is a failure, not an interruption.
    """
    try:
        found = json.loads(status.read_text()).get("stopped_by")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def _usage_line(log: Path) -> str | None:
    """The one line a suite that refused to start (pytest's exit 4, a usage error) printed last."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    said = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: ")]
    return said[-1] if said else None


def _finished_cases(out: Path) -> tuple[int, Path | None]:
    """How many finished cases a stopped run kept, and where (its JSON, else its journal)."""
    journal = out.with_name(out.name.removesuffix(".json") + ".journal.jsonl")
    for path in (out, journal):
        if path.is_file():
            try:
                return len(load_file(path)), path
            except ResultsError:
                continue
    return 0, None


def _suite_command(
    lim: Limit, args, results: Path, run_id: str, *, out: Path, compose: list[str] | None, sizes_from: str | None = None
):
    """(command, environment, preexec function, how to stop it) for one limit's suite.

    ``sizes_from``: the results file (as the container sees it) whose task sizes this run reuses.
    """
    env = {**os.environ, "POOLBENCH_PROFILE": args.profile, "POOLBENCH_RESULTS": str(results.resolve())}
    if compose is not None:
        container = f"poolbench-{run_id}-{lim.label}".lower().replace(".", "")
        service = lim.name
        if lim.cluster_workers is not None:  # the scheduler and workers are up (cluster_up): the client runs
            compose = [*compose, "--profile", "cluster"]
            env.update(POOLBENCH_WORKER_CPUS=f"{lim.quota:g}", POOLBENCH_DASK_WORKERS=str(lim.cluster_workers))
            service = "client"
        if lim.image is not None:
            env["POOLBENCH_IMAGE"] = lim.image
        cmd = [*compose, "run", "--rm", "-T", "--name", container]
        cmd += ["-e", f"POOLBENCH_LABEL={lim.label}", "-e", f"POOLBENCH_RUN_ID={run_id}"]
        cmd += ["-e", f"{STATUS_FILE_ENV}=/results/{lim.label}/{status_file(out).name}"]
        if lim.python is not None:  # across builds: an executor this build lacks is left out of its run, said
            cmd += ["-e", f"{SKIP_MISSING_ENV}=1"]
        cmd += [service, *args.pytest_args, *(["--sizes-from", sizes_from] if sizes_from else [])]

        def stop(child: subprocess.Popen) -> None:
            # SIGTERM to the suite (the container's PID 1), SIGKILL after the grace period.
            _run(["docker", "stop", "-t", str(STOP_GRACE_S), container])

        return cmd, env, None, stop
    cpus = set(lim.cpuset) if lim.cpuset is not None else os.sched_getaffinity(0)
    env.update(POOLBENCH_LABEL=lim.name, POOLBENCH_BACKEND="affinity", **{STATUS_FILE_ENV: str(status_file(out))})
    cmd = [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q", "--profile", args.profile]
    cmd += [a for f in args.workload_files for a in ("--workload-file", str(f.host))]
    cmd += ["--benchmark-json", str(out), *args.pytest_args]

    def preexec() -> None:
        os.sched_setaffinity(0, cpus)

    return cmd, env, preexec, lambda child: child.send_signal(signal.SIGTERM)


@contextlib.contextmanager
def cluster_up(lim: Limit, compose: list[str] | None, env: dict[str, str], log) -> Iterator[None]:
    """For a cluster shape: the scheduler and its workers up before the client runs, and down after, always."""
    if lim.cluster_workers is None or compose is None:
        yield
        return
    cluster = [*compose, "--profile", "cluster"]
    try:
        up = subprocess.run(
            [*cluster, "up", "-d", "--scale", f"worker={lim.cluster_workers}", "scheduler", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
        if up.returncode != 0:
            raise MatrixError(f"{lim.name}: the cluster did not start (exit code {up.returncode}); see its log")
        yield
    finally:
        # Whatever happened (a failure, a timeout, Ctrl-C on the driver): no scheduler or worker is left.
        subprocess.run(
            [*cluster, "down", "-t", str(STOP_GRACE_S), "--remove-orphans"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )


def run_one(
    lim: Limit, args, results: Path, run_id: str, compose: list[str] | None, *, sizes_from: str | None = None
) -> Outcome:
    """Run one limit to its end; raises :class:`DriverInterrupted` when the driver is interrupted meanwhile."""
    folder = results / lim.label
    prepare_folder(folder)
    out = folder / f"{run_id}.json"
    log = results / f"{lim.label}-{run_id}.log"
    if compose is None and lim.cpuset is not None and not lim.cpuset <= os.sched_getaffinity(0):
        return Outcome("failed", f"CPUs {sorted(lim.cpuset - os.sched_getaffinity(0))} are not available here", out)
    cmd, env, preexec, stop = _suite_command(
        lim, args, results, run_id, out=out, compose=compose, sizes_from=sizes_from
    )
    with open(log, "w") as sink, cluster_up(lim, compose, env, sink):
        # A session of its own: a terminal's Ctrl-C reaches the driver, which stops the suite itself.
        child = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,  # noqa: PLW1509  (the driver runs no threads of its own)
            start_new_session=True,
        )
        code, early = _wait(child, lambda: stop(child), args.timeout)
    outcome = classify(lim, code, early, out=out, log=log, timeout=args.timeout)
    if (
        outcome.status == "ok"
        and args.workload_files
        and (problem := files_problem(dict(load_file(out)[0].run.poolbench), args.workload_files))
    ):
        outcome = Outcome("failed", problem, out)
    if early == "driver":
        raise DriverInterrupted(outcome)
    return outcome


def classify(lim: Limit, code: int, early: str | None, *, out: Path, log: Path, timeout: int) -> Outcome:
    """What a suite's exit code, the way it ended and its results file say about one limit."""
    if early == "timeout":
        cases, where = _finished_cases(out)
        kept = f"; {cases} finished cases in {where}" if where else ""
        return Outcome("failed", f"ran past --timeout {timeout} s and was stopped{kept} (log: {log})", out)
    signalled = _stop_signal(status_file(out))
    if (code == SUITE_INTERRUPTED and signalled) or early == "driver":
        cases, where = _finished_cases(out)
        by = "Ctrl-C or SIGTERM on the driver" if early == "driver" else f"{signalled} to its suite (docker stop?)"
        kept = f"{cases} finished cases saved in {where}" if where else "no case had finished"
        return Outcome("interrupted", f"interrupted by {by}; {kept} (exit code {code}; log: {log})", out)
    if not out.is_file():
        why = f"exit code {code}"
        if code == 137:
            why += ": killed, most likely by the container's memory limit (POOLBENCH_MEMORY)"
        elif code == USAGE_ERROR and (said := _usage_line(log)):
            why += f": {said}"
        journal = out.with_name(out.name.removesuffix(".json") + ".journal.jsonl")
        if journal.is_file():
            why += f"; finished cases are in {journal}"
        return Outcome("failed", f"wrote no results ({why}; log: {log})", out)
    try:
        info = load_file(out)[0].run.poolbench
    except (ResultsError, IndexError) as exc:
        return Outcome("failed", f"unusable results: {exc}", out)
    problem = lim.problem(dict(info))
    if problem:
        return Outcome("failed", problem, out)
    status = "ok" if code == 0 else f"some cases failed (exit code {code}; log: {log})"
    what = f"{status}; effective CPUs {info['effective_cpus']:g}"
    if info.get("free_threaded"):  # an extension without free-threading support turns the GIL back on at import
        what += "; free-threaded, the GIL " + ("was turned back on by an import" if info.get("gil_enabled") else "off")
    return Outcome("ok" if code == 0 else "failed", what, out)


def check_compose_variables(environ: dict[str, str]) -> None:
    """Refuse compose variables that would only fail later, inside every container."""
    memory = environ.get("POOLBENCH_MEMORY")
    if memory is not None and not re.fullmatch(r"\d+(\.\d+)?[bkmgBKMG]?", memory):
        raise MatrixError(f"POOLBENCH_MEMORY={memory!r} is not a memory size; use e.g. 2g or 512m, or unset it")
    if "BASE_IMAGE" in environ and not environ["BASE_IMAGE"].strip():
        raise MatrixError("BASE_IMAGE is set but empty; give an image name (e.g. python:3.11-slim) or unset it")


def choose_limits(args, files: list[str]) -> tuple[list[Limit], list[str] | None]:
    """The limits (or cluster shapes) to run, and the compose command (None: the affinity backend)."""
    if args.cluster is not None:
        return [Limit.parse_cluster(s.strip()) for s in args.cluster.split(",")], compose_cmd(files)
    if args.backend == "docker":
        compose = compose_cmd(files)
        return select(services_docker(compose), args.limits, "docker"), compose
    names: list[str] = []
    for f in files:
        if not Path(f).is_file():
            raise MatrixError(f"{f}: no such compose file; give --compose-file an existing file")
        names += [n for n in services_in_file(Path(f)) if n not in names]
    skipped = [n for n in names if Limit.parse(n).quota is not None]
    if skipped and args.limits is None:
        print(f"matrix: skipping {', '.join(skipped)}: a CPU quota needs cgroups (--backend docker)")
    return select(names, args.limits, "affinity"), None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_compose_variables(dict(os.environ))
    files = args.compose_file or [str(COMPOSE_FILE)]
    results = Path(args.results)
    if results.exists() and not results.is_dir():
        raise MatrixError(f"{results}: exists and is not a folder; give --results a folder")
    limits, compose = choose_limits(args, files)
    if not limits:
        raise MatrixError("no limit to run; check --limits and the compose file")
    args.workload_files = check_workload_files(args.workload_files, args.backend)
    prepare_folder(results)
    if compose is not None and args.workload_files:
        services = [*CLUSTER_SERVICES] if args.cluster is not None else [lim.name for lim in limits]
        compose = [*compose, "-f", str(workloads_override(args.workload_files, services, results))]
    start = time.monotonic()
    missing: list[str] = []
    if args.pythons:
        limits, missing = build_python_images(args.pythons, limits, compose, files, start)
        if not limits:
            raise MatrixError(f"no Python build could be had ({'; '.join(missing)})")
    elif compose is not None:
        image = base_image(args.base_image)
        print(f"matrix: building the image once (BASE_IMAGE={image})", flush=True)
        service = "unlimited" if limits[0].cluster_workers is not None else limits[0].name  # one image for all
        built = _run([*compose, "build", service], env={**os.environ, "BASE_IMAGE": image}, cwd=ROOT)
        if built.returncode != 0:
            tail = (built.stdout + built.stderr).strip().splitlines()[-1:] or ["no message"]
            raise MatrixError(f"image build failed: {tail[0]}; see `docker compose -f {files[0]} build`")
        print(f"matrix: image built in {_elapsed(time.monotonic() - start)}", flush=True)

    outcome, stopped = run_limits(limits, args, results, compose, start)
    if stopped == DRIVER_STOPPED:
        return EXIT_INTERRUPTED
    failed = [name for name, r in outcome if r.status != "ok"] + missing
    finished = [name for name, r in outcome if r.status == "ok"]
    if finished and not args.no_report:
        report_args = [str(results / name) for name in finished] + ["--out", str(results / "report")]
        code = report.main(report_args)
        if code != 0:
            failed.append("report")
    return 1 if failed or len(outcome) < len(limits) else 0


DRIVER_STOPPED = "the driver was interrupted"


def build_python_images(
    pythons: Sequence[str], limits: list[Limit], compose: list[str] | None, files: list[str], start: float
) -> tuple[list[Limit], list[str]]:
    """An image per build (``poolbench:py<build>``), then every (build, limit) pair, build by build.

    A build whose image cannot be had is named with why and left out; the others go on.
    """
    assert compose is not None  # --pythons needs the docker backend (parse_args)
    pairs: list[Limit] = []
    missing: list[str] = []
    for build in pythons:
        t0 = time.monotonic()
        print(f"matrix: Python {build}: base image (docker/python-image.sh {build})", flush=True)
        try:
            base = python_base(build)
        except MatrixError as exc:
            print(f"matrix: Python {build} left out: {exc}", flush=True)
            missing.append(f"py{build}")
            continue
        env = {
            **os.environ,
            "BASE_IMAGE": base,
            "POOLBENCH_IMAGE": f"poolbench:py{build}",
            "POOLBENCH_REQUIREMENTS": requirements_for(build),
        }
        built = _run([*compose, "build", limits[0].name], env=env, cwd=ROOT)
        if built.returncode != 0:
            tail = (built.stdout + built.stderr).strip().splitlines()[-1:] or ["no message"]
            print(f"matrix: Python {build} left out: image build failed: {tail[0]}", flush=True)
            missing.append(f"py{build}")
            continue
        print(f"matrix: Python {build}: image poolbench:py{build} ready in {_elapsed(time.monotonic() - t0)}")
        pairs += [dataclasses.replace(lim, python=build) for lim in limits]
    return pairs, missing


def run_limits(
    limits: list[Limit], args, results: Path, compose: list[str] | None, start: float
) -> tuple[list[tuple[str, Outcome]], str | None]:
    """Each limit in turn; (their outcomes, why the matrix ended before its last limit or None)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)  # SIGTERM stops the running container, as Ctrl-C does
        # Explicitly, as the suite does: a process started in the background of a script inherits
        # SIGINT ignored, and Python then leaves it ignored; the driver must still stop on Ctrl-C.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    reference: dict[str, str] = {}  # limit name -> the results file whose task sizes its later builds reuse
    outcome: list[tuple[str, Outcome]] = []
    stopped = None
    for i, lim in enumerate(limits, 1):
        print(f"[{i}/{len(limits)}] {lim.label}: running ({_elapsed(time.monotonic() - start)} elapsed)", flush=True)
        t0 = time.monotonic()
        try:
            result = run_one(lim, args, results, run_id, compose, sizes_from=reference.get(lim.name))
        except DriverInterrupted as exc:
            result, stopped = exc.outcome, DRIVER_STOPPED
        outcome.append((lim.label, result))
        if result.status == "ok" and lim.python is not None and own_sizes(args.pytest_args):
            # across builds, the same work: later builds at this limit reuse the first build's task sizes
            reference.setdefault(lim.name, f"/results/{lim.label}/{result.results.name}")
        left = len(limits) - i
        print(f"[{i}/{len(limits)}] {lim.label}: {result.what} in {_elapsed(time.monotonic() - t0)}; {left} left")
        if stopped is None and result.status == "interrupted" and args.on_interrupt == "stop" and left:
            stopped = f"{lim.label} was interrupted and --on-interrupt is stop"
        if stopped:
            if left:
                print(f"matrix: {stopped}; not run: {', '.join(lim.label for lim in limits[i:])}")
            break
        sys.stdout.flush()
    failed = [name for name, r in outcome if r.status == "failed"]
    interrupted = [name for name, r in outcome if r.status == "interrupted"]
    print(
        f"\nmatrix: {len(outcome) - len(failed) - len(interrupted)} of {len(limits)} limits ran and recorded their "
        f"limit in {_elapsed(time.monotonic() - start)}"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; interrupted: {', '.join(interrupted)}" if interrupted else ""),
        flush=True,
    )
    return outcome, stopped


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.matrix", main))
