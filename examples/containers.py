"""An example workload file: many small containers per task, the way a service turns records into JSON and back.

Run it alone:

    pytest bench --workload-file examples/containers.py --workloads containers --cases scaling

Each task builds ``n`` small records (a dict holding a list, a tuple and a string each), encodes them
as JSON, decodes them again and groups them by key: pure-Python work that holds the GIL and
allocates tens of thousands of objects a task, so the garbage collector runs many times inside each
one. It is what made a single-task serial reference unreliable: a full collection of the harness's
own heap (pytest, NumPy, matplotlib: about 20 ms) landed on some probes and not others, so its
one-worker pools read 0.71-0.80× and its thread pool 1.29× (docs/guide.md, "Against the physical
limits"). ``scale=1``: the work grows with ``n``; calibration moves it to the profile's target.
"""

from __future__ import annotations

import json

from workloads import Size, Workload


def records_roundtrip(n: int) -> int:
    """Build ``n`` records, JSON-encode and decode them, group them by ``id % 97``; the sum of the ids kept."""
    rows = [{"id": i, "tags": [i % 7, i % 11], "pair": (i, f"item{i}"), "ok": i % 2 == 0} for i in range(n)]
    back = json.loads(json.dumps(rows))
    groups: dict[int, list[dict]] = {}
    for row in back:
        groups.setdefault(row["id"] % 97, []).append(row)
    return sum(row["id"] for rows_ in groups.values() for row in rows_ if row["ok"])


def check_records(n: int, result: object) -> bool:
    """The sum of the even numbers below ``n``, in closed form."""
    evens = (n + 1) // 2  # 0, 2, 4, ... below n
    return result == evens * (evens - 1)


WORKLOADS = [
    Workload(
        name="containers",
        func=records_roundtrip,
        kind="cpu-python",
        gil="holds",
        sizes={"quick": Size(2000, 8, 1), "default": Size(4000, 16, 1), "full": Size(8000, 32, 1)},
        check=check_records,
        models="records to JSON and back: tens of thousands of small objects a task, the collector running inside it",
    ),
]
