"""Configuration as code: `apply_config` / `export_config` over registered sections.

Each top-level key of the file is a `Section` (agents, sources, campaigns, schedules, pools,
rules, companies, contracts, workflows, automations, buyers). Sections register themselves in
`SECTIONS`; this package imports the modules that define them.
"""

from __future__ import annotations

from .base import SECTIONS, ConfigError, Report, config_apply, config_export, load_text

__all__ = ["SECTIONS", "ConfigError", "Report", "config_apply", "config_export", "load_text"]
