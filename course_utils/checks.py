"""Checks: of settings (one copy of each, for every module that takes settings), and of
the answers to the lessons' graded exercises.

A bad value raises ``error(param, value, allowed)``, by default :class:`BadValue`, a
``ValueError`` whose message reads ``<param>=<value!r> is not allowed; allowed: <what>``.
A module that wants its own exception passes a subclass (``train.ConfigError``,
``nb.ParameterError``), so that its callers can catch that one. This module imports
nothing of the kit: every layer may use it (data, layers, models, the engine, widgets).

An exercise's check cell scores its cases with :class:`Cases`: each case is worth its
share of the cell's points, and the cell's last line, ``cases.score()``, shows the points
earned as the cell's result, which nbgrader reads as partial credit
(``nbgrader.utils.determine_grade``). :func:`formula_only` switches off PyTorch's
convolutions, pooling and every module's forward while an answer that must come from a
formula runs. Both import torch only when used.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Tuple, Type

__all__ = ["BadValue", "Cases", "Forbidden", "boolean", "divides", "formula_only", "int_pair",
           "integer", "number", "one_of", "switched_off"]


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



# --------------------------------------------------------------------------- exercise checks

@dataclass
class _Case:
    label: str
    weight: float
    ok: bool
    message: str = ""
    error: BaseException | None = None


def _short(value, limit: int = 40) -> str:
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"<{type(value).__name__} of shape {tuple(value.shape)}>"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _scalar(value):
    """A 0-d tensor or array, or a numpy number, as the Python number it holds."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def _differs(got, expected, tol: float) -> str:
    """Why `got` is not `expected` ("" if it is): numbers (an int must be an int), strings
    and None exactly, floats within `tol`, sequences item by item, arrays (anything with a
    shape) by shape and then within `tol`."""
    if hasattr(expected, "shape"):
        import numpy as np
        if not hasattr(got, "shape"):
            return f"should be an array of shape {tuple(expected.shape)}, got {_short(got)}"
        g = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=np.float64)
        e = np.asarray(expected.detach().cpu() if hasattr(expected, "detach") else expected,
                       dtype=np.float64)
        if g.shape != e.shape:
            return f"should have shape {e.shape}, got shape {g.shape}"
        gap = float(np.max(np.abs(g - e))) if e.size else 0.0
        if not gap <= tol:
            return f"is off by up to {gap:.4g} (tolerance {tol:g})"
        return ""
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"should be a tuple of {len(expected)} items, got {_short(got)}"
        if len(got) != len(expected):
            return f"should have {len(expected)} items, got {len(got)}: {_short(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            why = _differs(g, e, tol)
            if why:
                return f"item {i}: {why}"
        return ""
    got = _scalar(got)
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return "" if (type(got) is type(expected) and got == expected) else \
            f"should be {expected!r}, got {_short(got)}"
    if _is_int(expected):
        if not _is_int(got):
            return f"should be the whole number {expected} (an int), got {_short(got)}"
        return "" if got == expected else f"should be {expected}, got {got}"
    if isinstance(expected, numbers.Real):
        if not isinstance(got, numbers.Real) or isinstance(got, bool):
            return f"should be a number close to {expected:g}, got {_short(got)}"
        return "" if abs(float(got) - expected) <= tol else f"should be {expected:g}, got {got:g}"
    return "" if got == expected else f"should be {_short(expected)}, got {_short(got)}"


class _TooSlow(BaseException):
    """A case ran past its time limit (BaseException: an answer's `except Exception` does
    not swallow it)."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise _TooSlow in the block after `seconds` (SIGALRM, on the main thread of a system
    that has it; elsewhere no limit). An alarm already set that would ring sooner is left
    alone; one that rings later is set again, less the time spent, on leaving."""
    import signal
    import threading
    import time

    if (not seconds or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_delay and outer_delay <= seconds:
        yield                                  # the outer alarm rings first: keep it
        return

    def ring(*_):
        raise _TooSlow()

    previous = signal.signal(signal.SIGALRM, ring)
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:
            left = max(outer_delay - (time.monotonic() - start), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


class Cases:
    """The cases of one exercise's check cell, each worth its share of the cell's points.

        cases = Cases("exercise 2", points=3)
        cases.call(receptive_field, [("conv", 3, 1, 1)], expect=3)
        cases.call(...)
        cases.score()          # the cell's last line: its result is the points earned

    A case whose answer raises, returns something else or runs past `time_limit` seconds
    (so that one slow case does not use up the grader's time) fails; NotImplementedError (an
    answer not written yet) stops the cell at once. `score()` returns every point when all
    cases pass; raises when none does (the first case's error, or an AssertionError saying
    what it should have been: nbgrader then gives 0 and the grade table shows why); and
    otherwise prints one line per failed case and returns the points times the share of
    the cases' weights that passed, which nbgrader reads as partial credit. The check
    cell's `points` (its nbgrader metadata) must be the points given here."""

    def __init__(self, name: str, points: float, *, time_limit: float = 5.0):
        number("points", points, 0, low_open=True)
        number("time_limit", time_limit, 0, low_open=True)
        self.name, self.points, self.time_limit = name, float(points), float(time_limit)
        self.cases: list[_Case] = []

    def call(self, fn: Callable, *args, expect, tol: float = 0.0, weight: float = 1.0,
             label: str | None = None, **kwargs) -> bool:
        """One case: fn(*args, **kwargs) must give `expect` (see _differs; `tol` for
        floats and arrays) within the time limit. Returns whether it did."""
        number("weight", weight, 0, low_open=True)
        if label is None:
            shown = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
            label = f"{getattr(fn, '__name__', 'answer')}({', '.join(shown)})"
        try:
            with _time_limit(self.time_limit):
                got = fn(*args, **kwargs)
        except NotImplementedError:
            raise
        except _TooSlow:
            self.cases.append(_Case(label, weight, False,
                                    f"took longer than {self.time_limit:g} s (stopped)"))
            return False
        except Exception as e:  # noqa: BLE001 - any error of the answer fails this case
            self.cases.append(_Case(label, weight, False, f"raised {type(e).__name__}: {e}", e))
            return False
        why = _differs(got, expect, tol)
        self.cases.append(_Case(label, weight, not why, why))
        return not why

    def score(self) -> float:
        if not self.cases:
            raise AssertionError(f"{self.name}: the check ran no case")
        failed = [c for c in self.cases if not c.ok]
        n = len(self.cases)
        if not failed:
            print(f"{self.name}: all {n} cases pass")
            return self.points
        earned = sum(c.weight for c in self.cases if c.ok)
        if earned == 0:
            first = failed[0]
            if first.error is not None:
                raise first.error
            more = f" (and the other {n - 1} cases fail too)" if n > 1 else ""
            raise AssertionError(f"{first.label} {first.message}{more}")
        for c in failed:
            print(f"failed: {c.label} {c.message}")
        points = round(self.points * earned / sum(c.weight for c in self.cases), 4)
        print(f"{self.name}: {n - len(failed)} of {n} cases pass: {points:g} of "
              f"{self.points:g} points")
        return points


class Forbidden(RuntimeError):
    """Raised by what formula_only switched off."""


_FORBIDDEN_NAMES = re.compile(r"conv|pool|fold|interpolate|upsample")


@contextlib.contextmanager
def formula_only(reason: str = "this exercise asks for a formula", *, build: bool = True):
    """While the block runs, PyTorch cannot compute a convolution, a pooling, an unfold or
    a module's forward: every function of torch and torch.nn.functional whose name holds
    conv, pool, fold, interpolate or upsample, Tensor.unfold and nn.Module.__call__ raise
    Forbidden, naming themselves and `reason`, also under a name an answer imported before
the block. With build=False no module can even be
    constructed (nn.Module.__init__ raises too: a model built on the meta device and
    counted is refused). Everything is put back on leaving."""
    import torch
    import torch.nn.functional as F

    missing = object()
    saved = []

    class Refuse(torch.overrides.TorchFunctionMode):
        """PyTorch hands every call of its functions to this mode, whatever the name it
        was imported under (from torch.nn.functional import conv2d)."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if _FORBIDDEN_NAMES.search(name.lower()):
                raise Forbidden(f"{name} is switched off in this check: {reason}")
            return func(*args, **(kwargs or {}))

    def switch_off(owner, name, shown):
        def forbidden(*args, **kwargs):
            raise Forbidden(f"{shown} is switched off in this check: {reason}")
        before = owner.__dict__.get(name, missing) if isinstance(owner, type) else getattr(owner, name)
        saved.append((owner, name, before))
        setattr(owner, name, forbidden)

    try:
        for module, prefix in ((torch, "torch"), (F, "torch.nn.functional")):
            for name in sorted(vars(module)):
                obj = getattr(module, name, None)
                if (_FORBIDDEN_NAMES.search(name.lower()) and callable(obj)
                        and not isinstance(obj, type) and not type(obj).__name__ == "module"):
                    switch_off(module, name, f"{prefix}.{name}")
        switch_off(torch.Tensor, "unfold", "Tensor.unfold")
        switch_off(torch.nn.Module, "__call__", "running a torch.nn module")
        if not build:
            switch_off(torch.nn.Module, "__init__", "constructing a torch.nn module")
        with Refuse():      # the same functions under a name imported before the block
            yield
    finally:
        for owner, name, before in reversed(saved):
            if before is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, before)


@contextlib.contextmanager
def switched_off(module, reason: str):
    """While the block runs, every function defined in `module` (a module of the kit that
    would solve the exercise, e.g. course_utils.stats) raises Forbidden naming the module and
    `reason`, also where an answer took it by name before the block (the functions' code is
    swapped, not the names). Everything is put back on leaving."""
    message = f"{module.__name__} is switched off in this check: {reason}"
    ns: dict = {}
    # no free variables, so the code fits any plain function; Forbidden found by import
    exec("def forbidden(*args, **kwargs):\n"
         "    raise __import__('course_utils.checks', fromlist=['Forbidden']).Forbidden("
         f"{message!r})\n", ns)
    code = ns["forbidden"].__code__
    saved = {f: f.__code__ for f in vars(module).values()
             if getattr(f, "__module__", None) == module.__name__
             and hasattr(f, "__code__") and not f.__code__.co_freevars}
    try:
        for f in saved:
            f.__code__ = code
        yield
    finally:
        for f, code_before in saved.items():
            f.__code__ = code_before
