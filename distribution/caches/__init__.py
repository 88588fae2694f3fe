"""Per-process caches of what the engine reads, each behind what invalidates it."""
