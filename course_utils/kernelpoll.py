"""A guard against a lost wake-up when papermill (nbclient) waits on the kernel.

What it fixes: papermill (through nbclient) waits for a cell's reply and its outputs with
``await socket.poll(None)`` on jupyter_client's asyncio channels, a poll without a
timeout. Now and then, most often on a loaded CPU and in cells that open widgets (many comm
messages at once), it is never woken: the kernel has finished the cell and is idle, and
papermill waits for ever. Seen here in lesson 03's spectrum explorer cell (2026-12-07);
the same hang is reported upstream (jupyter/nbclient issue 312, jupyter/nbconvert issues
1921, 2003 and 2029), still open.

:func:`install` replaces ``AsyncZMQSocketChannel.get_msg`` with one that polls in slices
of :data:`SLICE_S` seconds until a message comes (or the caller's own timeout ends, which
is kept as it was); after a slice that ended without one it also asks the socket itself
(``zmq.EVENTS``) and reads a message that is waiting (:data:`MISSED` counts those).
Measured on this 2-core machine beside two training runs, a notebook of 40 cells that each
build lesson 03's explorer (benchmarks/kernelpoll_hang.py): without it papermill hung in 3
tries of 4 (at cells 6, 6 and 17; killed after 180-600 s), the fourth took 59 s; with it
4 tries of 4 ran every cell, in 49-59 s, with MISSED at 0 each time: the sliced polls were
woken in time, so what the slices change is the untimed poll itself. The tests, the runbook, the batch runner and the
sandbox's grading install it before they run a notebook; ``python -m course_utils.kernelpoll
ARGS`` is papermill's command line with it.
"""

from __future__ import annotations

import time
from typing import Any, Optional

__all__ = ["install", "installed", "main", "MISSED", "SLICE_S"]

SLICE_S = 0.5            # how long one poll slice waits before the socket is asked directly
MISSED = {"count": 0}    # slices that ended without a wake-up while a message was waiting
_ORIGINAL: dict = {}


async def _get_msg(self, timeout: Optional[float] = None) -> dict[str, Any]:
    """jupyter_client's get_msg, polled in slices (see the module docstring)."""
    import zmq
    from queue import Empty

    assert self.socket is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        wait = SLICE_S if left is None else min(SLICE_S, left)
        if await self.socket.poll(int(wait * 1000)):
            return await self._recv()
        if self.socket.get(zmq.EVENTS) & zmq.POLLIN:   # there, but the poll was not woken
            MISSED["count"] += 1
            return await self._recv()
        if left is not None and left <= wait:
            raise Empty


def install() -> bool:
    """Put the sliced get_msg in place (once per process); returns True when it did now."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    if "get_msg" in _ORIGINAL:
        return False
    _ORIGINAL["get_msg"] = AsyncZMQSocketChannel.get_msg
    AsyncZMQSocketChannel.get_msg = _get_msg
    return True


def installed() -> bool:
    from jupyter_client.channels import AsyncZMQSocketChannel

    return AsyncZMQSocketChannel.get_msg is _get_msg


def main(argv=None) -> int:
    """papermill's command line, with the guard installed first."""
    import sys

    from papermill.cli import papermill

    install()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        papermill.main(args=args, prog_name="python -m course_utils.kernelpoll", standalone_mode=False)
    except SystemExit as e:           # click's own exits (--help, usage errors)
        return int(e.code or 0)
    except Exception as e:            # what papermill's CLI would print, and a failing status
        from click import ClickException

        if isinstance(e, ClickException):
            e.show()
            return e.exit_code
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
