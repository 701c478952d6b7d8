"""Time to grade a class: N copies of lesson 01's solved student version, graded in the
bubblewrap sandbox and without it (UNSAFE), one after the other (prints; not a test).

Each copy is lessons/01_convolution/01_convolution.ipynb with the instructor's answers
filled into its answer cells (as tests/test_classroom.py builds a solved submission), in
its own folder (student01/01_convolution.ipynb, ...). Both runs grade the same folder with
classroom.grade and the default limits; the table has, per run, the wall time of the
whole grade() call (gradebook, sandbox check and CSV included), the sum and the median,
min and max of the per-submission seconds (kernel start to the last cell), and whether
every copy got full marks. On a machine shared with other work, run it twice, swapping
the order (--order unsafe,sandbox), and compare the medians.

Usage:
    .venv/bin/python benchmarks/grading.py                      # 30 copies, sandbox first
    .venv/bin/python benchmarks/grading.py --copies 5 --order unsafe,sandbox --timeout 300
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from course_utils import classroom, sandbox  # noqa: E402

LESSON = "01_convolution"


def solved_student_version() -> nbformat.NotebookNode:
    """The student version with the instructor's answers in its answer cells."""
    source = nbformat.read(ROOT / "notebooks" / f"{LESSON}.ipynb", as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if (c.metadata.get("nbgrader") or {}).get("solution")}
    nb = nbformat.read(ROOT / "lessons" / LESSON / f"{LESSON}.ipynb", as_version=4)
    for c in nb.cells:
        gid = (c.metadata.get("nbgrader") or {}).get("grade_id")
        if gid in answers:
            c.source = answers[gid]
    return nb


def run(kind: str, folder: Path, timeout: float) -> dict:
    t0 = time.perf_counter()
    results = classroom.grade(folder, out=folder.parent / f"grades-{kind}.csv", timeout=timeout,
                              unsafe=kind == "unsafe", log=lambda m: None)
    wall = time.perf_counter() - t0
    secs = [r.seconds for r in results]
    return {"kind": kind, "wall": wall, "sum": sum(secs), "median": statistics.median(secs),
            "min": min(secs), "max": max(secs),
            "full": sum(r.total == r.max_total > 0 for r in results), "n": len(results)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=classroom.DEFAULT_TIMEOUT)
    ap.add_argument("--order", default="sandbox,unsafe",
                    help="comma-separated: sandbox, unsafe (default: %(default)s)")
    a = ap.parse_args(argv)
    order = [k.strip() for k in a.order.split(",") if k.strip()]
    bad = [k for k in order if k not in ("sandbox", "unsafe")]
    if a.copies < 1 or bad or not order:
        ap.error(f"--copies must be >= 1 (got {a.copies}) and --order a list of sandbox, "
                 f"unsafe (got {a.order!r})")
    if "sandbox" in order:
        sandbox.make()   # refuses here, with the reason, rather than after the other run
    print(f"# {a.copies} copies of {LESSON} (solved), {platform.node()}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d %H:%M')}")
    with tempfile.TemporaryDirectory(prefix="grading-bench-") as tmp:
        folder = Path(tmp) / "submissions"
        nb = solved_student_version()
        for i in range(1, a.copies + 1):
            (folder / f"student{i:02d}").mkdir(parents=True)
            nbformat.write(nb, folder / f"student{i:02d}" / f"{LESSON}.ipynb")
        rows = []
        for kind in order:
            rows.append(run(kind, folder, a.timeout))
            r = rows[-1]
            print(f"{r['kind']:>8}: wall {r['wall']:7.1f} s, per submission sum {r['sum']:7.1f} s, "
                  f"median {r['median']:5.1f} s (min {r['min']:.1f}, max {r['max']:.1f}), "
                  f"full marks {r['full']}/{r['n']}, load {os.getloadavg()[0]:.2f}", flush=True)
    if len(rows) == 2:
        s, u = sorted(rows, key=lambda r: r["kind"] != "sandbox")
        print(f"sandbox / unsafe: wall {s['wall'] / u['wall']:.3f}, median per submission "
              f"{s['median'] / u['median']:.3f} ({s['median'] - u['median']:+.2f} s)")
    return 0 if all(r["full"] == r["n"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
