"""Payload cost: tasks whose argument and result are 1 KiB, 1 MiB or 16 MiB of bytes.

A process pool pickles the payload to the worker and the result back; a thread pool passes a
reference. The difference per MiB is the price of isolation.
"""

from __future__ import annotations

import workloads
from bench.config import PAYLOAD_BYTES
from bench.harness import case_pool, run_batches
from workloads.cpu_bound import compressible_bytes

CASE = "payload"


def test_payload(benchmark, case, suite):
    work = workloads.get(case.workload)
    tasks = work.size(suite.profile).tasks
    size = PAYLOAD_BYTES[case.payload]
    payload = compressible_bytes(size)
    benchmark.group = f"payload {case.payload}"
    with case_pool(case, suite) as pool:
        run_batches(
            benchmark,
            suite,
            case,
            pool,
            func=work.func,
            args=[payload] * tasks,
            check=lambda _, result: work.accepts(payload, result),
            rounds=suite.settings["payload_rounds"],
            warmup_rounds=suite.settings["warmup_rounds"],
        )
    benchmark.extra_info.update(task_param=case.payload, payload_bytes=size)
