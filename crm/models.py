"""Buyers: companies, their locations, and their contracts (the marketplace issue fills
these in)."""

from __future__ import annotations
