"""The ablation runner's results: one row per configuration from its runs (mean and std
over seeds, the paired difference to the row's baseline with its interval), written as
results.json / .md / .csv and a bar chart. Used by course_utils.ablate, which re-exports
summarize, results_markdown and their helpers."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import Optional, Sequence

from . import stats
from .files import atomic_write_bytes, atomic_write_text

_DONE = ("completed", "early_stopped", "time_limit")


def _mean_std(xs: list[float]) -> tuple[Optional[float], Optional[float]]:
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def summarize(rows: Sequence, seeds: int, results: dict, first_seed: int = 0) -> list[dict]:
    """One dict per row: report numbers, ours (mean, std over finished seeds, percent),
    difference, params, MACs, data source, mode, status and errors. `results` is keyed by
    (row name, k), k = 0 .. seeds-1, the run that trained with seed first_seed + k."""
    table = []
    for row in rows:
        runs = [results.get((row.name, s)) for s in range(seeds)]
        done = [r for r in runs if r and r["status"] in _DONE and r.get("summary")]
        sums = [r["summary"] for r in done]
        val_by_seed = {s: 100 * r["summary"]["best_val_acc"] for s, r in enumerate(runs)
                       if r in done and r["summary"].get("best_val_acc") is not None}
        # train minus validation accuracy at the best epoch, points (Table 1's two columns)
        gap_by_seed = {s: 100 * (r["summary"]["train_acc_at_best"] - r["summary"]["best_val_acc"])
                       for s, r in enumerate(runs) if r in done
                       and r["summary"].get("best_val_acc") is not None
                       and r["summary"].get("train_acc_at_best") is not None}
        val = [100 * s["best_val_acc"] for s in sums if s.get("best_val_acc") is not None]
        train = [100 * s["train_acc_at_best"] for s in sums if s.get("train_acc_at_best") is not None]
        test = [100 * s["test_acc"] for s in sums if s.get("test_acc") is not None]
        vm, vs = _mean_std(val)
        tm, ts = _mean_std(train)
        xm, xs = _mean_std(test)
        first = sums[0] if sums else next((r["summary"] for r in runs if r and r.get("summary")), {}) or {}
        errors = [f"seed {s}: {r.get('error', r['status'])}" for s, r in enumerate(runs)
                  if r and r["status"] not in _DONE]
        missing = sum(r is None for r in runs)
        status = "ok" if len(done) == seeds else (
            "failed" if not done and not missing else
            f"{len(done)}/{seeds} seeds" + (f", {len(errors)} failed" if errors else ""))
        cfg = first.get("config", {})
        table.append({
            "name": row.name, "title": row.title,
            "report_val": row.report_val, "report_train": row.report_train,
            "ours_val_mean": vm, "ours_val_std": vs, "ours_train_mean": tm, "ours_train_std": ts,
            "ours_test_mean": xm, "ours_test_std": xs,
            "diff_val": None if vm is None else vm - row.report_val,
            "seeds_done": len(done), "seeds": seeds,
            "model": cfg.get("model"), "model_args": cfg.get("model_args"),
            "params": first.get("params"), "macs": first.get("macs"),
            "macs_note": first.get("macs_note"),
            "data": (first.get("data") or {}).get("label"),
            "precision": first.get("precision"),
            "jpeg_copy": (first.get("data") or {}).get("jpeg_copy"),
            "mode": cfg.get("mode"), "epochs": cfg.get("epochs"),
            "epochs_run": [s.get("epochs_run") for s in sums],
            "stopped": sorted({s["status"] for s in sums if s.get("status") != "completed"}),
            "status": status, "errors": errors,
            "val_by_seed": val_by_seed, "gap_by_seed": gap_by_seed,
            "gap_mean": _mean_std(list(gap_by_seed.values()))[0],
            "gap_std": _mean_std(list(gap_by_seed.values()))[1], "baseline": row.baseline,
            "train_seeds": [first_seed + s + row.seed_offset for s in range(seeds)],
        })
    _compare(table)
    _choose(table, [row for row in rows if not row.seed_offset])
    return table


def _choose(table: list[dict], candidates: Sequence) -> None:
    """Choose on validation, report test once: the candidate row (controls excluded) with
    the highest mean validation accuracy keeps its test accuracy (``chosen`` True); every
    other row's test columns are cleared, so that no ranking is read off the test split."""
    names = {row.name for row in candidates}
    ran = [r for r in table if r["name"] in names and r["ours_val_mean"] is not None]
    best = max(ran, key=lambda r: r["ours_val_mean"])["name"] if ran else None
    for r in table:
        r["chosen"] = r["name"] == best
        if not r["chosen"]:
            r["ours_test_mean"] = r["ours_test_std"] = None


def _compare(table: list[dict]) -> None:
    """Each row against its baseline row (when both ran), seed by seed: the paired
    difference of the validation accuracies with its 95% Student t interval and verdict
    (diff_*), and the same for the train - validation gap (gap_diff_*)."""
    by_name = {r["name"]: r for r in table}
    for r in table:
        base = by_name.get(r["baseline"]) if r["baseline"] else None
        r.update(diff_vs=None, diff_mean=None, diff_low=None, diff_high=None, diff_n=0,
                 verdict=None, gap_diff_mean=None, gap_diff_low=None, gap_diff_high=None,
                 gap_diff_n=0, gap_verdict=None)
        if base is None:
            continue
        what = f"{r['title']} - {base['title']}"
        if set(base["val_by_seed"]) & set(r["val_by_seed"]):
            iv = stats.paired_interval(base["val_by_seed"], r["val_by_seed"])
            r.update(diff_vs=base["name"], diff_mean=iv.mean, diff_low=iv.low, diff_high=iv.high,
                     diff_n=iv.n, verdict=stats.verdict(iv, what, " points"))
        if set(base.get("gap_by_seed") or {}) & set(r.get("gap_by_seed") or {}):
            iv = stats.paired_interval(base["gap_by_seed"], r["gap_by_seed"])
            r.update(gap_diff_mean=iv.mean, gap_diff_low=iv.low, gap_diff_high=iv.high,
                     gap_diff_n=iv.n,
                     gap_verdict=stats.verdict(iv, f"train - validation gap, {what}", " points"))


def _interval(r) -> str:
    if r.get("diff_mean") is None:
        return ""
    if r["diff_low"] is None:
        return f"{r['diff_mean']:+.2f} (1 seed)"
    return f"{r['diff_mean']:+.2f} [{r['diff_low']:+.2f}, {r['diff_high']:+.2f}] ({r['diff_n']})"


def _note(table: list[dict], meta: dict) -> str:
    """The setting as the finished runs record it (data, epochs), not as typed."""
    if meta["mode"] == "full":
        precision = sorted({r["precision"] for r in table if r.get("precision")})
        return meta["note"] + (f", precision {'/'.join(precision)}" if precision else "")
    data = next((r["data"] for r in table if r.get("data")), None)
    epochs = sorted({r["epochs"] for r in table if r.get("epochs")})
    precision = sorted({r["precision"] for r in table if r.get("precision")})
    bits = [meta["note"]] + ([data] if data else [])
    if epochs:
        bits.append(f"{'/'.join(map(str, epochs))} epochs")
    if precision:
        bits.append("precision " + "/".join(precision))
    return ", ".join(bits)


def _pm(m, s) -> str:
    if m is None:
        return ""
    return f"{m:.2f}" if s is None else f"{m:.2f} ± {s:.2f}"  # no ± with one seed


def results_markdown(table: list[dict], meta: dict) -> str:
    lines = [f"# {meta.get('title', 'Dense2Net report, Table 1')}: ours vs the report ({meta['mode']} mode)", ""]
    if meta["mode"] != "full":
        lines += [f"**{_note(table, meta)}.** The report column is CIFAR-100 after 100 epochs "
                  "of the full-size models; compare rows with each other, not with it.", ""]
    else:
        lines += [f"Setting: {_note(table, meta)}.", ""]
    changed = {k: v for k, v in (meta.get("overrides") or {}).items() if k != "device"}
    if changed:
        lines += ["**Changed from that recipe:** " + ", ".join(f"{k}={v}" for k, v in changed.items())
                  + " (the actual epochs and sizes are in the table and in each run's config.json).", ""]
    lines += ["Accuracies in percent: validation = best epoch's validation accuracy "
              "(Table 1's Valid Acc), train = training accuracy at that epoch, mean ± std over "
              "seeds; diff = ours - report (validation); vs baseline = ours minus the row it is "
              "compared with, validation, paired by seed: mean [95% Student t interval] (seeds); "
              "test = the test split, reported once, for the row chosen on validation only "
              "(the highest mean validation accuracy, controls excluded).",
              "",
              "| row | report val | report train | ours val | ours train | diff | vs baseline "
              "| test (chosen row) | params | MACs | model | epochs | data | mode | status |",
              "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---|---|---|"]
    for r in table:
        diff = "" if r["diff_val"] is None else f"{r['diff_val']:+.2f}"
        params = "" if r["params"] is None else f"{r['params']:,}"
        macs = "" if r["macs"] is None else f"{r['macs'] / 1e6:,.1f} M"
        margs = ", ".join(f"{k}={v}" for k, v in (r["model_args"] or {}).items())
        model = f"{r['model'] or ''}" + (f" ({margs})" if margs else "")
        status = r["status"] + ("" if not r["errors"] else ": " + "; ".join(r["errors"])[:300])
        if r.get("stopped"):
            status += " (" + ", ".join(r["stopped"]).replace("_", " ") + ")"
        runs = r.get("epochs_run") or []
        epochs = "" if not runs else (str(r["epochs"]) if all(e == r["epochs"] for e in runs)
                                      else "/".join(map(str, runs)) + f" of {r['epochs']}")
        lines.append(
            f"| {r['title']} | {r['report_val']:.2f} | {r['report_train']:.2f} | "
            f"{_pm(r['ours_val_mean'], r['ours_val_std'])} | "
            f"{_pm(r['ours_train_mean'], r['ours_train_std'])} | {diff} | {_interval(r)} | "
            f"{_pm(r['ours_test_mean'], r['ours_test_std'])} | {params} | {macs} | {model} | "
            f"{epochs} | {r['data'] or ''} | {r['mode'] or meta['mode']} | "
            f"{status.replace('|', '/')} |")
    chosen = next((r for r in table if r.get("chosen")), None)
    if chosen is not None:
        lines += ["", f"Chosen on validation: {chosen['title']} ({_pm(chosen['ours_val_mean'], chosen['ours_val_std'])}); "
                  + (f"its test accuracy, measured once: {_pm(chosen['ours_test_mean'], chosen['ours_test_std'])}."
                     if chosen["ours_test_mean"] is not None else "its runs recorded no test accuracy.")]
    verdicts = [r["verdict"] for r in table if r.get("verdict")]
    if verdicts:
        lines += ["", "Comparisons (validation accuracy, paired by seed):", ""]
        lines += [f"- {v}" for v in verdicts]
        alarms = [r for r in table if r["name"].endswith("_control") and r.get("diff_low") is not None
                  and (r["diff_low"] > 0 or r["diff_high"] < 0)]
        for r in alarms:
            lines += ["", f"**The control's interval excludes 0** ({r['title']}: {_interval(r)}): "
                      "two runs of one configuration seem to differ, a false alarm of the "
                      "interval, so no interval of this table is trusted at this budget; each "
                      "sentence above says what its interval alone shows (lesson 07, exercise 1)."]
    gaps = [r for r in table if r.get("gap_mean") is not None]
    if gaps:
        lines += ["", "The train - validation gap at the best epoch (points, mean ± std over "
                  "seeds), and its paired difference to the baseline:", ""]
        lines += [f"- {r['title']}: {_pm(r['gap_mean'], r.get('gap_std'))}"
                  + (f"; {r['gap_verdict']}" if r.get("gap_verdict") else "") for r in gaps]
    lines += ["", f"MACs: one 32x32 image, forward pass ({next((r['macs_note'] for r in table if r['macs_note']), 'not measured')}).",
              f"Runs: {meta['out']}/<row>/seed<k>/ (config.json, log.txt, metrics.jsonl, "
              f"summary.json). {meta['seeds']} seed(s), {meta['jobs']} run(s) at a time, "
              f"started {meta['started']}, {meta.get('wall_seconds', 0):.0f} s so far."]
    prov = meta.get("provenance")
    if prov:
        lines.append(f"Provenance: {prov.get('date')} on {prov.get('host')}, device {prov.get('device')}"
                     + (f" ({prov['gpu']})" if prov.get("gpu") else "")
                     + f", torch {prov.get('torch')}, commit {prov.get('git_commit')}; "
                     f"command: `{prov.get('command')}`.")
    return "\n".join(lines) + "\n"


def _write_results(out: Path, rows, seeds, results, meta, chart: bool = False) -> list[dict]:
    table = summarize(rows, seeds, results, meta.get("first_seed", 0))
    atomic_write_text(out / "results.json", json.dumps({"meta": meta, "rows": table}, indent=2) + "\n")
    atomic_write_text(out / "results.md", results_markdown(table, meta))
    buf = io.StringIO()
    cols = [k for k in table[0] if k not in ("errors",)] + ["errors"] if table else []
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in table:
        w.writerow({**r, "model_args": json.dumps(r["model_args"]), "errors": " | ".join(r["errors"]),
                    "epochs_run": json.dumps(r["epochs_run"]), "stopped": " ".join(r["stopped"]),
                    "val_by_seed": json.dumps(r["val_by_seed"]),
                    "gap_by_seed": json.dumps(r["gap_by_seed"]),
                    "train_seeds": json.dumps(r["train_seeds"])})
    atomic_write_text(out / "results.csv", buf.getvalue())
    if chart:
        _write_chart(out, table, meta)
    return table


def _write_chart(out: Path, table: list[dict], meta: dict) -> None:
    """table1.png, drawn on a bare Figure: no pyplot, so the backend of a notebook kernel
    that calls run_table stays as it is (its later plt.show() calls still draw)."""
    from .viz import ablation_bars

    bars = [{"name": r["name"], "report": r["report_val"], "ours_mean": r["ours_val_mean"],
             "ours_std": r["ours_val_std"], "status": r["status"]} for r in table]
    title = f"{meta.get('title', 'Table 1')}, {meta['mode']} mode" + ("" if meta["mode"] == "full" else
                                               " - NOT comparable with the report")
    fig = ablation_bars(bars, title=title, pyplot=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    atomic_write_bytes(out / "table1.png", buf.getvalue())
