"""How a setting given as text (YAML, a flag, a Tune sample) becomes a value: its kind, its
allowed range, and the one conversion rule every entry point uses."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Range:
    """The valid values of one numeric field: ``low``..``high``, each end closed unless open."""

    low: float
    high: float
    open_low: bool = False
    open_high: bool = False
    note: str = ""  # what a special value means, e.g. "0 = off"

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below

    def __str__(self) -> str:
        ends = ("(" if self.open_low else "[", ")" if self.open_high else "]")
        text = f"{ends[0]}{_number(self.low)}, {_number(self.high)}{ends[1]}"
        return f"{text} ({self.note})" if self.note else text


def _number(value: float) -> str:
    """1e-05, 0.5, 65,536: short, and big bounds readable."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def has_control_character(text: str) -> bool:
    """Whether ``text`` holds a C0/C1 control character (NUL, newline, tab, escape, ...): never
    part of a name or a path a user meant to type."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text)


# What each kind of value is called in messages.
KIND_NAMES = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "text"}
_TEXT_TYPES = (str, int, float, np.integer, np.floating, datetime.date)  # date: YAML's 2024-01-31


def convert(value: Any, kind: str) -> Any:
    """``value`` (from YAML, a CLI string or a Tune sample) as a ``kind`` of ``KIND_NAMES``, the
    one rule for every setting of a run or a sweep; ``ValueError`` if it is not one.

    Numeric strings are numbers ("7" for an integer; "1e-9" for a number: YAML 1.1 reads 1e-9
    without a dot as a string); a whole float is an integer (3.0); booleans are never numbers
    and numbers never booleans; lists and mappings are never a single value; ``None`` is not a
    value (callers decide what empty means)."""
    if value is None:
        raise ValueError(value)
    if kind == "bool":
        return _to_bool(value)
    # YAML ``k: true`` is a bool, and Python's bool is an int: refuse, never read it as 1.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _TEXT_TYPES):
        raise ValueError(value)
    if kind == "int":
        if isinstance(value, (float, np.floating)) and not float(value).is_integer():
            raise ValueError(value)
        if isinstance(value, str) and not value.strip().lstrip("-+").isdigit():
            raise ValueError(value)
        if isinstance(value, datetime.date):
            raise ValueError(value)
        return int(value)
    if kind == "float":
        if isinstance(value, datetime.date):
            raise ValueError(value)
        return float(value)  # "inf" and "nan" parse; validate() rejects them with a range
    return str(value)


def _to_bool(value: Any) -> bool:
    """A real boolean, or its spelling in a string; 1/0 and other numbers are refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
    raise ValueError(value)
