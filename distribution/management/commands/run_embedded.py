"""`make run`: the web server, one Celery worker per lane and Celery Beat, supervised together.

Each child runs in its own process group (a Ctrl-C or a closed terminal reaches only this
supervisor); on SIGINT, SIGTERM or SIGHUP the supervisor terminates every group and waits for
it, so nothing is left running. The children's output is relayed through the supervisor, and
the banner (URL, demo logins) is printed once the web server answers, the workers are ready
and the first burst of output (the demo's e-mails) has passed, so it is the last thing shown.
The workers start one after the other (the filesystem broker's bindings: _declare_queues).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEMO_LOGINS = [
    ("admin", "admin@demo.leadrouter.local", "demo-admin"),
    ("manager", "manager@demo.leadrouter.local", "demo-manager"),
    ("agent", "ava@demo.leadrouter.local", "demo-agent"),
    ("agent", "ben@demo.leadrouter.local", "demo-agent"),
    ("buyer", "bea@demo.leadrouter.local", "demo-buyer"),
]
# One worker per lane (config/settings/base.py LANES): a backlog in `bulk` never delays a
# live lead or a timer. The bulk worker also drains the default queue (unrouted tasks).
WORKERS = {
    "worker-live": ("live", 2),
    "worker-timers": ("timers", 1),
    "worker-bulk": (f"bulk,{settings.CELERY_TASK_DEFAULT_QUEUE}", 1),
}
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STARTUP_SECONDS = 30  # the banner waits at most this long for the children to be ready
QUIET_SECONDS = 1.5  # ... and for a pause in the workers' and Beat's output
GRACE_SECONDS = 10  # a child still running this long after SIGTERM is killed


class _Relay:
    """Copies a child's output to ours, line by line, and notes what it has seen."""

    def __init__(self, out: Any) -> None:  # a text stream (a command's OutputWrapper)
        self.out = out
        self.lock = threading.Lock()
        self.last_output = time.monotonic()
        self.ready: set[str] = set()
        self.threads: list[threading.Thread] = []

    def follow(self, name: str, stream: IO[bytes]) -> None:
        thread = threading.Thread(target=self._copy, args=(name, stream), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _copy(self, name: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            if name != "web":  # requests (access log) are not the start-up burst
                self.last_output = time.monotonic()
            if name.startswith("worker") and " ready." in line:
                self.ready.add(name)
            self.write(line)
        stream.close()

    def write(self, text: str) -> None:
        with self.lock:
            try:
                self.out.write(text)
                self.out.flush()
            except (OSError, ValueError):  # the terminal is gone (SIGHUP): keep going quietly
                pass


def _answers(addr: str, port: int) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=0.5):
            return True
    except OSError:
        return False


def _declare_queues() -> None:
    """Declare every lane's queue once, before any worker starts. The filesystem broker keeps
    an exchange's bindings in a file that the first declaration creates; two processes
    creating it at once can leave one reading it empty (a worker then dies at start-up). For
    the same reason the workers start one after the other (each binds its own remote-control
    queue to a shared exchange)."""
    from config.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in app.amqp.queues.values():
            queue.bind(channel).declare()


def _terminate(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every child's process group, wait for them, SIGKILL what outlives the grace."""
    for proc in procs.values():
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for proc in procs.values():
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Command(BaseCommand):
    help = (
        "Run the web server, a Celery worker per lane and Celery Beat together (the embedded "
        "setup of `make run`); Ctrl-C (or SIGTERM, or closing the terminal) stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default=os.environ.get("ADDR", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def commands(self, addr: str, port: int) -> dict[str, list[str]]:
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "config"]
        commands = {"web": [python, "manage.py", "runserver", "--noreload", f"{addr}:{port}"]}
        for name, (queues, concurrency) in WORKERS.items():
            commands[name] = [
                *celery,
                "worker",
                "--loglevel=INFO",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--queues={queues}",
                "--without-gossip",
                "--without-mingle",
                f"--hostname={name.removeprefix('worker-')}@%h",
            ]
        commands["beat"] = [
            *celery,
            "beat",
            "--loglevel=INFO",
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--schedule",
            str(settings.VAR_DIR / "celerybeat-schedule"),
        ]
        return commands

    def handle(self, *args: Any, **options: Any) -> None:
        addr, port = options["addr"], options["port"]
        relay = _Relay(self.stdout)
        stopping = threading.Event()
        received: list[str] = []

        def stop(signum: int, _frame: Any) -> None:
            received.append(signal.Signals(signum).name)
            stopping.set()

        for signum in STOP_SIGNALS:
            signal.signal(signum, stop)
        procs: dict[str, subprocess.Popen[bytes]] = {}
        failed = None
        try:
            _declare_queues()
            for name, command in self.commands(addr, port).items():
                if stopping.is_set():
                    break
                proc = subprocess.Popen(
                    command,
                    cwd=settings.BASE_DIR,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: signals come from us
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
                procs[name] = proc
                assert proc.stdout is not None
                relay.follow(name, proc.stdout)
                if name.startswith("worker"):  # one at a time: see _declare_queues
                    deadline = time.monotonic() + STARTUP_SECONDS
                    while (
                        name not in relay.ready
                        and proc.poll() is None
                        and time.monotonic() < deadline
                    ):
                        if stopping.wait(0.1):
                            break
            banner_shown = False
            started = time.monotonic()
            while not stopping.is_set():
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        failed = f"the {name} process exited with {proc.returncode}"
                        stopping.set()
                if not banner_shown and not stopping.is_set():
                    ready = relay.ready >= set(WORKERS) and _answers(addr, port)
                    quiet = time.monotonic() - relay.last_output >= QUIET_SECONDS
                    if (ready and quiet) or time.monotonic() - started > STARTUP_SECONDS:
                        relay.write(self.banner(addr, port))
                        banner_shown = True
                stopping.wait(0.2)
        finally:
            _terminate(procs)
            for thread in relay.threads:
                thread.join(timeout=2)
        if failed:
            raise CommandError(f"{failed}; stopped the others.")
        relay.write(f"Stopped ({', '.join(received) or 'done'}).\n")

    def banner(self, addr: str, port: int) -> str:
        url = f"http://{addr}:{port}"
        lines = [
            self.style.SUCCESS(f"\nLeadrouter is running at {url}/"),
            f"  admin:      {url}/admin/",
            f"  agents:     {url}/agent/",
            f"  API docs:   {url}/api/v1/docs",
            f"  health:     {url}/healthz",
            "  demo logins:",
            *(f"    {role:16} {email} / {password}" for role, email, password in DEMO_LOGINS),
            "  post a lead: curl -X POST " + url + "/api/v1/leads "
            "-H 'Authorization: Bearer demo-source-web-form' "
            "-H 'Content-Type: application/json' "
            '-d \'{"first_name": "Test", "email": "test@example.com"}\'',
            "Press Ctrl-C to stop the web server, the workers and Beat.\n",
        ]
        return "\n".join(lines) + "\n"
