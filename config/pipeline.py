"""The broker side of the pipeline's lag: which Celery queues exist and how deep each is.

Queue names come from settings (so they follow the lanes, before and after they exist):
`CELERY_TASK_DEFAULT_QUEUE` (Celery's `celery`), every queue named in `CELERY_TASK_ROUTES`,
`CELERY_TASK_QUEUES` and a `LANES` setting when present. Depth is read the way each transport
stores messages: Redis keeps a queue as a list per priority step (LLEN of each, one pipelined
round trip), the embedded filesystem broker one file per message named `<…>.<queue>.msg`
(one directory listing). Any other transport answers "unknown" rather than a guess.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings

UNKNOWN = "unknown"
Depth = int | str  # a message count, or UNKNOWN


def _names_in_route(route: Any) -> Iterable[str]:
    if isinstance(route, str):
        yield route
    elif isinstance(route, Mapping):
        queue = route.get("queue")
        if isinstance(queue, str):
            yield queue
        elif queue is not None and getattr(queue, "name", None):
            yield str(queue.name)


def queue_names() -> list[str]:
    """The Celery queues this deployment uses, default queue first, then in name order."""
    default = str(getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", None) or "celery")
    names: set[str] = set()
    routes = getattr(settings, "CELERY_TASK_ROUTES", None) or {}
    if isinstance(routes, Mapping):
        for route in routes.values():
            names.update(_names_in_route(route))
    elif isinstance(routes, list | tuple):  # a list of route mappings
        for item in routes:
            if isinstance(item, Mapping):
                for route in item.values():
                    names.update(_names_in_route(route))
    for queue in getattr(settings, "CELERY_TASK_QUEUES", None) or ():
        name = queue if isinstance(queue, str) else getattr(queue, "name", None)
        if name:
            names.add(str(name))
    lanes = getattr(settings, "LANES", None) or ()
    names.update(str(lane) for lane in (lanes.values() if isinstance(lanes, Mapping) else lanes))
    names.discard(default)
    return [default, *sorted(names)]


def queue_depths(connection: Any, names: list[str] | None = None) -> dict[str, Depth]:
    """Messages waiting in each queue on the broker behind CONNECTION (a connected kombu
    Connection), or UNKNOWN for each where the transport cannot be inspected."""
    names = queue_names() if names is None else names
    driver = getattr(connection.transport, "driver_type", "")
    if driver == "redis":
        return _redis_depths(connection, names)
    if driver == "filesystem":
        return _filesystem_depths(connection, names)
    return dict.fromkeys(names, UNKNOWN)


def _redis_depths(connection: Any, names: list[str]) -> dict[str, Depth]:
    channel = connection.default_channel
    steps = sorted(set(getattr(channel, "priority_steps", [0])))
    sep = getattr(channel, "sep", "\x06\x16")
    # kombu stores priority 0 under the queue's own name, each other step under name+sep+step
    keys = [(name, name if step == 0 else f"{name}{sep}{step}") for name in names for step in steps]
    with channel.client.pipeline(transaction=False) as pipe:
        for _, key in keys:
            pipe.llen(key)
        sizes = pipe.execute()
    depths: dict[str, Depth] = dict.fromkeys(names, 0)
    for (name, _), size in zip(keys, sizes, strict=True):
        depths[name] = int(depths[name]) + int(size or 0)
    return depths


def _filesystem_depths(connection: Any, names: list[str]) -> dict[str, Depth]:
    folder = (connection.transport_options or {}).get("data_folder_in")
    if not folder:
        return dict.fromkeys(names, UNKNOWN)
    try:
        files = os.listdir(folder)
    except OSError:
        return dict.fromkeys(names, UNKNOWN)
    counts: dict[str, int] = {}
    for filename in files:
        # `<ms>_<uuid>.<queue>.msg` (kombu.transport.filesystem)
        rest = filename.partition(".")[2]
        if rest.endswith(".msg"):
            queue = rest[: -len(".msg")]
            counts[queue] = counts.get(queue, 0) + 1
    return {name: counts.get(name, 0) for name in names}
