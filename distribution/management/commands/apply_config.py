from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.configuration import ConfigError, config_apply, load_text


class Command(BaseCommand):
    help = (
        "Upsert a routing/marketplace setup from a YAML or JSON file by natural keys, "
        "in one transaction; prints what was created or changed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="YAML or JSON file (- for stdin)")
        parser.add_argument(
            "--dry-run", action="store_true", help="Validate and report, write nothing"
        )
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Also remove or deactivate what the file does not name "
            "(in the sections it contains)",
        )
        parser.add_argument("-q", "--quiet", action="store_true", help="Only the summary")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if str(path) == "-":
            import sys

            text = sys.stdin.read()
        else:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            text = path.read_text(encoding="utf-8")
        try:
            report = config_apply(
                load_text(text), dry_run=options["dry_run"], prune=options["prune"]
            )
        except ConfigError as exc:
            raise CommandError(
                f"{path}: {len(exc.messages)} error(s), nothing applied:\n"
                + "\n".join(f"  {m}" for m in exc.messages)
            ) from exc
        if not options["quiet"]:
            for line in report.details:
                self.stdout.write(line)
        for line in report.lines():
            self.stdout.write(line)
