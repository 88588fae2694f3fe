"""The database door: every vendor-specific statement, each beside its portable twin."""
