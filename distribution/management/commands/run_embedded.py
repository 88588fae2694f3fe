from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

DEMO_LOGINS = [
    ("manager (admin)", "manager@demo.leadrouter.local", "demo-manager"),
    ("agent", "ava@demo.leadrouter.local", "demo-agent"),
    ("agent", "ben@demo.leadrouter.local", "demo-agent"),
]


class Command(BaseCommand):
    help = (
        "Run the web server, a Celery worker and Celery Beat together (the embedded "
        "setup of `make run`); Ctrl-C stops all three."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default=os.environ.get("ADDR", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        url = f"http://{options['addr']}:{options['port']}"
        commands = {
            "web": [
                python,
                "manage.py",
                "runserver",
                "--noreload",
                f"{options['addr']}:{options['port']}",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--loglevel=INFO",
                "--pool=threads",
                "--concurrency=2",
                "--without-gossip",
                "--without-mingle",
                "--hostname=embedded@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel=INFO",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }
        procs: dict[str, subprocess.Popen[bytes]] = {}
        for name, command in commands.items():
            procs[name] = subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True)
        self.stdout.write(self.style.SUCCESS(f"\nLeadrouter is running at {url}/"))
        self.stdout.write(f"  admin:      {url}/admin/")
        self.stdout.write(f"  agents:     {url}/agent/")
        self.stdout.write(f"  API docs:   {url}/api/v1/docs")
        self.stdout.write(f"  health:     {url}/healthz")
        self.stdout.write("  demo logins:")
        for role, email, password in DEMO_LOGINS:
            self.stdout.write(f"    {role:16} {email} / {password}")
        self.stdout.write(
            "  post a lead: curl -X POST " + url + "/api/v1/leads "
            "-H 'Authorization: Bearer demo-source-web-form' "
            "-H 'Content-Type: application/json' "
            '-d \'{"first_name": "Test", "email": "test@example.com"}\''
        )
        self.stdout.write("Press Ctrl-C to stop the web server, the worker and Beat.\n")
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        failed = None
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    failed = f"the {name} process exited with {proc.returncode}"
                    stopping = True
            time.sleep(0.5)
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs.values():
            try:
                proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if failed:
            raise CommandError(f"{failed}; stopped the others.")
        self.stdout.write("Stopped.")
