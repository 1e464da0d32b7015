"""A workload file of CPython's ftscalingbench patterns: loops that ought to scale on a free-threaded build.

    pytest bench --workload-file evidence/ftscaling.py --cases scaling --executors serial,thread \\
        --workloads ft_closure,ft_method,ft_dict,ft_string,ft_float

Each task runs one pattern ``n`` times (CPython's Tools/ftscalingbench times the same patterns on one
thread and on N threads that each do the whole task; ``evidence/ftscaling_raw.py`` does that here).
On a build with the GIL, threads cannot scale any of them; without it, a pattern that does not scale
names a contention inside the interpreter (a shared reference count, a lock). ``scale=1``: the work
grows with ``n``.
"""

from __future__ import annotations

from workloads import Size, Workload


class _Box:
    def __init__(self, value: int) -> None:
        self.value = value

    def get(self) -> int:
        return self.value


def ft_closure(n: int) -> int:
    """Create a nested function and call it, ``n`` times (a new function object each time)."""
    total = 0
    for i in range(n):

        def inner(x: int) -> int:
            return x

        total += inner(i) & 1
    return total


def ft_method(n: int) -> int:
    """Call a method of an object made by this task, ``n`` times."""
    box, total = _Box(1), 0
    for _ in range(n):
        total += box.get()
    return total


def ft_dict(n: int) -> int:
    """Build a small dict, ``n`` times."""
    total = 0
    for i in range(n):
        d = {"a": i, "b": i + 1}
        total += len(d)
    return total


def ft_string(n: int) -> int:
    """Compare a string with a constant, ``n`` times."""
    s, total = "poolbench", 0
    for _ in range(n):
        total += s == "poolbench"
    return total


def ft_float(n: int) -> int:
    """Multiply a float by a constant, ``n`` times."""
    x, total = 1.0, 0
    for _ in range(n):
        total += (x * 1.5) > 1.0
    return total


def _check(expected):
    def check(n: int, result: object) -> bool:
        return result == expected(n)

    return check


_SIZES = {"quick": Size(20_000, 8, 1), "default": Size(50_000, 16, 1), "full": Size(100_000, 32, 1)}

WORKLOADS = [
    Workload("ft_closure", ft_closure, "cpu-python", "holds", _SIZES, _check(lambda n: n // 2),
             models="ftscalingbench create_closure: a new function object per call"),
    Workload("ft_method", ft_method, "cpu-python", "holds", _SIZES, _check(lambda n: n),
             models="ftscalingbench pymethod: a method call on a task-local object"),
    Workload("ft_dict", ft_dict, "cpu-python", "holds", _SIZES, _check(lambda n: 2 * n),
             models="ftscalingbench create_dict: a small dict per iteration"),
    Workload("ft_string", ft_string, "cpu-python", "holds", _SIZES, _check(lambda n: n),
             models="ftscalingbench load_string_const: compare with a string constant"),
    Workload("ft_float", ft_float, "cpu-python", "holds", _SIZES, _check(lambda n: n),
             models="ftscalingbench mult_constant: float times a constant"),
]  # fmt: skip
