"""Disk faults: a results folder that cannot be written, a disk that fills up while saving or while
journaling, and a results file replaced underneath a running suite.

Each ends in one line that names the file and the problem, a non-zero exit, no traceback, earlier
results untouched and the journal still readable. Small file systems are real tmpfs mounts made for
the test (root only; skipped elsewhere, with the reason).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.results import load
from tests.test_faults import bench, no_survivors, start, wait_for_journal

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size_kib: int, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size_kib`` KiB mounted at ``where`` for the block; skips the test if mounting is not allowed."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kib}k" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def run(tmp_path: Path, *args: str, json_out: Path | None = None) -> subprocess.CompletedProcess:
    """A short run (dispatch and payload cases on serial and threads) with ``args``; no process may outlive it."""
    cmd, env = bench(tmp_path, "", "--executors", "serial,thread", "--cases", "dispatch,payload", *args, json_out=False)
    if json_out is not None:
        cmd += ["--benchmark-json", str(json_out)]
    proc = start(cmd, env)
    out, _ = proc.communicate(timeout=300)
    assert not no_survivors(env["_mark"])
    return subprocess.CompletedProcess(cmd, proc.returncode, out)


#: How the end-of-run lines about the machine itself end (bench/conftest.py: a busy machine, denied CPU).
MACHINE_STATE = "; re-run on an idle machine"


def poolbench_lines(output: str) -> list[str]:
    """The run's own lines (``poolbench: ``, ``ERROR: ``), less those about the machine's state.

    Any run that starts with the 1-minute load average above its CPUs says so at its end, whatever
    else happened; inside the test suite the subprocess runs of earlier tests can leave it there (a
    fresh clone's README test run met it once: two lines where this file expected one).
    """
    return [
        line
        for line in output.splitlines()
        if line.startswith(("poolbench: ", "ERROR: ")) and not line.endswith(MACHINE_STATE)
    ]


def test_an_unwritable_results_folder_is_refused_before_any_case(tmp_path):
    with mounted_tmpfs(tmp_path / "ro", 64, read_only=True) as ro:
        done = run(tmp_path, json_out=ro / "out.json")
        assert done.returncode == 4, done.stdout
        assert "Traceback" not in done.stdout
        assert poolbench_lines(done.stdout) == [
            f"ERROR: --benchmark-json: cannot write in folder '{ro}' (Read-only file system); choose a writable folder"
        ]
        assert "passed" not in done.stdout  # no case ran
        done = run(tmp_path, "--benchmark-autosave", f"--benchmark-storage=file://{ro}")
        assert done.returncode == 4, done.stdout
        assert "--benchmark-storage: cannot write in folder" in done.stdout
        done = run(tmp_path, "--journal", str(ro / "j.jsonl"), json_out=tmp_path / "out.json")
        assert done.returncode == 4, done.stdout
        assert "--journal: cannot write in folder" in done.stdout


def test_a_disk_full_while_saving_keeps_the_earlier_file_and_the_journal(tmp_path):
    journal = tmp_path / "journal.jsonl"
    with mounted_tmpfs(tmp_path / "tiny", 8) as tiny:
        earlier = tiny / "out.json"
        earlier.write_text('{"earlier": "results"}')
        done = run(tmp_path, "--journal", str(journal), json_out=earlier)
        assert done.returncode == 1, done.stdout
        assert "Traceback" not in done.stdout and "INTERNALERROR" not in done.stdout
        (line,) = poolbench_lines(done.stdout)
        assert line.startswith(f"poolbench: {earlier}: could not be saved (No space left on device)")
        assert f"the finished cases are in the journal {journal}" in line
        assert earlier.read_text() == '{"earlier": "results"}'  # untouched
        assert [p.name for p in tiny.iterdir()] == ["out.json"]  # no temporary file left behind
    records = load([journal])
    assert {r.extra["case"] for r in records} == {"dispatch", "payload"}
    assert len(records) == 8  # dispatch: serial, thread; payload: 3 sizes on each


def test_a_disk_full_while_journaling_stops_the_run_and_keeps_whole_lines(tmp_path):
    with mounted_tmpfs(tmp_path / "tiny", 8) as tiny:  # the run's header and about two cases fit
        journal = tiny / "journal.jsonl"
        done = run(tmp_path, "--journal", str(journal), json_out=tmp_path / "out.json")
        assert done.returncode == 1, done.stdout
        assert "Traceback" not in done.stdout and "INTERNALERROR" not in done.stdout
        (line,) = [x for x in poolbench_lines(done.stdout) if "journal" in x]
        assert line.startswith(f"poolbench: journal {journal}: could not be written (No space left on device)")
        assert "stopping the run" in line
        lines = journal.read_text().splitlines()
        assert all(json.loads(x) for x in lines)  # whole lines only
        journaled = {r.name for r in load([journal])}
    saved = {b["name"] for b in json.loads((tmp_path / "out.json").read_text())["benchmarks"]}
    assert journaled < saved  # the JSON holds the case whose line did not fit; the run stopped after it
    assert "Interrupted: the journal of finished cases could not be written" in done.stdout


def test_a_results_file_replaced_during_the_run_is_left_alone(tmp_path):
    out = tmp_path / "out.json"
    out.write_text('{"before": 1}')
    cmd, env = bench(tmp_path, "", "--executors", "serial,thread,process", "--cases", "dispatch,payload")
    proc = start(cmd, env)
    wait_for_journal(tmp_path / "out.journal.jsonl", proc, cases=1)
    other = tmp_path / f".other-{uuid.uuid4().hex}"
    other.write_text('{"another": "run"}')
    os.replace(other, out)  # another run, given the same --benchmark-json, saved meanwhile
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    (line,) = poolbench_lines(output)
    assert line.startswith(f"poolbench: {out}: changed during this run (another run writing the same file?)")
    assert out.read_text() == '{"another": "run"}'
    assert len(load([tmp_path / "out.journal.jsonl"])) >= 1
    assert not no_survivors(env["_mark"])


def test_a_journal_replaced_during_the_run_stops_it(tmp_path):
    cmd, env = bench(tmp_path, "", "--executors", "serial,thread,process", "--cases", "dispatch,payload")
    proc = start(cmd, env)
    journal = tmp_path / "out.journal.jsonl"
    wait_for_journal(journal, proc, cases=1)
    kept = journal.read_text()
    journal.unlink()
    journal.write_text(kept)  # a copy under the same name: another file
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    (line,) = poolbench_lines(output)
    assert line.startswith(f"poolbench: journal {journal}: could not be written (replaced or removed")
    assert journal.read_text() == kept  # the copy is not written into
    assert len(load([journal])) == kept.count('"type": "benchmark"') >= 1
    assert not no_survivors(env["_mark"])
