"""Helpers for the database door's tests: run a twin and read what it did, rolled back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Model

T = TypeVar("T")


def rolled_back(run: Callable[[], T]) -> T:
    """RUN's result inside a transaction that is then rolled back, so that each twin starts
    from the same rows."""
    with transaction.atomic():
        result = run()
        transaction.set_rollback(True)
    return result


def row_values(model: type[Model], *, without: tuple[str, ...] = ("id",)) -> list[dict[str, Any]]:
    """Every row of MODEL as its column values (WITHOUT those), in a fixed order."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname not in without]
    rows = list(model.objects.values(*names))
    return sorted(rows, key=repr)


def instance_values(row: Model) -> dict[str, Any]:
    """A model instance's loaded column values (no state, no caches)."""
    return {k: v for k, v in row.__dict__.items() if not k.startswith("_")}
