"""Run every course notebook with papermill and print a table of the results.

    python -m course_utils.runbook --mode quick            # what `make course` runs
    python -m course_utils.runbook --mode smoke -p seed 7 --only 00

Executed copies go to build/notebooks/ (git-ignored), each notebook's own outputs to
build/out/<notebook>/; the table is also written to build/course_report.{md,json}.
Exit status 1 if any notebook failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .data import MODES
from .files import atomic_write_json

REPO = Path(__file__).resolve().parents[1]


def _coerce(value: str):
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(value, value)


def run_notebooks(notebooks, *, mode="quick", build=REPO / "build", params=None,
                  kernel_name="python3", timeout=None, log=print) -> list[dict]:
    import papermill as pm

    rows = []
    (build / "notebooks").mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        nb = Path(nb)
        out_dir = build / "out" / nb.stem
        p = {"mode": mode, "out_dir": str(out_dir), **(params or {})}
        headline = out_dir / "headline.json"
        headline.unlink(missing_ok=True)
        log(f"[runbook] {nb.name} ({mode}) ...")
        t0 = time.perf_counter()
        status, error = "ok", ""
        try:
            pm.execute_notebook(str(nb), str(build / "notebooks" / nb.name), parameters=p,
                                kernel_name=kernel_name, cwd=str(nb.parent),
                                progress_bar=False, execution_timeout=timeout)
        except Exception as e:  # noqa: BLE001 - reported in the table, the rest still run
            status = "FAILED"
            error = (getattr(e, "ename", type(e).__name__) + ": "
                     + str(getattr(e, "evalue", e)).splitlines()[0][:160])
        wall = time.perf_counter() - t0
        head = json.loads(headline.read_text()) if headline.is_file() else None
        rows.append({"notebook": nb.name, "status": status, "seconds": round(wall, 1),
                     "headline": head, "error": error})
        log(f"[runbook] {nb.name}: {status} in {wall:.1f} s")
    return rows


# Quick mode's budget per notebook on a 2-core CPU (s): what a lesson may take in class.
QUICK_BUDGET_S = {"07": 480}
DEFAULT_QUICK_BUDGET_S = 180


def budget_s(notebook: str, mode: str) -> int | None:
    if mode != "quick":
        return None
    return QUICK_BUDGET_S.get(notebook[:2], DEFAULT_QUICK_BUDGET_S)


def machine() -> str:
    """The machine a run's times were measured on, in one line."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " (load average %.1f at the end)" % os.getloadavg()[0]
    except OSError:
        load = ""
    return f"{cpu}, {os.cpu_count()} cores{load}"


def format_table(rows, mode, where: str | None = None) -> str:
    lines = [f"Course run, mode={mode}, {time.strftime('%Y-%m-%d %H:%M')}, on {where or machine()}",
             "", "| notebook | status | wall time (s) | budget (s) | headline result |",
             "|---|---|---:|---:|---|"]
    for r in rows:
        h = r["headline"]
        if r["status"] != "ok":
            what = r["error"]
        elif h is None:
            what = "(no headline recorded)"
        else:
            v = h["value"]
            v = f"{v:.4g}" if isinstance(v, float) else v
            what = f"{h['name']}: {v}" + (f" ({h['note']})" if h.get("note") else "")
        b = budget_s(r["notebook"], mode)
        over = " **over**" if b is not None and r["seconds"] > b else ""
        lines.append(f"| {r['notebook']} | {r['status']} | {r['seconds']:.1f} | "
                     f"{b if b is not None else '-'}{over} | {what} |")
    total = sum(r["seconds"] for r in rows)
    lines += ["", f"total: {total:.1f} s, {sum(r['status'] == 'ok' for r in rows)}"
              f"/{len(rows)} notebooks ok"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_utils.runbook", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="quick", choices=MODES)
    ap.add_argument("--notebooks", default=str(REPO / "notebooks"))
    ap.add_argument("--only", nargs="*", default=None,
                    help="run only notebooks whose name starts with one of these")
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"), help="extra parameter for every notebook")
    ap.add_argument("--kernel", default="python3")
    ap.add_argument("--timeout", type=int, default=None, help="seconds per cell")
    a = ap.parse_args(argv)
    nbs = sorted(Path(a.notebooks).glob("[0-9][0-9]_*.ipynb"))
    if a.only:
        nbs = [n for n in nbs if any(n.name.startswith(o) for o in a.only)]
    if not nbs:
        print(f"no notebooks found in {a.notebooks}", file=sys.stderr)
        return 2
    params = {k: _coerce(v) for k, v in a.param}
    build = Path(a.build)
    rows = run_notebooks(nbs, mode=a.mode, build=build, params=params,
                         kernel_name=a.kernel, timeout=a.timeout)
    table = format_table(rows, a.mode)
    build.mkdir(parents=True, exist_ok=True)
    (build / "course_report.md").write_text(table + "\n")
    atomic_write_json(build / "course_report.json",
                      {"mode": a.mode, "machine": machine(), "rows": rows}, indent=1, default=str)
    print("\n" + table)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
