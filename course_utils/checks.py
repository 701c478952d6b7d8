"""Argument checks: one copy of each, for every module that takes settings.

A bad value raises ``error(param, value, allowed)``, by default :class:`BadValue`, a
``ValueError`` whose message reads ``<param>=<value!r> is not allowed; allowed: <what>``.
A module that wants its own exception passes a subclass (``train.ConfigError``,
``nb.ParameterError``), so that its callers can catch that one. This module imports
nothing of the kit: every layer may use it (data, layers, models, the engine, widgets).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Sequence, Tuple, Type

__all__ = ["BadValue", "boolean", "divides", "int_pair", "integer", "number", "one_of"]


class BadValue(ValueError):
    """A setting has a value that is not allowed; ``param``, ``value`` and ``allowed`` say
    which, what it was and what would be."""

    prefix = ""  # e.g. "parameter " for notebook parameters

    def __init__(self, param: str, value: Any, allowed: str, *, reason: str = "is not allowed"):
        self.param, self.value, self.allowed = param, value, allowed
        super().__init__(f"{self.prefix}{param}={value!r} {reason}; {allowed}")


def one_of(name: str, value, allowed: Sequence, *, error: Type[BadValue] = BadValue,
           show: Callable[[Any], str] = str) -> None:
    """`value` must be one of `allowed` (listed with `show`: str, or repr to quote them)."""
    if value not in allowed:
        raise error(name, value, "allowed: " + ", ".join(show(a) for a in allowed))


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(name: str, value, low: int = 1, *, error: Type[BadValue] = BadValue) -> None:
    """`value` must be an integer (not a bool) >= `low`."""
    if not _is_int(value) or value < low:
        raise error(name, value, f"allowed: an integer >= {low}")


def number(name: str, value, low: float = -math.inf, high: float = math.inf, *,
           low_open: bool = False, high_open: bool = False, allowed: str | None = None,
           error: Type[BadValue] = BadValue) -> None:
    """`value` must be a finite real number (not a bool) in the interval from `low` to
    `high`, each end closed unless `low_open` / `high_open`."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (math.isfinite(v) and (v > low if low_open else v >= low)
              and (v < high if high_open else v <= high))
    if not ok:
        if allowed is None:
            allowed = (f"a number in {'(' if low_open else '['}{low:g}, {high:g}"
                       f"{')' if high_open else ']'}")
        raise error(name, value, f"allowed: {allowed}")


def boolean(name: str, value, *, error: Type[BadValue] = BadValue) -> None:
    if not isinstance(value, bool):
        raise error(name, value, "allowed: True or False")


def divides(name: str, value, target_name: str, target: int, *,
            error: Type[BadValue] = BadValue) -> None:
    """`value` (the parameter being checked) must be a positive divisor of `target`."""
    integer(name, value, 1, error=error)
    if target % value:
        options = [d for d in range(1, target + 1) if target % d == 0]
        raise error(name, value, f"allowed: a divisor of {target_name}, one of {options}",
                    reason=f"does not divide {target_name}={target}")


def int_pair(name: str, value, *, error: Type[BadValue] = BadValue) -> Tuple[int, int]:
    """An int or a pair of ints, as the pair (e.g. a kernel size or a stride)."""
    if _is_int(value):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        return int(value[0]), int(value[1])
    raise error(name, value, "allowed: an int or a pair of ints")
