"""Where a scaling pass's noise comes from, and what the sampling plan's two ways of spending less time cost it.

    python evidence/sample_noise.py REV|DIR [REV|DIR ...]   (sets of three runs, as evidence/interval_methods.py)

A pass of a scaling case holds R timed rounds of k tasks per busy CPU and R + 1 one-task probes
(common/plan.py). The main job's time is nearly all rounds and probes, so it shrinks two ways: fewer
rounds (and so fewer probes), or fewer tasks per round. Which costs the intervals less depends on how
a sample's noise grows with its length. For each set this prints, over the CPU-bound cases of its
first run:

* the median standard deviation of a pass's one-task probes (log throughput), and of its rounds
  (each k task times long per CPU): if noise fell as 1/sqrt(length), as independent tasks' would,
  a round of six task times would scatter 2.4 times less than one task; equal spreads mean the noise
  comes in phases that outlast a round, so shorter rounds scatter no more;
* the set replayed with only the first two rounds of every pass and the three probes around them
  (exactly what a run of two rounds would have recorded up to its end): rerun agreement and the
  median prediction half-width at W = C, beside the set as recorded (what
  ``python -m scripts.agreement`` prints).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import reference
from evidence.interval_methods import measure, sets_table


def spreads(path: str) -> tuple[float, float, int]:
    """Median within-pass standard deviation of log probe throughput and of log round throughput, and k."""
    data = json.loads(Path(path).read_text())
    probe_sd, round_sd = [], []
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        if extra.get("case") != "scaling" or extra.get("kind") == "io":
            continue
        paired = reference.case_paired(extra, bench["stats"]["data"], extra["tasks"])
        if paired is None or len(paired.rounds[0]) < 2:
            continue
        probe_sd.append(statistics.stdev(math.log(x) for x in paired.probes[0]))
        round_sd.append(statistics.stdev(math.log(x) for x in paired.rounds[0]))
    per_cpu = data["machine_info"]["poolbench"]["config"]["tasks_per_cpu"]
    return statistics.median(probe_sd), statistics.median(round_sd), per_cpu


def keep_rounds(path: str, rounds: int, out: Path) -> str:
    """A copy of a run with the first ``rounds`` timed rounds of every scaling pass and the probes around them."""
    data = json.loads(Path(path).read_text())
    for bench in data["benchmarks"]:
        extra = bench["extra_info"]
        if extra.get("case") != "scaling":
            continue
        kept = bench["stats"]["data"][:rounds]
        bench["stats"].update(
            data=kept, rounds=len(kept), min=min(kept), max=max(kept), total=sum(kept),
            mean=statistics.fmean(kept), median=statistics.median(kept),
        )  # fmt: skip
        for key in ("serial_samples_s", "serial_cpu_samples_s", "serial_cpus"):
            if isinstance(extra.get(key), list):
                extra[key] = extra[key][: reference.probes_per_pass(rounds)]
        if isinstance(extra.get("round_cpu_shares"), list):
            extra["round_cpu_shares"] = extra["round_cpu_shares"][:rounds]
    data["machine_info"]["poolbench"]["config"]["rounds"] = rounds
    out.write_text(json.dumps(data))
    return str(out)


def row(spec: str, paths: list[str], scratch: Path) -> str:
    probe, rnd, per_cpu = spreads(paths[0])
    cut = [keep_rounds(p, 2, scratch / f"cut-{i}.json") for i, p in enumerate(paths)]
    cells = [f"{h} of {n} = {h / n:.0%}, {w:.1%}" for h, n, w in (measure(paths), measure(cut))]
    return f"| {spec} | {per_cpu} | {probe:.2%} / {rnd:.2%} | {' | '.join(cells)} |"


def main(argv: list[str]) -> int:
    return sets_table(
        argv,
        __doc__.strip().splitlines()[2].strip(),
        "| set | k | a probe's spread (1 task) / a round's (k task times per CPU) "
        "| as recorded: agreement, half-width at W = C | two rounds kept: agreement, half-width |",
        row,
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
