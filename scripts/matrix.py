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
the driver decides how its child stops. A suite's outcome comes from its exit status, its results
and the status file it writes at a stop signal, never from the wording of its output.

This module is the driver (options, the loop, each limit's outcome); the limits and builds are
scripts/limits.py, everything asked of Docker and compose scripts/containers.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from common.environment import CLUSTER_WORKERS_ENV, LABEL_ENV, RUNNER_ENV, SKIP_MISSING_ENV, STATUS_FILE_ENV
from common.schema import PROFILES
from scripts import report
from scripts.cli import Parser, run
from scripts.containers import (
    CLUSTER_SERVICES,
    COMPOSE_FILE,
    CONTAINER_WORKLOADS,
    ROOT,
    STOP_GRACE_S,
    _elapsed,
    _run,
    base_image,
    build_python_images,
    check_compose_variables,
    check_workload_files,
    cluster_up,
    compose_cmd,
    files_problem,
    host_paths,
    prepare_folder,
    services_docker,
    services_in_file,
    workloads_override,
)
from scripts.limits import Limit, MatrixError, builds_lines, parse_pythons, select
from scripts.results import ResultsError, load_file

#: pytest's exit code for an interrupted session: the suite exits with it on SIGINT or SIGTERM.
SUITE_INTERRUPTED = 2
#: pytest's exit code for a usage error: the suite refused an option or a workload file before any case.
USAGE_ERROR = 4
#: Exit code of the driver when it was interrupted itself (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.matrix", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backend",
        dest="runner",
        choices=("docker", "affinity"),
        default="docker",
        help="where each limit runs: in a container (docker, the default) or under a CPU affinity set",
    )
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
    if args.cluster is not None and (args.limits is not None or args.runner != "docker"):
        parser.error("--cluster runs cluster shapes instead of --limits, with the docker backend; drop --limits")
    if any(a == "--workload-file" or a.startswith("--workload-file=") for a in args.pytest_args):
        parser.error(
            "--workload-file after --: a container cannot see the host's path; give it before --, to the matrix, "
            "which mounts the file into each container"
        )
    if args.pythons is not None:
        args.pythons = parse_pythons(args.pythons)
        if args.runner != "docker" or args.cluster is not None:
            parser.error(
                "--pythons needs the docker backend and --limits (a cluster runs on the one image); "
                "for interpreters on this host use tox -e bench-py313 and the like"
            )
        if args.base_image:
            parser.error("--pythons picks each build's base image itself; drop --base-image")
    return args


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
            env.update({"POOLBENCH_WORKER_CPUS": f"{lim.quota:g}", CLUSTER_WORKERS_ENV: str(lim.cluster_workers)})
            service = "client"
        if lim.image is not None:
            env["POOLBENCH_IMAGE"] = lim.image
        cmd = [*compose, "run", "--rm", "-T", "--name", container]
        cmd += ["-e", f"{LABEL_ENV}={lim.label}", "-e", f"POOLBENCH_RUN_ID={run_id}"]
        cmd += ["-e", f"{STATUS_FILE_ENV}=/results/{lim.label}/{status_file(out).name}"]
        if lim.python is not None:  # across builds: an executor this build lacks is left out of its run, said
            cmd += ["-e", f"{SKIP_MISSING_ENV}=1"]
        cmd += [service, *args.pytest_args, *(["--sizes-from", sizes_from] if sizes_from else [])]

        def stop(child: subprocess.Popen) -> None:
            # SIGTERM to the suite (the container's PID 1), SIGKILL after the grace period.
            _run(["docker", "stop", "-t", str(STOP_GRACE_S), container])

        return cmd, env, None, stop
    cpus = set(lim.cpuset) if lim.cpuset is not None else os.sched_getaffinity(0)
    env.update({LABEL_ENV: lim.name, RUNNER_ENV: "affinity", STATUS_FILE_ENV: str(status_file(out))})
    cmd = [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q", "--profile", args.profile]
    cmd += [a for f in args.workload_files for a in ("--workload-file", str(f.host))]
    cmd += ["--benchmark-json", str(out), *args.pytest_args]

    def preexec() -> None:
        os.sched_setaffinity(0, cpus)

    return cmd, env, preexec, lambda child: child.send_signal(signal.SIGTERM)


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
    if compose is not None and args.workload_files:  # the suite named the files where its container sees them
        outcome = dataclasses.replace(outcome, what=host_paths(outcome.what, args.workload_files))
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


def choose_limits(args, files: list[str]) -> tuple[list[Limit], list[str] | None]:
    """The limits (or cluster shapes) to run, and the compose command (None: the affinity backend)."""
    if args.cluster is not None:
        return [Limit.parse_cluster(s.strip()) for s in args.cluster.split(",")], compose_cmd(files)
    if args.runner == "docker":
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
    args.workload_files = check_workload_files(args.workload_files, args.runner)
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
    for line in builds_lines(outcome):
        print(line)
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
