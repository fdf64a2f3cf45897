"""Process-stage protocol 1 end to end: real child processes, the events on a real inherited pipe."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from vw2_stage.testing import start_stage, write_spec

CHILDREN = Path(__file__).parent / "children"


def reporter_spec(tmp_path: Path, **config) -> Path:
    return write_spec(
        tmp_path / "spec.json", config={"greeting": "hello", **config}, seed=42,
        inputs={"data": {"dir": str(tmp_path), "kind": "toy-dataset", "hash": "ab"}},
        outputs={"report": str(tmp_path / "out" / "report")},
    )


def test_events_arrive_on_the_inherited_fd_one_json_object_per_line(tmp_path: Path, python: str) -> None:
    run = start_stage([python, str(CHILDREN / "reporter.py")], reporter_spec(tmp_path))
    assert run.wait() == 0, run.stderr
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in run.raw_lines)
    events = [{k: v for k, v in e.items() if k != "timestamp"} for e in run.events]
    assert events == [
        {"vw2": 1, "type": "log", "message": "config hello seed 42 rank 0/1"},
        {"vw2": 1, "type": "progress", "done": 1, "total": 3},
        {"vw2": 1, "type": "progress", "done": 2, "total": 3, "message": "halfway"},
        {"vw2": 1, "type": "metrics", "step": 7, "values": {"train/loss": 0.25}},  # NaN dropped: JSON has none
        {"vw2": 1, "type": "upload", "path": "report/plots/loss.txt"},
        {"vw2": 1, "type": "upload", "path": "report/summary.json"},
        {"vw2": 1, "type": "checkpoint", "step": 5, "total": 10},
    ]
    assert run.events[3]["timestamp"] == 1234 and isinstance(run.events[0]["timestamp"], int)
    # free-form text stays on stdout/stderr, never on the events fd
    assert run.stdout == "free-form stdout line\n" and "free-form stderr line" in run.stderr
    assert (tmp_path / "out" / "report" / "plots" / "loss.txt").read_text() == "toy-dataset"


def test_exit_status_is_the_stage_result(tmp_path: Path, python: str) -> None:
    run = start_stage([python, str(CHILDREN / "reporter.py")], reporter_spec(tmp_path, exit=3))
    assert run.wait() == 3


def test_an_fd_other_than_3_is_honoured(tmp_path: Path, python: str) -> None:
    run = start_stage([python, str(CHILDREN / "reporter.py")], reporter_spec(tmp_path), events_fd=7)
    assert run.wait() == 0, run.stderr
    assert [e["type"] for e in run.events][:2] == ["log", "progress"]


def test_only_rank_0_reports(tmp_path: Path, python: str) -> None:
    run = start_stage([python, str(CHILDREN / "reporter.py")], reporter_spec(tmp_path), env={"RANK": "1", "WORLD_SIZE": "2"})
    assert run.wait() == 0, run.stderr
    assert run.events == []


def test_without_the_events_variable_events_go_to_stderr(tmp_path: Path, python: str) -> None:
    run = start_stage([python, str(CHILDREN / "reporter.py")], reporter_spec(tmp_path), events_fd=None)
    assert run.wait() == 0, run.stderr
    assert '[vw2 progress] {"type": "progress", "done": 2, "total": 3, "message": "halfway"}' in run.stderr


def test_a_named_fd_that_is_not_open_fails_loudly(tmp_path: Path, python: str) -> None:
    run = start_stage([python, str(CHILDREN / "reporter.py")], reporter_spec(tmp_path), events_fd=None, env={"VW2_EVENTS_FD": "9"})
    assert run.wait() != 0
    assert "VW2_EVENTS_FD=9: fd 9 is not open" in run.stderr


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"protocol": 2}, "protocol must be 1"),
        ({"seed": "0"}, "seed must be an integer"),
        ({"outputs": {"report": "relative/dir"}}, "outputs.report must be an absolute directory path"),
        ({"inputs": {"data": {"dir": "/x"}}}, "inputs.data must be { dir, kind, hash } strings"),
        ({"pauseAtStep": -1}, "pauseAtStep must be null or a non-negative integer"),
    ],
)
def test_a_bad_spec_names_the_file_and_the_field(tmp_path: Path, python: str, patch: dict, message: str) -> None:
    spec = reporter_spec(tmp_path)
    value = json.loads(spec.read_text())
    value.update(patch)
    spec.write_text(json.dumps(value))
    run = start_stage([python, str(CHILDREN / "reporter.py")], spec)
    assert run.wait() == 1
    assert f"{spec}: {message}" in run.stderr


def test_a_missing_spec_variable_says_what_to_set(tmp_path: Path, python: str) -> None:
    run = start_stage([python, str(CHILDREN / "reporter.py")], None)
    assert run.wait() == 1
    assert "VW2_STAGE_SPEC is not set" in run.stderr


def test_torchrun_workers_report_once_through_the_launchers_fd(tmp_path: Path, python: str) -> None:
    """torchrun closes inherited fds in its workers; rank 0 reaches the engine's pipe through the launcher, the
    other rank stays silent, and init_distributed joins a gloo group over both."""
    pytest.importorskip("torch")
    torchrun = str(Path(python).parent / "torchrun")
    spec = write_spec(tmp_path / "spec.json", outputs={"out": str(tmp_path / "out")})
    run = start_stage([torchrun, "--standalone", "--nproc-per-node=2", str(CHILDREN / "ddp_reporter.py")], spec,
                      env={"OMP_NUM_THREADS": "1"})
    assert run.wait() == 0, run.stderr[-3000:]
    assert [e["type"] for e in run.events] == ["log", "metrics"]
    assert run.events[0]["message"] == "rank 0 of 2 backend gloo"
    assert run.events[1]["values"] == {"ddp/sum": 3.0, "ddp/rank": 0.0}
    assert (tmp_path / "out" / "rank0.txt").read_text() == "0"


def test_the_package_imports_without_torch(tmp_path: Path) -> None:
    """The helper installs into any environment: a plain interpreter with only vw2_stage's source imports it."""
    src = Path(__file__).parents[1] / "src"
    code = "import sys; sys.modules['torch'] = None; import vw2_stage; print(vw2_stage.PROTOCOL)"
    python = shutil.which("python3") or sys.executable
    run = start_stage([python, "-c", code], None, env={"PYTHONPATH": str(src)}, events_fd=None)
    assert run.wait() == 0, run.stderr
    assert run.stdout.strip() == "1"
