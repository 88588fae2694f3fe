"""The database door: every vendor-specific statement, each beside its portable twin.

Each public function switches once on `connection.vendor`: the PostgreSQL statement
(`_pg`), else the portable ORM twin (`_portable`); tests/db proves each pair equal on
PostgreSQL. `connection.vendor` appears nowhere else (migrations aside).
"""
