"""Run every course notebook with papermill and print a table of the results.

    python -m course_utils.runbook --mode quick            # what `make course` runs
    python -m course_utils.runbook --mode smoke -p seed 7 --only 00

Executed copies go to build/notebooks/ (git-ignored), each notebook's own outputs to
build/out/<notebook>/; the table is also written to build/course_report.{md,json}.
Exit status 1 if any notebook failed.

A grid runs every combination of the values, each one papermill run with those
parameters on top of --mode and -p, N at a time, and tabulates each notebook's headline
per setting with mean +- std over the seeds (the key `seed`; the other keys are the
settings):

    python -m course_utils.runbook --only 06 --grid seed=0,1,2 \
        --grid dataset=cifar10,fashion_mnist --jobs 2

Executed copies go to build/grid/<notebook>__<key>=<value>__....ipynb, their outputs to
build/grid/out/<notebook>/<key>=<value>__.../, the table to build/grid/grid_report.{md,json}.
A failed run is a row with its error; exit status 1 if any run failed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import sys
import time
from pathlib import Path

from .checks import BadValue
from .files import atomic_write_json, atomic_write_text
from .stats import mean_std

REPO = Path(__file__).resolve().parents[1]


def _coerce(value: str):
    for conv in (int, float):
        try:
            return conv(value)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(value, value)


def _error_line(e: BaseException) -> str:
    """An exception in one line, as a traceback's last line reads: `ValueError: bad`."""
    text = str(getattr(e, "evalue", e)).strip()
    return (getattr(e, "ename", type(e).__name__) + ": "
            + (text.splitlines()[0] if text else "")[:160])


def run_one(nb, executed, params, *, kernel_name="python3", timeout=None) -> dict:
    """One papermill run of `nb` into `executed` with `params` (out_dir among them): its
    status, wall time, headline (out_dir/headline.json, if the notebook recorded one) and
    error (the exception's last line)."""
    import papermill as pm

    from .kernelpoll import install

    install()   # papermill's wait on the kernel, polled in slices: no lost wake-up
    nb = Path(nb)
    headline = Path(params["out_dir"]) / "headline.json"
    headline.unlink(missing_ok=True)
    t0 = time.perf_counter()
    status, error = "ok", ""
    try:
        pm.execute_notebook(str(nb), str(executed), parameters=params,
                            kernel_name=kernel_name, cwd=str(nb.parent),
                            progress_bar=False, execution_timeout=timeout)
    except Exception as e:  # noqa: BLE001 - reported in the table, the rest still run
        status, error = "FAILED", _error_line(e)
    wall = time.perf_counter() - t0
    head = json.loads(headline.read_text()) if headline.is_file() else None
    return {"status": status, "seconds": round(wall, 1), "headline": head, "error": error}


def run_notebooks(notebooks, *, mode="quick", build=REPO / "build", params=None,
                  kernel_name="python3", timeout=None, log=print) -> list[dict]:
    rows = []
    (build / "notebooks").mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        nb = Path(nb)
        p = {"mode": mode, "out_dir": str(build / "out" / nb.stem), **(params or {})}
        log(f"[runbook] {nb.name} ({mode}) ...")
        r = run_one(nb, build / "notebooks" / nb.name, p, kernel_name=kernel_name,
                    timeout=timeout)
        rows.append({"notebook": nb.name, **r})
        log(f"[runbook] {nb.name}: {r['status']} in {r['seconds']:.1f} s")
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


# ------------------------------------------------------------------ grids of runs
GRID_SEED = "seed"  # the grid key averaged over; the other keys are the settings
GRID_SYNTAX = "allowed: KEY=V1,V2,... (e.g. --grid seed=0,1,2), KEY a notebook parameter"


def parse_grid(specs, params=None) -> list[tuple[str, list]]:
    """`["seed=0,1", "dataset=cifar10,fashion_mnist"]` -> `[("seed", [0, 1]), ("dataset",
    [...])]`, the values coerced as -p values are. A spec without "=", with no key, no
    value, an empty or repeated value, a key given twice or also given with -p raises
    BadValue naming --grid, the spec and what is allowed."""
    grid, seen = [], {}
    for spec in specs:
        key, eq, rest = spec.partition("=")
        key = key.strip()
        if not eq:
            raise BadValue("--grid", spec, GRID_SYNTAX, reason="has no '='")
        if not key:
            raise BadValue("--grid", spec, GRID_SYNTAX, reason="names no parameter before '='")
        if key in seen:
            raise BadValue("--grid", spec, f"allowed: each key once (--grid {seen[key]} "
                           "gives it already)", reason=f"repeats the key {key!r}")
        if key in (params or {}):
            raise BadValue("--grid", spec, f"allowed: {key} in --grid or in -p, not both",
                           reason=f"sets {key!r}, which -p sets too")
        if key == "out_dir":
            raise BadValue("--grid", spec, "allowed: any other parameter (the runbook gives "
                           "every run its own out_dir)", reason="sets out_dir")
        raw = [v.strip() for v in rest.split(",")]
        if raw == [""]:
            raise BadValue("--grid", spec, "allowed: one value or more, separated by commas",
                           reason="has no values")
        if "" in raw:
            raise BadValue("--grid", spec, "allowed: values separated by single commas",
                           reason="has an empty value")
        again = next((v for i, v in enumerate(raw) if v in raw[:i]), None)
        if again is not None:
            raise BadValue("--grid", spec, "allowed: each value once",
                           reason=f"repeats the value {again!r}")
        seen[key] = spec
        grid.append((key, [_coerce(v) for v in raw]))
    return grid


def check_grid_keys(grid, notebooks) -> None:
    """Every grid key must be a parameter of every notebook (papermill reads the
    notebook's `parameters` cell), else BadValue naming the key and the parameters."""
    import papermill as pm

    for nb in notebooks:
        names = list(pm.inspect_notebook(str(nb)))
        for key, values in grid:
            if key not in names:
                allowed = ("allowed: a parameter of the notebook; it has no parameters cell"
                           if not names else f"allowed: a parameter of {Path(nb).name}: "
                           + ", ".join(names))
                raise BadValue("--grid", f"{key}={','.join(map(str, values))}", allowed,
                               reason=f"is not a parameter of {Path(nb).name}")


def expand_grid(grid) -> list[dict]:
    """Every combination of the values, the first key varying slowest."""
    keys = [k for k, _ in grid]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in grid))]


def point_name(point: dict) -> str:
    """A file name's part for one grid point: `seed=0__dataset=cifar10`."""
    return "__".join(f"{k}={re.sub(r'[^A-Za-z0-9.+-]', '_', str(v))[:40]}"
                     for k, v in point.items())


def grid_jobs(notebooks, grid, *, mode="quick", build=REPO / "build", params=None) -> list[dict]:
    """One job a (notebook, grid point): its parameters (mode, -p, the point, its own
    out_dir: <build>/grid/out/<notebook>/<point>, or under -p out_dir), the executed
    copy's path and the setting (the point without the seed)."""
    params = dict(params or {})
    given = params.pop("out_dir", None)  # -p out_dir: the runs' folders go under it
    out_base = build / "grid" / "out" if given in (None, "", "None") else Path(given)
    jobs = []
    for nb in notebooks:
        nb, names = Path(nb), set()
        for point in expand_grid(grid):
            name = point_name(point)
            if name in names:  # two values that read the same once made file-safe
                name += f"__{len(names)}"
            names.add(name)
            out_dir = out_base / nb.stem / name
            jobs.append({"notebook": nb.name, "path": str(nb), "point": point,
                         "setting": {k: v for k, v in point.items() if k != GRID_SEED},
                         "seed": point.get(GRID_SEED, params.get(GRID_SEED)),
                         "executed": str(build / "grid" / f"{nb.stem}__{name}.ipynb"),
                         "params": {"mode": mode, **params, **point, "out_dir": str(out_dir)}})
    return jobs


def _run_job(job: dict, kernel_name: str = "python3", timeout=None) -> dict:
    Path(job["params"]["out_dir"]).mkdir(parents=True, exist_ok=True)
    r = run_one(job["path"], job["executed"], job["params"], kernel_name=kernel_name,
                timeout=timeout)
    return {k: job[k] for k in ("notebook", "setting", "seed", "point", "executed")} | r


def _one_thread() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"  # the kernels papermill starts inherit it


def run_grid(jobs, *, n_jobs=1, kernel_name="python3", timeout=None, log=print) -> list[dict]:
    """Run the jobs, `n_jobs` at a time (processes, one thread each); one row a job, in
    the jobs' order, a failed one with its error."""
    def _label(job):
        return f"{job['notebook']} {point_name(job['point'])}"

    if n_jobs == 1:
        rows = []
        for job in jobs:
            log(f"[runbook] {_label(job)} ...")
            rows.append(_run_job(job, kernel_name, timeout))
            log(f"[runbook] {_label(job)}: {rows[-1]['status']} in {rows[-1]['seconds']:.1f} s")
        return rows
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    rows = [None] * len(jobs)
    ctx = multiprocessing.get_context("forkserver")  # no fork of a threaded parent
    ctx.set_forkserver_preload(["papermill"])  # imported once, not once per worker
    with ProcessPoolExecutor(n_jobs, mp_context=ctx, initializer=_one_thread) as pool:
        futures = {pool.submit(_run_job, job, kernel_name, timeout): i
                   for i, job in enumerate(jobs)}
        log(f"[runbook] {len(jobs)} runs, {n_jobs} at a time ...")
        for f in as_completed(futures):
            i, job = futures[f], jobs[futures[f]]
            try:
                rows[i] = f.result()
            except Exception as e:  # noqa: BLE001 - the worker itself died: still a row
                rows[i] = {**{k: job[k] for k in ("notebook", "setting", "seed", "point",
                                                   "executed")},
                           "status": "FAILED", "seconds": 0.0, "headline": None,
                           "error": _error_line(e)}
            log(f"[runbook] {_label(job)}: {rows[i]['status']} in {rows[i]['seconds']:.1f} s")
    return rows


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def summarize_grid(rows) -> list[dict]:
    """Per notebook and setting: each headline over the seeds that ran (numbers: mean,
    std, n; anything else: the distinct values with counts), then one row per failed run
    with its error."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["notebook"], json.dumps(r["setting"], default=str)), []).append(r)
    out = []
    for (notebook, _), runs in groups.items():
        ok = [r for r in runs if r["status"] == "ok"]
        base = {"notebook": notebook, "setting": runs[0]["setting"]}
        by_name: dict = {}
        for r in ok:
            by_name.setdefault((r["headline"] or {}).get("name"), []).append(r)
        for name, rs in by_name.items():
            values = [r["headline"]["value"] for r in rs] if name is not None else []
            notes = sorted({r["headline"].get("note", "") for r in rs} - {""}) if name else []
            s = {**base, "status": "ok", "seeds": [r["seed"] for r in rs], "headline": name,
                 "note": "; ".join(notes), "runs": len(runs), "ok": len(ok),
                 "seconds": round(sum(r["seconds"] for r in rs) / len(rs), 1)}
            if values and all(_is_number(v) for v in values):
                s["mean"], s["std"] = mean_std(values)
                s["n"] = len(values)
            elif values:
                counts: dict = {}
                for v in values:
                    counts[str(v)] = counts.get(str(v), 0) + 1
                s["counts"] = counts
            out.append(s)
        out += [{**base, "status": r["status"], "seeds": [r["seed"]], "headline": None,
                 "error": r["error"], "runs": len(runs), "ok": len(ok),
                 "seconds": r["seconds"]} for r in runs if r["status"] != "ok"]
    return out


def _num(x) -> str:
    return f"{x:.4g}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def format_value(s: dict) -> str:
    """A summary row's result: `0.6 ± 0.1414 (n=2)`, `0.5 (n=1)`, `a (×2), b (×1)`."""
    if s["status"] != "ok":
        return s["error"]
    if s["headline"] is None:
        return "(no headline recorded)"
    if "mean" in s:
        std = "" if s["std"] is None else f" ± {_num(s['std'])}"
        return f"{_num(s['mean'])}{std} (n={s['n']})"
    return ", ".join(f"{v} (×{c})" for v, c in s.get("counts", {}).items())


def format_grid_table(summary, meta: dict) -> str:
    grid = " x ".join(f"{k}={','.join(map(str, v))}" for k, v in meta["grid"].items())
    lines = [f"Grid run, mode={meta['mode']}, {meta['date']}, on {meta['machine']}",
             f"grid: {grid}; mean ± std (sample std, n - 1) over {GRID_SEED}", "",
             "| notebook | setting | seeds | status | headline | result | wall time per run (s) |",
             "|---|---|---|---|---|---|---:|"]
    for s in summary:
        setting = ", ".join(f"{k}={v}" for k, v in s["setting"].items()) or "-"
        head = s["headline"] or "-"
        if s.get("note"):
            head += f" ({s['note']})"
        lines.append("| " + " | ".join(_cell(c) for c in (
            s["notebook"], setting, ",".join(str(x) for x in s["seeds"] if x is not None) or "-",
            s["status"], head,
            format_value(s), f"{s['seconds']:.1f}")) + " |")
    lines += ["", f"{meta['ok']}/{meta['runs']} runs ok, {meta['jobs']} at a time, "
              f"wall time {meta['wall_s']:.1f} s; executed notebooks in {meta['folder']}"]
    return "\n".join(lines)


def _main_grid(a, nbs, params, fail) -> int:
    try:
        grid = parse_grid(a.grid, params)
        check_grid_keys(grid, nbs)
    except BadValue as e:
        fail(str(e))
    build = Path(a.build)
    folder = build / "grid"
    folder.mkdir(parents=True, exist_ok=True)
    jobs = grid_jobs(nbs, grid, mode=a.mode, build=build, params=params)
    t0 = time.perf_counter()
    rows = run_grid(jobs, n_jobs=a.jobs, kernel_name=a.kernel, timeout=a.timeout)
    summary = summarize_grid(rows)
    meta = {"mode": a.mode, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "grid": dict(grid), "params": params, "average_over": GRID_SEED, "jobs": a.jobs,
            "runs": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
            "wall_s": round(time.perf_counter() - t0, 1), "folder": str(folder)}
    table = format_grid_table(summary, meta)
    atomic_write_text(folder / "grid_report.md", table + "\n")
    atomic_write_json(folder / "grid_report.json",
                      {"meta": meta, "settings": summary, "runs": rows}, indent=1, default=str)
    print("\n" + table)
    return 0 if meta["ok"] == len(rows) else 1


def _jobs_arg(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: an integer >= 1 "
                                         "(papermill runs at a time)")
    return n


def main(argv=None) -> int:
    from .data import MODES  # here, not above: grid workers need no torch

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
    ap.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="run every combination of these parameter values (repeat for "
                    f"more keys); {GRID_SEED} is averaged over, the other keys are settings")
    ap.add_argument("--jobs", type=_jobs_arg, default=1, metavar="N",
                    help="grid runs at a time (processes, one thread each when N > 1)")
    a = ap.parse_args(argv)
    if a.jobs > 1 and not a.grid:
        ap.error(f"--jobs {a.jobs}: allowed: 1 without --grid (the course run is one "
                 "notebook at a time, so that its times compare with the budgets)")
    nbs = sorted(Path(a.notebooks).glob("[0-9][0-9]_*.ipynb"))
    if a.only:
        nbs = [n for n in nbs if any(n.name.startswith(o) for o in a.only)]
    if not nbs:
        print(f"no notebooks found in {a.notebooks}", file=sys.stderr)
        return 2
    params = {k: _coerce(v) for k, v in a.param}
    if a.grid:
        return _main_grid(a, nbs, params, ap.error)
    build = Path(a.build)
    rows = run_notebooks(nbs, mode=a.mode, build=build, params=params,
                         kernel_name=a.kernel, timeout=a.timeout)
    table = format_table(rows, a.mode)
    build.mkdir(parents=True, exist_ok=True)
    atomic_write_text(build / "course_report.md", table + "\n")
    atomic_write_json(build / "course_report.json",
                      {"mode": a.mode, "machine": machine(), "rows": rows}, indent=1, default=str)
    print("\n" + table)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
