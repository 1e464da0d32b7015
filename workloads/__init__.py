"""What runs inside a worker: task functions and the registry that describes them.

This package imports only the standard library and NumPy, so that any worker process can import it
cheaply and the same functions pickle under fork, forkserver and spawn.
"""

from common.schema import PROFILES
from workloads.registry import GIL, KINDS, PROBES, SCALING, Size, Workload, get, scaling_names

__all__ = ["GIL", "KINDS", "PROBES", "PROFILES", "SCALING", "Size", "Workload", "get", "scaling_names"]
