"""The embedded run (`make run`'s run_embedded) on SQLite and the filesystem broker in a temp
dir: it answers, shows its banner after the children's start-up output, and on SIGHUP (a
closed terminal), SIGTERM or SIGINT stops with every child gone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 90  # five Python processes on a loaded 2-core machine
STOP_SECONDS = 15  # the supervisor's grace (10 s) and a margin


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a fresh embedded run: its own SQLite file and broker folder,
    migrated (Beat's database scheduler needs its tables)."""
    where = tmp_path_factory.mktemp("embedded")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "CELERY_", "DJANGO_", "BROKER_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"sqlite:///{where / 'db.sqlite3'}",
        BROKER_DIR=str(where / "broker"),
        EMAIL_URL="consolemail://",
        PYTHONUNBUFFERED="1",
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    return env


def _children(pid: int) -> set[int]:
    """Every descendant of PID (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def embedded(embedded_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    port = free_port()
    out = tmp_path / "embedded.log"
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_embedded", "--port", str(port)],
            cwd=ROOT,
            env=embedded_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # as from a terminal: its own group, we signal only it
        )
    proc.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    proc.log = out  # type: ignore[attr-defined]
    try:
        yield proc
    finally:  # a failing test must not leave the run behind
        for pid in (*_children(proc.pid), proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def _output(proc: Any) -> str:
    return proc.log.read_text(errors="replace")


def _wait_until_running(proc: Any) -> set[int]:
    """Wait until the URL answers and the banner is out; the children's pids."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"run_embedded exited early:\n{_output(proc)[-3000:]}"
        try:
            urllib.request.urlopen(proc.url + "/healthz", timeout=2)
            answered = True
        except urllib.error.HTTPError:
            answered = True  # it answers; what it says about the pipeline is not the point
        except OSError:
            answered = False
        if answered and "Leadrouter is running at" in _output(proc):
            children = _children(proc.pid)
            assert len(children) >= 5, children  # web, a worker per lane, beat
            return children
        time.sleep(0.2)  # polling interval, not a wait for a fixed duration
    pytest.fail(f"run_embedded did not come up within {START_SECONDS}s:\n{_output(proc)[-3000:]}")


def _assert_banner_last(output: str) -> None:
    """The banner comes after every worker's start-up, and names the demo logins."""
    banner = output.index("Leadrouter is running at")
    for lane in ("live", "timers", "bulk"):
        ready = output.find(f"{lane}@")
        assert 0 <= ready < banner, f"the {lane} worker's start-up came after the banner"
        assert output.find(" ready.", ready) < banner
    assert "manager@demo.leadrouter.local / demo-manager" in output[banner:]


@pytest.mark.parametrize(
    "signum", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT], ids=["SIGHUP", "SIGTERM", "SIGINT"]
)
def test_the_embedded_run_shows_its_banner_last_and_stops_every_child_on_a_signal(
    embedded: Any, signum: int
) -> None:
    children = _wait_until_running(embedded)
    _assert_banner_last(_output(embedded))
    embedded.send_signal(signum)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and (
        embedded.poll() is None or any(_alive(pid) for pid in children)
    ):
        time.sleep(0.1)  # polling interval
    assert embedded.poll() is not None, "run_embedded is still running"
    assert [pid for pid in children if _alive(pid)] == [], "children left running"
    assert embedded.returncode == 0, _output(embedded)[-3000:]
    assert f"Stopped ({signal.Signals(signum).name})" in _output(embedded)
