"""The figures of README and docs/ recomputed from the result files they came from: ``python -m scripts.evidence``.

Every figure README.md and the pages under docs/ quote about this machine sits in a block between
two markers::

    <!-- evidence:NAME -->
    ...generated text...
    <!-- /evidence:NAME -->

and each block is generated here from the trimmed result files under ``evidence/`` (measured by
``bash evidence/measure.sh``, which records the command of every run). Commands:

* ``trim RAW``: copy the runs of ``evidence/measure.sh`` from RAW into ``evidence/``, trimmed to
  what the loader reads (per-round samples, extra_info, machine_info without the CPU flag list);
* ``show``: print every block;
* ``write [FILE...]``: rewrite the blocks in place (atomically); default: README.md and docs/*.md;
* ``check [FILE...]``: exit 1 when a block differs from what the files give (tests/test_evidence.py).

A figure outside these blocks is prose about method, not a measurement of this machine. The blocks
live by topic: scripts/evidence_plan.py (profiles, plan, growth, phases), evidence_limits.py
(limits, causes, frontpage), evidence_gate.py, evidence_faults.py (crash, faults, interrupts),
evidence_builds.py (matrix, builds), evidence_dask.py, evidence_reference.py (reference,
freethreaded); evidence_files.py reads the files for all of them.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from scripts.cli import Parser, run, write_atomic
from scripts.evidence_builds import block_builds, block_matrix
from scripts.evidence_dask import block_dask
from scripts.evidence_faults import block_crash, block_faults, block_interrupts
from scripts.evidence_files import EVIDENCE, ROOT
from scripts.evidence_gate import block_ab, block_gate
from scripts.evidence_limits import block_causes, block_frontpage, block_limits
from scripts.evidence_plan import block_growth, block_phases, block_plan, block_profiles
from scripts.evidence_reference import block_freethreaded, block_reference, block_stack
from scripts.results import ResultsError

#: Where each run of evidence/measure.sh goes, by the start of its name.
TOPICS = {
    "growth-": "growth",
    "gate-": "gate",
    "default-run": "limits",
    "crash": "crash",
    "malloc-": "faults",
    "dask-run": "dask",
    "containers-run": "reference",
    "old-reference": "reference",
    "stack-": "stack",
}


def parse_args(argv: Sequence[str] | None = None):
    parser = Parser(prog="python -m scripts.evidence", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    trim_p = sub.add_parser("trim", help="copy evidence/measure.sh's runs from RAW into evidence/, trimmed")
    trim_p.add_argument("raw", metavar="RAW", help="the folder evidence/measure.sh wrote (RAW=...)")
    sub.add_parser("show", help="print every generated block")
    for name, what in (("write", "rewrite the blocks of FILE"), ("check", "exit 1 if a block of FILE is stale")):
        p = sub.add_parser(name, help=what)
        p.add_argument("files", metavar="FILE", nargs="*", help="Markdown files (default: README.md and docs/*.md)")
    return parser.parse_args(argv)


def trimmed(data: dict) -> dict:
    """A results file cut to what scripts/results.py reads: no CPU flags, no commit, samples only."""
    if not isinstance(data, dict) or "machine_info" not in data or "benchmarks" not in data:
        raise ResultsError(
            "not a pytest-benchmark results file (no machine_info or benchmarks); give RAW the "
            "folder evidence/measure.sh wrote"
        )
    machine = {k: v for k, v in data["machine_info"].items() if k != "cpu"}
    return {
        "datetime": data["datetime"],
        "machine_info": machine,
        "benchmarks": [
            {
                "name": b["name"],
                "group": b.get("group"),
                "extra_info": b["extra_info"],
                "stats": {"data": [round(x, 9) for x in b["stats"]["data"]]},
            }
            for b in data["benchmarks"]
        ],
    }


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, separators=(",", ":")) + "\n")


def end_of_run(log: str) -> str:
    """The poolbench section of a ``pytest bench`` run's output and pytest's last line, as a user saw them."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if re.fullmatch(r"=+ poolbench =+", line)), None)
    if start is None:
        raise ResultsError("the main job's log has no poolbench section; run it again (evidence/measure.sh frontpage)")
    table = list(itertools.takewhile(lambda line: not line.startswith("results: "), lines[start:]))
    last = [line for line in lines if re.fullmatch(r"=+ \d+ passed.* =+", line)]
    return "\n".join([*table, *last[-1:]]) + "\n"


def trim(raw: Path) -> list[Path]:
    written = []
    for src in sorted(raw.glob("*.json")):
        topic = next((t for prefix, t in TOPICS.items() if src.name.startswith(prefix)), None)
        if topic is None:
            continue
        _write_json(EVIDENCE / topic / src.name, trimmed(json.loads(src.read_text())))
        written.append(EVIDENCE / topic / src.name)
    # scripts.matrix's result folders, one run per limit (its own report left out)
    folders = [(raw / f"matrix-{profile}", f"matrix/{profile}/{{}}.json") for profile in ("quick", "default")]
    folders += [(raw / "builds", "builds/{}.json"), (raw / "cluster", "dask/cluster-{}.json")]
    # the free-threaded runs, one limit each (unlimited-py3.13t), three fresh processes
    folders += [
        (f, f"reference/ftscaling-{{}}-{f.name.removeprefix('ftscaling-')}.json")
        for f in sorted(raw.glob("ftscaling-run*"))
    ]
    for folder, name in folders:
        for src in sorted(folder.glob("*/*.json")):
            if src.parent.name == "report":
                continue
            label = (
                src.parent.name.removeprefix("unlimited-") if folder.name.startswith("ftscaling") else src.parent.name
            )
            dest = EVIDENCE / name.format(label)
            _write_json(dest, trimmed(json.loads(src.read_text())))
            written.append(dest)
    if (raw / "two-file-bars.json").exists():  # the two-file gate's bars (scripts.ab_noise --apart)
        (EVIDENCE / "gate").mkdir(parents=True, exist_ok=True)
        write_atomic(EVIDENCE / "gate" / "bars.json", (raw / "two-file-bars.json").read_text())
        written.append(EVIDENCE / "gate" / "bars.json")
    ab = raw / "ab"
    if (ab / "bars.json").exists():  # the A/B gate: its bars, each run's decision, three runs' pairs as measured
        (EVIDENCE / "ab").mkdir(parents=True, exist_ok=True)
        write_atomic(EVIDENCE / "ab" / "bars.json", (ab / "bars.json").read_text())
        written.append(EVIDENCE / "ab" / "bars.json")
        for src in sorted(ab.glob("*-*/ab.json")):
            dest = EVIDENCE / "ab" / "runs" / f"{src.parent.name}.json"
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(dest, src.read_text())
            written.append(dest)
        kept = {"slow10-1": "pairs", "same-1": "pairs-same", "lock-1": "pairs-lock"}  # the tests' real pairs
        for src in sorted(p for run_, folder in kept.items() for p in (ab / run_).glob("*-*.json")):
            dest = EVIDENCE / "ab" / kept[src.parent.name] / src.name
            _write_json(dest, trimmed(json.loads(src.read_text())))
            written.append(dest)
    front = raw / "frontpage"
    if (front / "main-job.json").exists():  # the main job: its results, its end-of-run table, its summary plot
        dest = EVIDENCE / "frontpage"
        _write_json(dest / "main-job.json", trimmed(json.loads((front / "main-job.json").read_text())))
        write_atomic(dest / "terminal.txt", end_of_run((front / "main-job.log").read_text()))
        (dest / "summary.png").write_bytes((front / "report" / "plots" / "summary.png").read_bytes())
        written += [dest / "main-job.json", dest / "terminal.txt", dest / "summary.png"]
    lines = {  # JSON lines as the tools wrote them
        "dask-parts.jsonl": "dask/parts.jsonl",
        "interrupt-times.jsonl": "interrupts/interrupt-times.jsonl",
        "independent.jsonl": "reference/independent.jsonl",
        "ftscaling-raw.jsonl": "reference/ftscaling-raw.jsonl",
        "phases.json": "phases/phases.json",
        "stack-tasks.jsonl": "stack/tasks.jsonl",  # each stack run's CPU per task by side (evidence/stacklog.py)
    }
    for src, name in lines.items():
        if (raw / src).exists():
            dest = EVIDENCE / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(dest, (raw / src).read_text())
            written.append(dest)
    return written


BLOCKS: dict[str, Callable[[], list[str]]] = {
    "profiles": block_profiles,
    "frontpage": block_frontpage,
    "plan": block_plan,
    "growth": block_growth,
    "limits": block_limits,
    "gate": block_gate,
    "matrix": block_matrix,
    "crash": block_crash,
    "faults": block_faults,
    "causes": block_causes,
    "interrupts": block_interrupts,
    "reference": block_reference,
    "stack": block_stack,
    "freethreaded": block_freethreaded,
    "builds": block_builds,
    "dask": block_dask,
    "phases": block_phases,
    "ab": block_ab,
}


_MARK = re.compile(r"(<!-- evidence:(?P<name>[a-z]+) -->\n)(?P<body>.*?)(<!-- /evidence:(?P=name) -->)", re.S)


def generated(name: str) -> str:
    return "\n".join(BLOCKS[name]()) + "\n"


def rewrite(text: str) -> tuple[str, list[str]]:
    """``text`` with every block regenerated, and the names of the blocks that changed."""
    changed = []

    def fill(m: re.Match) -> str:
        if m.group("name") not in BLOCKS:
            raise ResultsError(
                f"README block evidence:{m.group('name')}: no such block; use one of {', '.join(BLOCKS)}"
            )
        body = generated(m.group("name"))
        if body != m.group("body"):
            changed.append(m.group("name"))
        return m.group(1) + body + m.group(4)

    return _MARK.sub(fill, text), changed


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "trim":
        raw = Path(args.raw)
        if not raw.is_dir():
            raise ResultsError(f"{raw}: not a folder; give the RAW folder evidence/measure.sh wrote")
        for path in trim(raw):
            print(path)
        return 0
    if args.command == "show":
        for name in BLOCKS:
            print(f"<!-- evidence:{name} -->\n{generated(name)}<!-- /evidence:{name} -->\n")
        return 0
    paths = [Path(f) for f in args.files] or doc_files()
    texts = {}
    for path in paths:
        try:
            texts[path] = path.read_text()
        except OSError as exc:
            raise ResultsError(f"{path}: cannot be read ({exc.strerror}); give README.md or a page of docs/") from None
    stale = 0
    for path, text in texts.items():
        new, changed = rewrite(text)
        if args.command == "write":
            if changed:
                write_atomic(path, new)
            print(f"{path}: {len(changed)} block(s) rewritten" + (f" ({', '.join(changed)})" if changed else ""))
        elif changed:
            stale += 1
            print(f"{path}: stale evidence blocks: {', '.join(changed)}; run `python -m scripts.evidence write {path}`")
        else:
            print(f"{path}: every evidence block matches the files under evidence/")
    return 1 if stale else 0


def doc_files() -> list[Path]:
    """README.md and every page of docs/: where generated blocks may sit."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


if __name__ == "__main__":
    raise SystemExit(run("python -m scripts.evidence", main))
