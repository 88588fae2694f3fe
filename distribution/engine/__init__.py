"""Pure decision engine: no Django, no clock, no I/O. Dataclasses in, decisions out."""
