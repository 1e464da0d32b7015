"""Everything poolbench takes from pytest-benchmark (and pytest's terminal) beyond their documented API.

pytest-benchmark documents its fixture, options, hooks and JSON; the suite also needs its session
object (the finished benchmarks, the storage's next file number, its machine info and writers) and
each benchmark's record (``has_error``, ``as_dict``, the round times). Those are internals and can
change in any release, so they are reached only through this module, and :func:`check` looks for
every one of them when the session starts: a version that lacks one stops the run with one line
naming the version and what is missing (exit 4), instead of silently dropping a guarantee (before
this module, a missing ``storage._next_num`` quietly turned atomic autosaves off).

Written for pytest-benchmark 5.3.1 (requirements-measure.txt pins it; tests/test_benchmark_api.py
runs :func:`check` against the installed version).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

#: The pytest-benchmark release this adapter was written and tested for.
WRITTEN_FOR = "5.3.1"

#: What the suite reads or replaces on the live BenchmarkSession (created by pytest-benchmark's
#: pytest_configure): instance attributes and methods.
SESSION_NEEDS = (
    "benchmarks", "json", "save", "autosave", "disabled", "storage", "logger", "get_machine_info", "save_json",
)  # fmt: skip
#: What it needs of a file storage (``--benchmark-autosave``): the folder, the name of the next file, the writer.
STORAGE_NEEDS = ("path", "get", "_next_num", "save")
#: Attributes a benchmark's record (Metadata) sets in its constructor, and those of its class.
METADATA_INIT_NEEDS = ("fixture", "stats")
METADATA_CLASS_NEEDS = ("as_dict", "has_error")
#: The round times: ``Metadata.stats`` is a Stats whose constructor keeps them in ``data``.
STATS_INIT_NEEDS = ("data",)
#: The fixture's failure flag, which poolbench sets for a case that failed outside the timed call.
FIXTURE_INIT_NEEDS = ("has_error",)


class AdapterError(pytest.UsageError):
    """The installed pytest-benchmark lacks something poolbench needs: one line, exit 4."""


def version() -> str:
    try:
        return metadata.version("pytest-benchmark")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _missing_on(obj: Any, names: Iterable[str], what: str) -> list[str]:
    return [f"{what}.{n}" for n in names if not hasattr(obj, n)]


def _missing_in_init(cls: type, names: Iterable[str]) -> list[str]:
    """Names a class's constructor never mentions (it sets its attributes there)."""
    init = getattr(cls, "__init__", None)
    used = set(getattr(getattr(init, "__code__", None), "co_names", ()))
    return [f"{cls.__name__}.{n}" for n in names if n not in used]


def missing(bench_session: Any) -> list[str]:
    """What the suite needs that this pytest-benchmark lacks (empty: all there)."""
    from pytest_benchmark.fixture import BenchmarkFixture  # noqa: PLC0415
    from pytest_benchmark.stats import Metadata, Stats  # noqa: PLC0415

    found = _missing_on(bench_session, SESSION_NEEDS, "BenchmarkSession")
    storage = getattr(bench_session, "storage", None)
    if is_file_storage(storage):
        found += _missing_on(storage, STORAGE_NEEDS, "FileStorage")
    found += _missing_in_init(Metadata, METADATA_INIT_NEEDS) + _missing_on(Metadata, METADATA_CLASS_NEEDS, "Metadata")
    found += _missing_in_init(Stats, STATS_INIT_NEEDS) + _missing_in_init(BenchmarkFixture, FIXTURE_INIT_NEEDS)
    return found


def check(config: pytest.Config) -> None:
    """Raise :class:`AdapterError` when the installed pytest-benchmark lacks what the suite uses."""
    bench_session = session(config)
    if bench_session is None:
        return
    if gone := missing(bench_session):
        raise AdapterError(
            f"pytest-benchmark {version()} lacks {', '.join(gone)}, which poolbench needs (written for "
            f"pytest-benchmark {WRITTEN_FOR}); install the pinned version: pip install -r requirements.txt"
        )


def session(config: pytest.Config) -> Any | None:
    """pytest-benchmark's BenchmarkSession of this run (None when the plugin is off: -p no:benchmark)."""
    return getattr(config, "_benchmarksession", None)


def benchmarks(bench_session: Any | None) -> list[Any]:
    """The benchmarks' records so far, in run order (the list pytest-benchmark saves; edit it in place)."""
    return getattr(bench_session, "benchmarks", []) if bench_session is not None else []


def passed(bench: Any) -> bool:
    """Whether this record's case passed and timed without error (poolbench marks its fixture)."""
    return bool(getattr(bench.fixture, "poolbench_passed", False)) and not bench.has_error


def finished(bench_session: Any | None) -> list[Any]:
    """The fixtures of the benchmarks whose case passed (what the end-of-run table reads)."""
    return [b.fixture for b in benchmarks(bench_session) if getattr(b.fixture, "poolbench_passed", False)]


def samples(bench: Any) -> list[float] | None:
    """The round times of a record or fixture (seconds), None before it timed anything."""
    data = getattr(getattr(bench, "stats", None), "stats", None)
    return getattr(data, "data", None)


def as_record(bench: Any) -> dict[str, Any]:
    """A benchmark as pytest-benchmark writes it into its JSON, round times included."""
    return bench.as_dict(include_data=True)


def machine_info(bench_session: Any) -> dict[str, Any]:
    return bench_session.get_machine_info()


def is_file_storage(storage: Any) -> bool:
    """Whether results go to files (the default) rather than elsewhere (elasticsearch)."""
    from pytest_benchmark.storage.file import FileStorage  # noqa: PLC0415

    return isinstance(storage, FileStorage)


def next_storage_file(bench_session: Any, save: str) -> Path:
    """The file an autosave named ``save`` goes to: the storage's next number, as pytest-benchmark names it."""
    storage = bench_session.storage
    return Path(storage.get(f"{storage._next_num}_{save}.json"))


def saved_files(bench_session: Any | None) -> list[Path]:
    """The results files this run wrote (:func:`note_saved`)."""
    return list(getattr(bench_session, "poolbench_saved", []))


def note_saved(bench_session: Any, path: Path) -> None:
    """Remember a results file this run wrote, on pytest-benchmark's session (for the end-of-run summary)."""
    if not hasattr(bench_session, "poolbench_saved"):
        bench_session.poolbench_saved = []
    bench_session.poolbench_saved.append(path)


def keep_round_times(config: pytest.Config) -> None:
    """Have pytest-benchmark keep every round's time in its JSON (``--benchmark-save-data``), as poolbench
    needs them: the spread and the intervals are computed from them."""
    config.option.benchmark_save_data = True


def json_file(bench_session: Any) -> Path | None:
    """The file ``--benchmark-json`` names (None: not asked)."""
    return Path(bench_session.json) if bench_session.json else None


def saves_to_storage(bench_session: Any) -> bool:
    """Whether the run saves into pytest-benchmark's storage (``--benchmark-save`` or ``--benchmark-autosave``)."""
    return bool(bench_session.save or bench_session.autosave)


def saves(bench_session: Any) -> bool:
    """Whether the run saves its results anywhere."""
    return json_file(bench_session) is not None or saves_to_storage(bench_session)


def timing_off(bench_session: Any) -> bool:
    """Whether pytest-benchmark runs each benchmark once without timing (``--benchmark-disable``)."""
    return bool(bench_session.disabled)


def storage_folder(bench_session: Any) -> Path | None:
    """The folder a file storage saves in (None: another storage, elasticsearch)."""
    storage = bench_session.storage
    return Path(storage.path) if is_file_storage(storage) else None


def storage_file(bench_session: Any, name: str) -> Path:
    """A file named ``name`` in the storage's folder for this machine, as pytest-benchmark places its saves."""
    return Path(bench_session.storage.get(name))


def say(bench_session: Any, text: str, **style: bool) -> None:
    """One line through pytest-benchmark's logger (as it says where it wrote a file)."""
    bench_session.logger.info(text, **style)


def dumps(output_json: dict) -> bytes:
    """A results file's bytes as pytest-benchmark writes them (its own encoder)."""
    from pytest_benchmark.utils import safe_dumps  # noqa: PLC0415

    return safe_dumps(output_json, ensure_ascii=True, indent=4).encode()


def replace_writers(bench_session: Any, save_json: Any, save_storage: Any) -> None:
    """Route pytest-benchmark's two writers through poolbench's: ``save_json(output_json)`` for
    ``--benchmark-json``, ``save_storage(output_json, save)`` for a file storage (other storages keep theirs)."""
    bench_session.save_json = save_json
    if is_file_storage(bench_session.storage):  # its internals were checked at start (check)
        bench_session.storage.save = save_storage


def fixture_of(bench: Any) -> Any:
    """The fixture behind a finished benchmark's record: where poolbench marks what it found."""
    return bench.fixture


def mark_passed(fixture: Any, passed: bool) -> None:
    """Mark whether a benchmark's case passed (:func:`passed` and :func:`finished` read it)."""
    fixture.poolbench_passed = passed


def mark_failed(fixture: Any) -> None:
    """Mark a benchmark failed, so that pytest-benchmark leaves it out of what it saves."""
    fixture.has_error = True


def terminal_writer(reporter: Any) -> Any:
    """pytest's TerminalWriter behind its reporter (to end the progress dots' line before a line of ours)."""
    return reporter._tw
