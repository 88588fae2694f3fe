from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distribution.configuration import config_export


class Command(BaseCommand):
    help = "Write the current setup in the format apply_config reads (stdout or --output)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", type=Path, help="Write to this file")
        parser.add_argument(
            "--format",
            choices=["yaml", "json"],
            default=None,
            help="Default: from the output file's suffix, else yaml",
        )
        parser.add_argument(
            "--only", nargs="+", metavar="SECTION", help="Only these sections (e.g. agents rules)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        output: Path | None = options["output"]
        fmt = options["format"] or ("json" if output and output.suffix == ".json" else "yaml")
        text = config_export(fmt=fmt, only=options["only"])
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{output}: {exc}") from exc
        self.stderr.write(f"Wrote {output}")
