"""The GitHub Action's logic (action.yml): your workloads, your pull request's head against its base, in one job.

    python -m scripts.action --workload-files "tasks.py" --workdir HEAD --out DIR [--base-dir BASE]
        [--profile quick] [--workers 1,2] [--executors serial,thread,process] [--limit unlimited|cpuset-0-1]
        [--bars FILE] [--budget 120] [--fail-on-regression true] [--fail-on-inconclusive false]
        [--event pull_request] [--summary FILE] [--github-output FILE]

1. Checks each workload file as the suite will (one line, exit 2, before anything runs).
2. With ``--base-dir`` (a pull request: its base commit checked out beside the head, action.yml):
   ``scripts.ab`` measures BASE and HEAD in this job, interleaved, under the CPU set ``--limit`` names,
   and decides from the pairs: pass, improvement, regression (fails the step when
   ``--fail-on-regression``) or inconclusive (a run was denied CPU by a neighbour on the runner:
   re-run; it fails only with ``--fail-on-inconclusive``; the code is never blamed for it). The
   decision is read from the gate's JSON, not from an exit status.
3. Without one (a push to the default branch, a schedule): records this commit's run as history (the
   workflow uploads it) and passes. No baseline is kept from run to run: one that renewed itself on
   every passing run would let regressions just under the bar pile up.
4. Writes to ``--summary`` (the job summary) the verdict first, then each workload's ratio with its
   interval, the gate's table and the report; ``verdict`` and ``results`` to ``--github-output``.

Exit status: 0 passed, improved or recorded; 1 a regression with ``--fail-on-regression``; 2 bad input
or runs that could not be compared; 3 inconclusive with ``--fail-on-inconclusive``; 4 a run of the suite
itself failed (its log is in ``--out``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from common.environment import LABEL_ENV, RUNNER_ENV
from scripts.ab import DEFAULT_BARS, DEFAULT_BUDGET_S
from scripts.cli import Parser, prepare_out, run
from scripts.gating import EXIT_OK, OUTCOMES
from scripts.matrix import ROOT, Limit, MatrixError, check_workload_files
from scripts.results import ResultsError

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
    parser.add_argument("--workdir", default=".", help="the head's checkout: where relative file names start")
    parser.add_argument("--base-dir", default="", help="the base commit's checkout (a pull request); empty: record")
    parser.add_argument("--out", required=True, help="folder for the runs, their logs, the gate and the report")
    parser.add_argument("--profile", default="quick", choices=("quick", "default", "full"))
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--executors", default="serial,thread,process")
    parser.add_argument("--limit", default="unlimited", help="unlimited, or a CPU set such as cpuset-0-1")
    parser.add_argument("--bars", default="", help="scripts.ab_noise's bars file (default: this repository's)")
    parser.add_argument("--budget", default=str(DEFAULT_BUDGET_S), help="seconds the A/B run may take at most")
    parser.add_argument("--fail-on-regression", default="true")
    parser.add_argument("--fail-on-inconclusive", default="false")
    parser.add_argument("--event", default=os.environ.get("GITHUB_EVENT_NAME", ""))
    parser.add_argument("--summary", help="file to append the Markdown verdict and report to")
    parser.add_argument("--github-output", help="file to append step outputs to (name=value lines)")
    args = parser.parse_args(argv)
    args.fail_on_regression = _flag(args.fail_on_regression, "fail-on-regression")
    args.fail_on_inconclusive = _flag(args.fail_on_inconclusive, "fail-on-inconclusive")
    try:
        args.budget = float(args.budget)
    except ValueError:
        raise ActionError(f"--budget: {args.budget!r} is not a number of seconds; give e.g. 120") from None
    if args.budget <= 0:
        raise ActionError(f"--budget: {args.budget:g} is not a positive number of seconds; give e.g. 120")
    raw = [*args.workload_list.split(), *args.workload_files]
    if not raw:
        raise ActionError("no workload file given; name one or more in workload-files (paths in your repository)")
    workdir = Path(args.workdir).resolve()
    args.relative = [str((workdir / r).resolve().relative_to(workdir)) if not Path(r).is_absolute() else r for r in raw]
    args.workload_files = [str((workdir / r).resolve()) for r in raw]
    if args.base_dir and not Path(args.base_dir).is_dir():
        raise ActionError(
            f"--base-dir {args.base_dir}: not a folder; give the base commit's checkout, or leave it empty"
        )
    args.bars = args.bars or str(DEFAULT_BARS)
    args.limit = Limit.parse(args.limit.strip())
    if args.limit.quota is not None:
        raise ActionError(
            f"--limit {args.limit.name}: a CPU quota needs a container; on a runner use a CPU set (cpuset-0-1) "
            "or unlimited"
        )
    return args


def suite_options(args) -> list[str]:
    """What every run of the suite shares: the sweep the action's inputs ask for."""
    return ["--workers", args.workers, "--executors", args.executors]


def record_command(args, files, out: Path) -> list[str]:
    names = [w for f in files for w in f.workloads]
    cmd = [sys.executable, "-m", "pytest", "bench", "-p", "no:cacheprovider", "-q", "--profile", args.profile]
    cmd += ["--cases", "scaling", "--workloads", ",".join(names), *suite_options(args), "--benchmark-json", str(out)]
    return cmd + [a for f in files for a in ("--workload-file", str(f.host))]


def ab_command(args, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "scripts.ab", str(Path(args.base_dir).resolve()), str(Path(args.workdir).resolve())]
    cmd += [f"--workload-file={r}" for r in args.relative]
    cmd += ["--profile", args.profile, "--bars", args.bars, "--budget", f"{args.budget:g}", "--out", str(out)]
    return [*cmd, "--format", "json", "--", *suite_options(args)]


def _write(path: str | None, text: str) -> None:
    if path:
        with open(path, "a") as f:
            f.write(text)


def _report(results: Path, out: Path) -> str:
    subprocess.run(
        [sys.executable, "-m", "scripts.report", str(results), "--out", str(out)], cwd=ROOT, capture_output=True,
        check=False,
    )  # fmt: skip
    report = out / "report.md"
    return report.read_text() if report.is_file() else "no report was written\n"


def workload_table(decided: dict) -> list[str]:
    """Each workload's work ratio and each scaling index, HEAD over BASE, with the pairs' interval."""
    rows = [r for r in decided["rows"] if r["metric"] in ("work", "index")]
    lines = ["| what | HEAD / BASE | interval | verdict |", "| --- | --- | --- | --- |"]
    for r in rows:
        lo, hi = r["ratio_interval"]
        lines.append(f"| `{r['name']}` | {1 + r['change']:.3f} | [{lo:.3f}, {hi:.3f}] | {r['verdict']} |")
    return lines


def gate(args, out_dir: Path, env: dict, cpus: set[int]) -> int:
    """The pull request's A/B run and its decision (module doc, step 2)."""
    ab_out = out_dir / "ab"
    done = subprocess.run(
        ab_command(args, ab_out), cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )  # fmt: skip
    (out_dir / "ab.log").write_text(done.stderr)
    try:
        decided = json.loads(done.stdout)
    except json.JSONDecodeError:
        said = done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        failed = "run failed" in said[0] or " failed (exit" in said[0]
        verdict = "failed" if failed else "unusable"
        _write(args.summary, f"## poolbench: {verdict}\n\n`{said[0]}`\n\nlog: {out_dir / 'ab.log'}\n")
        _write(args.github_output, f"verdict={verdict}\nresults={out_dir}\n")
        print(f"poolbench action: {said[0]}", file=sys.stderr)
        return EXIT_SUITE_FAILED if failed else 2
    verdict = decided["outcome"]
    heads = sorted(ab_out.glob("head-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    report_text = _report(heads[-1], out_dir / "report") if heads else "no report was written\n"
    markdown = (ab_out / "ab.md").read_text() if (ab_out / "ab.md").is_file() else ""
    pairs = decided["ab"]["pairs"]
    lines = [
        f"## poolbench gate: {verdict}",
        "",
        f"{decided['verdict']} (HEAD against BASE, {pairs} interleaved pairs of runs in "
        f"{decided['ab']['seconds']:.0f} s)",
        "",
        *workload_table(decided),
        "",
        markdown,
        "",
        report_text,
    ]
    _write(args.summary, "\n".join(lines))
    _write(args.github_output, f"verdict={verdict}\nresults={out_dir}\n")
    print(f"poolbench action: {decided['verdict']}")
    fails = (verdict == "regression" and args.fail_on_regression) or (
        verdict == "inconclusive" and args.fail_on_inconclusive
    )
    return OUTCOMES[verdict] if fails else EXIT_OK


def record(args, files, out_dir: Path, env: dict, cpus: set[int]) -> int:
    """One run of this commit, kept as history (module doc, step 3)."""
    current, log = out_dir / "current.json", out_dir / "suite.log"
    with open(log, "w") as sink:
        code = subprocess.run(
            record_command(args, files, current), cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus), check=False,
        ).returncode  # fmt: skip
    if code != 0 or not current.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        _write(args.summary, f"## poolbench: the suite failed (exit {code})\n\n`{tail[0]}`\n\nlog: {log}\n")
        _write(args.github_output, f"verdict=failed\nresults={out_dir}\n")
        print(f"poolbench action: the suite failed (exit {code}): {tail[0]}; log: {log}", file=sys.stderr)
        return EXIT_SUITE_FAILED
    said = (
        f"recorded: this {args.event or 'local'} run is kept as history ({current}); a pull request is gated "
        "against its base commit, measured beside it"
    )
    print(f"poolbench action: {said}")
    _write(args.summary, f"## poolbench: recorded\n\n{said}\n\n{_report(current, out_dir / 'report')}")
    _write(args.github_output, f"verdict=recorded\nresults={out_dir}\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        files = check_workload_files(args.workload_files, "affinity")
    except MatrixError as exc:
        raise ActionError(str(exc)) from None
    out_dir = prepare_out(args.out)
    cpus = set(args.limit.cpuset) if args.limit.cpuset is not None else os.sched_getaffinity(0)
    if not cpus <= os.sched_getaffinity(0):
        raise ActionError(f"--limit {args.limit.name}: CPUs {sorted(cpus - os.sched_getaffinity(0))} are not here")
    env = {**os.environ, LABEL_ENV: args.limit.name, RUNNER_ENV: "affinity"}
    names = ", ".join(w for f in files for w in f.workloads)
    if args.base_dir:
        print(f"poolbench action: {names}: HEAD against BASE, interleaved ({args.profile})", flush=True)
        return gate(args, out_dir, env, cpus)
    print(f"poolbench action: recording {names} ({args.profile})", flush=True)
    return record(args, files, out_dir, env, cpus)


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.action", main))
