"""Atomic file writes: readers see the old file or the new one, never a part of one.

Every file the kit writes for later (run folders, caches, the sample packs, notebooks'
headlines, course reports, student versions, grades) goes through :func:`atomic_open`:
a temp file in the same folder (``.<name>.<pid>.tmp``, unique per process), fsync, then
one rename; a process killed half-way leaves the old file as it was. This module
imports nothing of the kit: every layer may use it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Iterator

__all__ = ["TEMP_GLOB", "atomic_open", "atomic_write_bytes", "atomic_write_json",
           "atomic_write_text", "remove_stale_temp_files"]

TEMP_GLOB = ".*.tmp"  # what atomic_open's temp files look like


def _write_chunks(f, data: bytes, chunk: int = 1 << 20) -> None:
    for i in range(0, len(data), chunk):
        f.write(data[i:i + chunk])


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", *, mkdir: bool = False, **open_kw) -> Iterator[IO]:
    """``with atomic_open(path, "w", encoding="utf-8") as f: ...``: the file appears under
    `path` when the block ends without an error, and not at all otherwise. `mode` is "wb"
    or "w" (text, give an encoding); `mkdir` creates the folder first."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode={mode!r} is not allowed; allowed: 'w', 'wb'")
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **open_kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path, data: bytes, *, mkdir: bool = False) -> None:
    with atomic_open(path, "wb", mkdir=mkdir) as f:
        _write_chunks(f, data)


def atomic_write_text(path, text: str, *, mkdir: bool = False) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mkdir=mkdir)


def atomic_write_json(path, obj, *, indent: int = 2, default=None, mkdir: bool = False) -> None:
    """`obj` as JSON (a final newline), atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, default=default) + "\n", mkdir=mkdir)


def remove_stale_temp_files(folder) -> None:
    """Delete the temp files a killed writer left in `folder` (never a finished file)."""
    for p in Path(folder).glob(TEMP_GLOB):
        with contextlib.suppress(OSError):
            p.unlink()
