"""The GitHub Action's logic (action.yml): your workloads, gated against a baseline from your main branch.

    python -m scripts.action --workload-file tasks.py --baseline DIR --out DIR [--profile quick]
        [--workers 1,2] [--executors serial,thread,process] [--limit unlimited|cpuset-0-1]
        [--fail-on-regression true] [--min-effect 0.25] [--event push --ref refs/heads/main
        --default-branch main] [--summary FILE] [--github-output FILE]

1. Checks each workload file as the suite will (one line, exit 2, before anything runs).
2. Runs ``pytest bench`` on the files' workloads: scaling cases at the profile, workers and
   executors asked, under the CPU set ``--limit`` names (the affinity backend's limits: a runner
   has no cgroup quota to give), with the baseline's task sizes when there is a baseline (a fresh
   calibration would size a slowed task back to its target time and hide the slowdown).
3. With no baseline yet: this run becomes one where a baseline may be kept (below), and passes.
   With one: ``scripts.compare`` decides: pass, regression (fails the step when
   ``--fail-on-regression``) or inconclusive (a run was denied CPU by a neighbour on the runner:
   re-run; it fails only with ``--fail-on-inconclusive``; the code is never blamed for it).
4. Writes the verdict, the gate's table and the report to ``--summary`` (the job summary), and
   ``verdict``, ``save-baseline`` and ``results`` to ``--github-output``.

Where a baseline may be kept: a ``push``, ``schedule`` or ``workflow_dispatch`` run on the default
branch. Never a pull request's: a fork's pull request could make its own code's slow run the
baseline, and every later run would then be held to it (a poisoned baseline hides a regression).

Exit status: 0 passed (or recorded a baseline), 1 a regression with ``--fail-on-regression``,
2 bad input or a run that could not be compared, 3 inconclusive with ``--fail-on-inconclusive``,
4 the suite itself failed (its log is in ``--out``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from common.environment import LABEL_ENV, RUNNER_ENV
from scripts.cli import Parser, prepare_out, run, write_atomic
from scripts.compare import DEFAULT_MIN_EFFECT
from scripts.gating import EXIT_OK, OUTCOMES
from scripts.matrix import ROOT, Limit, MatrixError, check_workload_files
from scripts.results import ResultsError

#: The baseline's file name inside ``--baseline`` (the folder the action's cache keeps).
BASELINE_FILE = "baseline.json"
#: Events whose runs on the default branch may keep a baseline.
BASELINE_EVENTS = ("push", "schedule", "workflow_dispatch")
EXIT_SUITE_FAILED = 4


class ActionError(ResultsError):
    """Bad input to the action: one line, exit 2."""


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise ActionError(f"--{name}: {text!r} is not true or false; give true or false")
    return value == "true"


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.action", description=__doc__.splitlines()[0])
    parser.add_argument("--workload-file", dest="workload_files", action="append", default=[], metavar="PATH")
    parser.add_argument(
        "--workload-files", dest="workload_list", default="", help="files separated by spaces or new lines"
    )
    parser.add_argument("--workdir", default=".", help="folder relative file names start from (the workspace)")
    parser.add_argument("--baseline", required=True, help="folder holding the baseline (the cache's path)")
    parser.add_argument("--out", required=True, help="folder for this run's results, log and report")
    parser.add_argument("--profile", default="quick", choices=("quick", "default", "full"))
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--executors", default="serial,thread,process")
    parser.add_argument("--limit", default="unlimited", help="unlimited, or a CPU set such as cpuset-0-1")
    parser.add_argument("--fail-on-regression", default="true")
    parser.add_argument("--fail-on-inconclusive", default="false")
    parser.add_argument("--min-effect", type=float, default=DEFAULT_MIN_EFFECT)
    parser.add_argument("--event", default=os.environ.get("GITHUB_EVENT_NAME", ""))
    parser.add_argument("--ref", default=os.environ.get("GITHUB_REF", ""))
    parser.add_argument("--default-branch", default="main")
    parser.add_argument("--summary", help="file to append the Markdown verdict and report to")
    parser.add_argument("--github-output", help="file to append step outputs to (name=value lines)")
    args = parser.parse_args(argv)
    args.fail_on_regression = _flag(args.fail_on_regression, "fail-on-regression")
    args.fail_on_inconclusive = _flag(args.fail_on_inconclusive, "fail-on-inconclusive")
    if not 0 <= args.min_effect < 1:
        raise ActionError(f"--min-effect: {args.min_effect} is not a fraction in [0, 1); give e.g. 0.25 for 25 %")
    raw = [*args.workload_list.split(), *args.workload_files]
    if not raw:
        raise ActionError("no workload file given; name one or more in workload-files (paths in your repository)")
    args.workload_files = [str((Path(args.workdir) / r).resolve()) for r in raw]
    args.limit = Limit.parse(args.limit.strip())
    if args.limit.quota is not None:
        raise ActionError(
            f"--limit {args.limit.name}: a CPU quota needs a container; on a runner use a CPU set (cpuset-0-1) "
            "or unlimited"
        )
    return args


def may_keep_baseline(event: str, ref: str, default_branch: str) -> bool:
    """Whether this run may become the baseline: a trusted event on the default branch, never a pull request."""
    return event in BASELINE_EVENTS and ref == f"refs/heads/{default_branch}"


def suite_command(args, files, out: Path, baseline: Path | None) -> list[str]:
    names = [w for f in files for w in f.workloads]
    cmd = [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q", "--profile", args.profile]
    cmd += ["--cases", "scaling", "--workloads", ",".join(names), "--workers", args.workers]
    cmd += ["--executors", args.executors, "--benchmark-json", str(out)]
    cmd += [a for f in files for a in ("--workload-file", str(f.host))]
    if baseline is not None:
        cmd += ["--sizes-from", str(baseline)]
    return cmd


def _compare(baseline: Path, current: Path, args, fmt: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "scripts.compare", str(baseline), str(current), "--min-effect", str(args.min_effect)]
    return subprocess.run([*cmd, "--format", fmt], cwd=ROOT, capture_output=True, text=True, check=False)


def _copy(source: Path, target: Path) -> None:
    """Copy whole or not at all: a half-written baseline would fail every later run."""
    write_atomic(target, source.read_bytes())


def _write(path: str | None, text: str) -> None:
    if path:
        with open(path, "a") as f:
            f.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        files = check_workload_files(args.workload_files, "affinity")
    except MatrixError as exc:
        raise ActionError(str(exc)) from None
    out_dir, base_dir = prepare_out(args.out), Path(args.baseline)
    baseline = base_dir / BASELINE_FILE
    current, log = out_dir / "current.json", out_dir / "suite.log"
    have_baseline = baseline.is_file()
    cpus = set(args.limit.cpuset) if args.limit.cpuset is not None else os.sched_getaffinity(0)
    if not cpus <= os.sched_getaffinity(0):
        raise ActionError(f"--limit {args.limit.name}: CPUs {sorted(cpus - os.sched_getaffinity(0))} are not here")
    env = {**os.environ, LABEL_ENV: args.limit.name, RUNNER_ENV: "affinity"}
    print(f"poolbench action: running {', '.join(w for f in files for w in f.workloads)} ({args.profile})", flush=True)
    with open(log, "w") as sink:
        code = subprocess.run(
            suite_command(args, files, current, baseline if have_baseline else None),
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
            check=False,
        ).returncode
    keep = may_keep_baseline(args.event, args.ref, args.default_branch)
    if code != 0 or not current.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        _write(args.summary, f"## poolbench: the suite failed (exit {code})\n\n`{tail[0]}`\n\nlog: {log}\n")
        _write(args.github_output, f"verdict=failed\nsave-baseline=false\nresults={out_dir}\n")
        print(f"poolbench action: the suite failed (exit {code}): {tail[0]}; log: {log}", file=sys.stderr)
        return EXIT_SUITE_FAILED
    subprocess.run(
        [sys.executable, "-m", "scripts.report", str(current), "--out", str(out_dir / "report")],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    report = out_dir / "report" / "report.md"
    report_text = report.read_text() if report.is_file() else "no report was written\n"
    if not have_baseline:
        if keep:
            base_dir.mkdir(parents=True, exist_ok=True)
            _copy(current, baseline)
        said = (
            f"no baseline yet: this run is kept as the baseline ({args.event} on {args.default_branch})"
            if keep
            else f"no baseline yet, and a {args.event or 'local'} run on {args.ref or 'no ref'} never becomes one: "
            f"a baseline is kept only from a push, schedule or manual run on {args.default_branch}"
        )
        print(f"poolbench action: {said}")
        _write(args.summary, f"## poolbench: no baseline\n\n{said}\n\n{report_text}")
        _write(args.github_output, f"verdict=recorded\nsave-baseline={str(keep).lower()}\nresults={out_dir}\n")
        return EXIT_OK
    text = _compare(baseline, current, args, "text")
    markdown = _compare(baseline, current, args, "markdown")
    (out_dir / "gate.txt").write_text(text.stdout)
    sys.stdout.write(text.stdout)
    verdict = {v: k for k, v in OUTCOMES.items()}.get(text.returncode)
    if verdict is None:  # exit 2: runs that cannot be compared (another profile, other task sizes)
        said = (text.stderr or text.stdout).strip().splitlines()[-1:] or ["no message"]
        _write(args.summary, f"## poolbench: cannot compare\n\n{said[0]}\n")
        _write(args.github_output, f"verdict=unusable\nsave-baseline=false\nresults={out_dir}\n")
        print(f"poolbench action: {said[0]}", file=sys.stderr)
        return 2
    # A passing run on the default branch renews the baseline; a regression there never replaces it.
    renew = keep and verdict == "pass"
    if renew:
        _copy(current, baseline)
    _write(args.summary, f"## poolbench gate: {verdict}\n\n{markdown.stdout}\n\n{report_text}")
    _write(args.github_output, f"verdict={verdict}\nsave-baseline={str(renew).lower()}\nresults={out_dir}\n")
    fails = (verdict == "regression" and args.fail_on_regression) or (
        verdict == "inconclusive" and args.fail_on_inconclusive
    )
    return OUTCOMES[verdict] if fails else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.action", main))
