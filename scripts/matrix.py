"""The CPU-limit matrix: ``python -m scripts.matrix [--backend docker|affinity] [--limits ...]``.

Runs the suite once per CPU limit, ONE LIMIT AT A TIME (containers run side by side would share
the same cores and poison each other's numbers), checks that each run recorded the limit its name
promises, then plots across limits and writes the report::

    docker/compose.yaml services ──► build the image once ──► for each limit, in turn:
        docker compose run --rm -e POOLBENCH_LABEL=<limit> <limit>   (docker backend)
        pytest bench under sched_setaffinity(<CPU set>)                 (affinity backend)
    ──► RESULTS/<limit>/<run id>.json ──► check the recorded limit ──► scripts.report (plots + report.md)

A limit is named by what it sets: ``cpus-<CPUs>`` is a CFS quota (docker only: a quota needs a
cgroup), ``cpuset-<CPU numbers joined by '-'>`` a CPU set (both backends), ``unlimited`` none.
The driver keeps going when one limit fails and says so in its exit code: 0 every limit ran and
recorded its limit, 1 one or more failed, 2 it could not start (no engine, a bad option).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scripts import report
from scripts.cli import Parser, run
from scripts.results import ResultsError, load_file

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker" / "compose.yaml"
PUBLIC_BASE = "python:3.11-slim"  # the Dockerfile's default BASE_IMAGE
CONTAINER_UID = 10001  # the non-root user of docker/Dockerfile
PROFILES = ("quick", "default", "full")


class MatrixError(ResultsError):
    """The matrix cannot start; one line for the user (exit code 2)."""


@dataclass(frozen=True)
class Limit:
    """A CPU limit as its service name states it."""

    name: str
    quota: float | None = None
    cpuset: frozenset[int] | None = None

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
        if info.get("label") != self.name:
            return f"results are labelled {info.get('label')!r}, not {self.name!r}"
        if self.quota is not None and info.get("cpu_quota") != self.quota:
            return f"results record a CPU quota of {info.get('cpu_quota')}, expected {self.quota:g}"
        if self.cpuset is not None and info.get("affinity_cpus") != len(self.cpuset):
            return f"results record {info.get('affinity_cpus')} CPUs of affinity, expected {len(self.cpuset)}"
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
    parser.add_argument("--no-report", action="store_true", help="skip the plots and report at the end")
    parser.add_argument("pytest_args", nargs="*", help="extra `pytest bench` options, after --")
    args = parser.parse_args(argv)
    if args.timeout < 1:
        parser.error(f"--timeout: {args.timeout} is not a positive number of seconds")
    return args


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
    """Service names of a compose file, read without a YAML library (keys indented under `services:`)."""
    names, inside = [], False
    for line in path.read_text().splitlines():
        if re.match(r"^services:\s*$", line):
            inside = True
        elif inside and re.match(r"^\S", line):
            inside = False
        elif inside and (m := re.match(r"^  ([A-Za-z0-9][A-Za-z0-9._-]*):\s*$", line)):
            names.append(m.group(1))
    return names


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


def run_one(lim: Limit, args, results: Path, run_id: str, compose: list[str] | None) -> tuple[bool, str, Path]:
    """Run one limit; (ok, what happened, results file)."""
    folder = results / lim.name
    prepare_folder(folder)
    out = folder / f"{run_id}.json"
    log = results / f"{lim.name}-{run_id}.log"
    env = {**os.environ, "POOLBENCH_PROFILE": args.profile, "POOLBENCH_RESULTS": str(results.resolve())}
    if compose is not None:
        cmd = [*compose, "run", "--rm", "-T", "-e", f"POOLBENCH_LABEL={lim.name}", "-e", f"POOLBENCH_RUN_ID={run_id}"]
        cmd += [lim.name, *args.pytest_args]
        preexec = None
    else:
        available = os.sched_getaffinity(0)
        cpus = set(lim.cpuset) if lim.cpuset is not None else available
        if not cpus <= available:
            return False, f"CPUs {sorted(cpus - available)} are not available here", out
        env.update(POOLBENCH_LABEL=lim.name, POOLBENCH_BACKEND="affinity")
        cmd = [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q", "--profile", args.profile]
        cmd += ["--benchmark-json", str(out), *args.pytest_args]

        def preexec() -> None:
            os.sched_setaffinity(0, cpus)

    try:
        with open(log, "w") as sink:
            done = subprocess.run(
                cmd,
                check=False,
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=args.timeout,
                preexec_fn=preexec,
            )
    except subprocess.TimeoutExpired:
        return False, f"ran past --timeout {args.timeout} s (log: {log})", out
    if not out.is_file():
        why = f"exit code {done.returncode}"
        if done.returncode == 137:
            why += ": killed, most likely by the container's memory limit (POOLBENCH_MEMORY)"
        journal = out.with_name(out.name.removesuffix(".json") + ".journal.jsonl")
        if journal.is_file():
            why += f"; finished cases are in {journal}"
        return False, f"wrote no results ({why}; log: {log})", out
    try:
        info = load_file(out)[0].run.poolbench
    except (ResultsError, IndexError) as exc:
        return False, f"unusable results: {exc}", out
    problem = lim.problem(dict(info))
    if problem:
        return False, problem, out
    status = "ok" if done.returncode == 0 else f"some cases failed (exit code {done.returncode}; log: {log})"
    return done.returncode == 0, f"{status}; effective CPUs {info['effective_cpus']:g}", out


def check_compose_variables(environ: dict[str, str]) -> None:
    """Refuse compose variables that would only fail later, inside every container."""
    memory = environ.get("POOLBENCH_MEMORY")
    if memory is not None and not re.fullmatch(r"\d+(\.\d+)?[bkmgBKMG]?", memory):
        raise MatrixError(f"POOLBENCH_MEMORY={memory!r} is not a memory size; use e.g. 2g or 512m, or unset it")
    if "BASE_IMAGE" in environ and not environ["BASE_IMAGE"].strip():
        raise MatrixError("BASE_IMAGE is set but empty; give an image name (e.g. python:3.11-slim) or unset it")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_compose_variables(dict(os.environ))
    files = args.compose_file or [str(COMPOSE_FILE)]
    results = Path(args.results)
    if results.exists() and not results.is_dir():
        raise MatrixError(f"{results}: exists and is not a folder; give --results a folder")
    compose = None
    if args.backend == "docker":
        compose = compose_cmd(files)
        limits = select(services_docker(compose), args.limits, "docker")
    else:
        names: list[str] = []
        for f in files:
            if not Path(f).is_file():
                raise MatrixError(f"{f}: no such compose file; give --compose-file an existing file")
            names += [n for n in services_in_file(Path(f)) if n not in names]
        limits = select(names, args.limits, "affinity")
        skipped = [n for n in names if Limit.parse(n).quota is not None]
        if skipped and args.limits is None:
            print(f"matrix: skipping {', '.join(skipped)}: a CPU quota needs cgroups (--backend docker)")
    if not limits:
        raise MatrixError("no limit to run; check --limits and the compose file")
    prepare_folder(results)
    start = time.monotonic()
    if compose is not None:
        image = base_image(args.base_image)
        print(f"matrix: building the image once (BASE_IMAGE={image})", flush=True)
        built = _run([*compose, "build", limits[0].name], env={**os.environ, "BASE_IMAGE": image}, cwd=ROOT)
        if built.returncode != 0:
            tail = (built.stdout + built.stderr).strip().splitlines()[-1:] or ["no message"]
            raise MatrixError(f"image build failed: {tail[0]}; see `docker compose -f {files[0]} build`")
        print(f"matrix: image built in {_elapsed(time.monotonic() - start)}", flush=True)

    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    outcome: list[tuple[str, bool, str, float]] = []
    for i, lim in enumerate(limits, 1):
        print(f"[{i}/{len(limits)}] {lim.name}: running ({_elapsed(time.monotonic() - start)} elapsed)", flush=True)
        t0 = time.monotonic()
        ok, what, _ = run_one(lim, args, results, run_id, compose)
        took = time.monotonic() - t0
        outcome.append((lim.name, ok, what, took))
        left = len(limits) - i
        print(f"[{i}/{len(limits)}] {lim.name}: {what} in {_elapsed(took)}; {left} left", flush=True)

    failed = [name for name, ok, _, _ in outcome if not ok]
    print(
        f"\nmatrix: {len(outcome) - len(failed)} of {len(outcome)} limits ran and recorded their limit "
        f"in {_elapsed(time.monotonic() - start)}" + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    finished = [name for name, ok, _, _ in outcome if ok]
    if finished and not args.no_report:
        report_args = [str(results / name) for name in finished] + ["--out", str(results / "report")]
        code = report.main(report_args)
        if code != 0:
            failed.append("report")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.matrix", main))
