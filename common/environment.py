"""Environment variables that pass a setting from the scripts (the matrix, the action) to a suite run.

Each is named once here; bench/ reads them, scripts/ sets them.
"""

#: The CPU limit's name in a matrix run (recorded as machine_info ``label``; bench/config.py checks it).
LABEL_ENV = "POOLBENCH_LABEL"

#: Where the run itself runs, ``host``, ``docker`` or ``affinity`` (recorded as machine_info
#: ``backend``; bench/config.py RUNNERS): not an executor's bench.backend.Backend.
RUNNER_ENV = "POOLBENCH_BACKEND"

#: Set by scripts.matrix for the runs of a matrix across Python builds (``--pythons``): an executor
#: named in ``--executors`` that the build lacks is left out of that build's run with one line and
#: recorded (machine_info ``skipped_executors``), instead of failing the run (bench/config.py).
SKIP_MISSING_ENV = "POOLBENCH_SKIP_MISSING_EXECUTORS"

#: A file the suite writes at its first stop signal, ``{"stopped_by": "SIGTERM"}`` (bench/stopping.py):
#: how scripts.matrix tells a suite stopped by a signal (exit 2) from one pytest stopped for a
#: collection error (also exit 2), without reading the wording of a message.
STATUS_FILE_ENV = "POOLBENCH_STATUS_FILE"

#: Workload files for ``pytest bench``, ':'-separated, read before ``--workload-file`` (bench/conftest.py);
#: scripts.matrix sets it to the files' paths inside its containers.
WORKLOAD_FILES_ENV = "POOLBENCH_WORKLOAD_FILES"

#: Set by scripts.matrix for a cluster of containers (``--cluster``): how many workers the cluster should
#: have before the suite reads its size (worker containers connect a few seconds after start).
CLUSTER_WORKERS_ENV = "POOLBENCH_DASK_WORKERS"
