"""Docker and compose for the matrix: the engine, images, compose files, mounts, the cluster's services.

Everything scripts/matrix.py asks of Docker goes through here: finding an engine and compose, the
services of a compose file (``docker compose config`` for the docker backend, PyYAML for the
affinity backend, never a hand parse), the one image (or one per Python build), the read-only
mounts of ``--workload-file`` and the dask cluster brought up and down around a client's run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.environment import WORKLOAD_FILES_ENV
from scripts.cli import write_atomic
from scripts.limits import Limit, MatrixError, requirements_for

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
#: Seconds `docker stop` waits before SIGKILL; the suite stops within 8 s of SIGTERM
#: (bench.stopping.STOP_DEADLINE_S), so its finished cases are saved first.
STOP_GRACE_S = 10


def _elapsed(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _run(cmd: Sequence[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), check=False, capture_output=True, text=True, **kw)


def python_base(build: str) -> str:
    """docker/python-image.sh's base image for ``build``; MatrixError with its one line when it cannot be had."""
    done = _run(["bash", str(ROOT / "docker" / "python-image.sh"), build], timeout=1800)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.startswith("python-image.sh:")]
        raise MatrixError(lines[-1] if lines else f"docker/python-image.sh {build} failed (exit {done.returncode})")
    return done.stdout.strip().splitlines()[-1]


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


def check_workload_files(raw: Sequence[str], runner: str) -> list[WorkloadFile]:
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
    if runner == "docker":
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


def host_paths(text: str, files: Sequence[WorkloadFile]) -> str:
    """A suite's line with each workload file's in-container path (/workloads/x.py) as the host has it."""
    for f in files:
        text = text.replace(f.inside, str(f.host))
    return text


def files_problem(info: dict, files: Sequence[WorkloadFile]) -> str | None:
    """Why a run's results do not show it ran the workload files given (None: they do)."""
    recorded = {r.get("sha256") for r in info.get("workload_files") or []}
    for f in files:
        if f.sha256 not in recorded:
            return f"results do not record workload file {f.host.name} (sha256 {f.sha256[:12]}…) as the host has it"
    return None


def prepare_folder(folder: Path) -> None:
    """A results folder the container's non-root user can write to."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(folder, CONTAINER_UID, CONTAINER_UID)
    else:
        folder.chmod(0o777)


def check_compose_variables(environ: dict[str, str]) -> None:
    """Refuse compose variables that would only fail later, inside every container."""
    memory = environ.get("POOLBENCH_MEMORY")
    if memory is not None and not re.fullmatch(r"\d+(\.\d+)?[bkmgBKMG]?", memory):
        raise MatrixError(f"POOLBENCH_MEMORY={memory!r} is not a memory size; use e.g. 2g or 512m, or unset it")
    if "BASE_IMAGE" in environ and not environ["BASE_IMAGE"].strip():
        raise MatrixError("BASE_IMAGE is set but empty; give an image name (e.g. python:3.11-slim) or unset it")


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
