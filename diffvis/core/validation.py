"""The checks a number passes where it enters (a command-line option, a run.json, a widget): its type and a
range a user can read in the error."""

from __future__ import annotations

import dataclasses
import math

from diffvis.errors import ConfigError

MAX_SEED = 2**32 - 1


def is_whole(value) -> bool:
    """True for an int (a bool is not a number here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real(value) -> bool:
    """True for a finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_seed(seed) -> None:
    """A seed is a whole number from 0 to MAX_SEED (2³² − 1)."""
    if not is_whole(seed) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"a seed must be a whole number from 0 to {MAX_SEED:,}, got {seed!r}")


_TYPES = {
    "int": (is_whole, "a whole number"),
    "float": (is_real, "a finite number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "str | None": (lambda v: v is None or isinstance(v, str), "a string or null"),
}


def check_field_types(config) -> None:
    """Refuse a dataclass field whose value is not of its declared type (int, float, str, bool, or str | None); an
    int is taken for a float. Catches what a JSON file can hold (64.5 for a width, "NaN" for a rate) before use."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        ok, kind = _TYPES[f.type]
        if not ok(value):
            raise ConfigError(f"{f.name} must be {kind}, got {value!r}")
