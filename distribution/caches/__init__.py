"""Per-process caches."""
