"""Loaders of engine snapshots: reads for the engine (not for pages: see selectors)."""
