"""Papermill's lost wake-up, with and without course_utils.kernelpoll (not a test).

Writes a notebook of N cells that each build lesson 03's spectrum explorer (the cell where
papermill was seen to hang), then runs it under papermill in a fresh process per try: first
with papermill's own wait, then with the guard installed. A try that has not finished after
--timeout seconds is counted as hung and killed. The hang is more likely on a busy CPU;
the script prints the load average.

    .venv/bin/python benchmarks/kernelpoll_hang.py --cells 40 --tries 2 --timeout 300

Measured 2026-12-07 on this 2-core EPYC beside two training runs (load average 2.4-2.9):
plain papermill hung in 3 tries of 4 (at cells 6, 6 and 17), the fourth finished in 59 s;
with the guard 4 tries of 4 finished, in 49-59 s (the last run of this command: plain 1 of
2 hung, guard 2 of 2 finished).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RUN = """
import sys, papermill as pm
from course_utils import kernelpoll
if sys.argv[3] == "guard":
    kernelpoll.install()
pm.execute_notebook(sys.argv[1], sys.argv[2], kernel_name="python3", progress_bar=False,
                    cwd=sys.argv[4])
print("missed wake-ups read through zmq.EVENTS:", kernelpoll.MISSED["count"])
"""


def main(argv=None) -> int:
    import nbformat

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=40)
    ap.add_argument("--tries", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds before a try counts as hung")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("from course_utils import widgets")] + [
            nbformat.v4.new_code_cell("explorer = widgets.SpectrumExplorer(channels=64, segments=4)\n"
                                      "display(explorer)\nexplorer.set(segments=16)")
            for _ in range(a.cells)]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        src = Path(tmp) / "widgets.ipynb"
        nbformat.write(nb, src)
        print(f"load average {os.getloadavg()[0]:.2f}; {a.cells} cells, {a.tries} tries each, "
              f"hung after {a.timeout:.0f} s")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
        for mode in ("plain", "guard"):
            for k in range(a.tries):
                t0 = time.perf_counter()
                try:
                    r = subprocess.run([sys.executable, "-c", RUN, str(src), str(Path(tmp) / f"out_{mode}{k}.ipynb"),
                                        mode, str(REPO / "notebooks")], capture_output=True, text=True,
                                       timeout=a.timeout, env=env)
                    what = "finished" if r.returncode == 0 else f"failed ({r.stderr.strip().splitlines()[-1:]})"
                    extra = next((line for line in r.stdout.splitlines() if "missed" in line), "")
                except subprocess.TimeoutExpired:
                    what, extra = "HUNG", ""
                ran = 0
                out = Path(tmp) / f"out_{mode}{k}.ipynb"
                if out.is_file():
                    done = nbformat.read(out, as_version=4)
                    ran = sum(c.get("metadata", {}).get("papermill", {}).get("status") == "completed"
                              for c in done.cells)
                print(f"{mode:5s} try {k + 1}: {what} after {time.perf_counter() - t0:6.1f} s, "
                      f"{ran} of {len(nb.cells)} cells completed {extra}")
        print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
