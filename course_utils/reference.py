"""Reference results: runs trained once at the reference scale, stored small, shown by the
lessons without retraining (issue 17).

    python -m course_utils.ablate table1 --mode reference --out build/reference/table1
    python -m course_utils.reference publish build/reference/table1 data/reference/table1 \\
        --checkpoint densenet/seed0
    python -m course_utils.reference show data/reference/table1
    python -m course_utils.reference first-epoch data/reference/table1/densenet/seed0
    python -m course_utils.reference check-checkpoints data/reference/table1

``publish`` copies, for every finished run of a results folder that the ablation runner
wrote, what a lesson reads (config.json, metrics.jsonl, summary.json) and writes a
results.json beside them with the provenance of the run (date, machine, device, torch
version, git commit, the command, the seed). The folder's own results.json/.md come along.
Checkpoints are left out, except those named with ``--checkpoint``: the run's final weights
only (no optimizer state), at most 1 MB each, with the test accuracy they were measured at.

``load(name)`` is what a lesson calls; a missing or incomplete folder raises
:class:`ReferenceMissing` with a message the lesson prints before it goes on without.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Optional, Sequence

from .ablate import PROVENANCE_KEYS, REPO, load_results
from .files import atomic_write_text

__all__ = ["REFERENCE_DIR", "ReferenceMissing", "load", "publish", "first_epoch",
           "check_checkpoint", "MAX_CHECKPOINT_BYTES", "rebuild_table", "table_label",
           "table1_effects", "convergence", "load_checkpoint_model"]

REFERENCE_DIR = REPO / "data" / "reference"
MAX_CHECKPOINT_BYTES = 1_000_000   # the repository's exception for weights a lesson inspects
MAX_ALL_CHECKPOINTS = 5_000_000
RUN_FILES = ("config.json", "metrics.jsonl", "summary.json")
DONE = ("completed", "early_stopped", "time_limit")


def reference_dir() -> Path:
    """data/reference/ in the kit, or the folder that COURSE_REFERENCE names."""
    import os

    return Path(os.environ.get("COURSE_REFERENCE") or REFERENCE_DIR)


class ReferenceMissing(FileNotFoundError):
    """A reference folder that is not there, or lacks its provenance."""


def load(name: str, root: Optional[Path] = None) -> dict:
    """The stored results folder `name` (e.g. "table1"): load_results's dict (meta, rows)
    plus "runs": {(row, seed): {"summary", "metrics", "results"}} read from its run folders."""
    folder = Path(root or reference_dir()) / name
    try:
        res = load_results(folder)
    except (FileNotFoundError, ValueError) as e:
        raise ReferenceMissing(f"reference results {name!r} cannot be shown: {e}") from None
    runs = {}
    for summary in sorted(folder.glob("*/seed*/summary.json")):
        d = summary.parent
        seed = int(d.name.removeprefix("seed"))
        runs[(d.parent.name, seed)] = {
            "summary": json.loads(summary.read_text()),
            "metrics": [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines() if x.strip()],
            "results": json.loads((d / "results.json").read_text()) if (d / "results.json").is_file() else None,
        }
    res["runs"] = runs
    return res


def rebuild_table(folder, meta: Optional[dict] = None) -> list[dict]:
    """Recompute a Table 1 results folder (results.json/.md/.csv and the chart) from every
    finished run folder in it, whichever invocation of the runner trained it: the stored
    table then counts each stored run, not only those of the runner's last invocation."""
    from .ablate import TABLE1, control_row
    from .ablate_results import _write_results

    folder = Path(folder)
    meta = dict(meta if meta is not None else load_results(folder)["meta"])
    present = {d.name for d in folder.iterdir() if d.is_dir()}
    rows = [r for r in TABLE1 if r.name in present]
    rows += [control_row(r) for r in TABLE1 if f"{r.name}_control" in present]
    # every seed folder present counts, whichever --seeds the last invocation had (one
    # may have run the extra rows at 2 seeds after the main rows at 3)
    found = {int(p.name.removeprefix("seed")) for r in rows for p in (folder / r.name).glob("seed*")
             if p.name.removeprefix("seed").isdigit() and (p / "summary.json").is_file()}
    first = min(found, default=int(meta.get("first_seed", 0)))
    seeds = max(int(meta["seeds"]) if not found else 0, max(found, default=first) - first + 1)
    meta.update(seeds=seeds, first_seed=first)
    results = {}
    for row in rows:
        for k in range(seeds):
            p = folder / row.name / f"seed{first + k}" / "summary.json"
            if p.is_file():
                summary = json.loads(p.read_text())
                results[(row.name, k)] = {"status": summary.get("status"), "summary": summary,
                                          "reused": True, "seconds": 0.0}
    return _write_results(folder, rows, seeds, results, meta, chart=True)


def recipe_text(recipe: dict, seeds: int) -> str:
    """A reference recipe (a TrainConfig's fields) in one line."""
    r = dict(recipe)
    return (f"the reference recipe: {r['dataset'].upper().replace('CIFAR', 'CIFAR-')} (the JPEG re-encoding), "
            f"{r['train_size']:,} training and {r['val_size']:,} validation images, the whole test set; "
            f"{r['epochs']} epochs at batch {r['batch_size']}, lr {r.get('lr', 0.1)} "
            f"{r.get('schedule', 'cosine')}" + (", crops and flips" if r.get("augment", True) else "")
            + f"; {seeds} seeds and a control")


def recipe_line() -> str:
    """The reference recipe of Table 1 (ablate.MODE_RECIPES["reference"]) in one line."""
    from .ablate import MODE_RECIPES

    r = MODE_RECIPES["reference"]
    return recipe_text(dict(r["config"], dataset=r["dataset"]), r["seeds"]).replace(
        ", crops and flips", ", crops and flips except the no-augmentation rows")


def table_label(res: dict) -> str:
    """What a lesson prints above stored Table 1 results: data, scale, epochs, seeds,
    precision, device and date (from the rows and the provenance)."""
    meta, rows = res["meta"], res["rows"]
    prov = meta.get("provenance") or {}
    ran = [r for r in rows if r.get("seeds_done")]
    data = next((r["data"] for r in ran if r.get("data")), "?")
    epochs = sorted({r["epochs"] for r in ran if r.get("epochs")})
    prec = sorted({r["precision"] for r in ran if r.get("precision")})
    first, n = int(meta.get("first_seed", 0)), int(meta.get("seeds", 0))
    done = f"{sum(r['seeds_done'] for r in ran)} runs finished" if ran else "no run finished"
    return (f"reference scale ({meta.get('mode')}): {data}; "
            f"{'/'.join(map(str, epochs)) or '?'} epochs; seeds {first}-{first + n - 1} per row, "
            f"{done}; {'/'.join(prec) or '?'} on {prov.get('device')}"
            + (f" ({prov['gpu']})" if prov.get("gpu") else "")
            + f", {str(prov.get('date', '?'))[:10]}, git {prov.get('git_commit')}")


# The report's two claims of section 5 and the control, as (new row, old row, metric, what)
TABLE1_CLAIMS = (
    ("densenet", "densenet_noaug", "val", "augmentation (DenseNet with it minus without it), validation accuracy"),
    ("densenet", "densenet_noaug", "gap", "augmentation, train - validation gap"),
    ("dense2net", "dense2net_noaug", "val", "augmentation on Dense2Net, validation accuracy"),
    ("dense2net", "dense2net_noaug", "gap", "augmentation on Dense2Net, train - validation gap"),
    ("dense2net", "densenet", "val", "the Res2Net module (Dense2Net minus DenseNet, both augmented), validation accuracy"),
    ("dense2net", "densenet", "gap", "the Res2Net module, train - validation gap"),
)


def table1_effects(res: dict, claims=TABLE1_CLAIMS) -> list[dict]:
    """For each claim (and every other row against its baseline): our paired difference
    with its 95% interval, the report's difference (one run each), and how ours stands to
    the report's sign (stats.finding); the control's line says whether it is a false alarm.
    Pairs whose rows have no common finished seed are left out."""
    from . import stats
    from .ablate import TABLE1

    rep = {r.name: r for r in TABLE1}
    by = {r["name"]: r for r in res["rows"]}
    key = {"val": "val_by_seed", "gap": "gap_by_seed"}

    def report(name, metric):
        r = rep[name]
        return r.report_val if metric == "val" else r.report_train - r.report_val

    pairs = list(claims)
    for r in TABLE1:   # the other rows of Table 1 against their baselines
        if r.baseline and r.name not in {"densenet_noaug", "dense2net_noaug", "dense2net"}:
            pairs.append((r.name, r.baseline, "val", f"{r.title} minus {rep[r.baseline].title}, validation accuracy"))
    out = []
    for new, old, metric, what in pairs:
        a, b = (by.get(old) or {}).get(key[metric]) or {}, (by.get(new) or {}).get(key[metric]) or {}
        if not set(a) & set(b):
            continue
        iv = stats.paired_interval(a, b)
        rd = report(new, metric) - report(old, metric)
        out.append({"new": new, "old": old, "metric": metric, "what": what, "interval": iv,
                    "report": rd, "finding": stats.finding(iv, 1 if rd > 0 else -1),
                    "verdict": stats.verdict(iv, what, " points")})
    controls = []
    for ctl in [n for n in by if n.endswith("_control")]:
        base = ctl.removesuffix("_control")
        a, b = (by.get(base) or {}).get("val_by_seed") or {}, by[ctl].get("val_by_seed") or {}
        if set(a) & set(b):
            iv = stats.paired_interval(a, b)
            controls.append({"new": ctl, "old": base, "metric": "val", "interval": iv, "report": 0.0,
                             "what": f"control ({base} with other seeds minus {base}), validation accuracy",
                             "finding": "false alarm" if iv.excludes_zero else "noise floor, as expected",
                             "verdict": stats.verdict(iv, f"control minus {base}", " points")})
    # lesson 07's rule (its exercise 1): where a control's interval excludes 0, two runs of
    # one configuration seem to differ, so no interval of this table is trusted: every
    # claim reads "cannot resolve", and its line says what its interval alone would say
    alarms = [c for c in controls if c["finding"] == "false alarm"]
    for e in out if alarms else ():
        c = alarms[0]
        alone = e["finding"]
        e.update(finding="cannot resolve", interval_finding=alone)
        if alone == "cannot resolve":
            continue
        ratio = (f", {abs(e['interval'].mean / c['interval'].mean):.1f} times the control's difference"
                 if c["interval"].mean else "")
        e["verdict"] += (f" But the control's interval excludes 0 too ({c['old']} with other seeds minus "
                         f"{c['old']}: {c['interval'].mean:+.2f} points [{c['interval'].low:+.2f}, "
                         f"{c['interval'].high:+.2f}]), so this table's intervals are not trusted: cannot "
                         f"resolve (the interval alone: {alone}{ratio}).")
    return out + controls


def convergence(res: dict, row: str, fraction: float = 0.1) -> dict:
    """Per seed of `row`, how much its validation accuracy moved over the last `fraction` of
    its epochs (max - min over those epochs and the one before, points), and its train -
    validation gap at the best epoch: {seed: {"moved", "gap", "epochs"}}. Reads the run
    folders' metrics.jsonl (res from :func:`load`)."""
    import math

    out = {}
    for (name, seed), run in sorted(res["runs"].items()):
        if name != row or not run["metrics"]:
            continue
        vals = [100 * m["val_acc"] for m in run["metrics"]]
        n = max(1, math.ceil(fraction * len(vals)))
        tail = vals[-(n + 1):]
        s = run["summary"]
        out[seed] = {"moved": max(tail) - min(tail), "epochs": len(vals), "last_epochs": n,
                     "gap": 100 * (s["train_acc_at_best"] - s["best_val_acc"])}
    return out


def load_checkpoint_model(run, root: Optional[Path] = None):
    """A stored checkpoint (e.g. "table1/densenet/seed0") as a model in eval mode, rebuilt
    from what the checkpoint records (weights_only) and its run's results.json:
    (model, info) with info = {"label", "test_acc", "test_images", "provenance", ...}."""
    import torch

    from .models import create_model

    d = Path(root or reference_dir()) / run
    path = d / "model.pt"
    if not path.is_file():
        raise ReferenceMissing(f"reference checkpoint {run!r} cannot be shown: {path} is not there")
    ck = torch.load(path, map_location="cpu", weights_only=True)
    results = json.loads((d / "results.json").read_text()) if (d / "results.json").is_file() else None
    if not results or not (results.get("provenance") or {}).get("date"):
        raise ReferenceMissing(f"reference checkpoint {run!r} cannot be shown: {d / 'results.json'} "
                               "with its provenance is not there")
    summary = json.loads((d / "summary.json").read_text())
    model = create_model(ck["model_name"], num_classes=summary["data"]["num_classes"],
                         in_chans=summary["data"]["in_chans"], **ck["model_args"])
    model.load_state_dict(ck["model"])
    model.eval()
    prov = results["provenance"]
    info = {"run": run, "model_name": ck["model_name"], "epochs": results.get("epochs_run"),
            "final_val_acc": summary.get("final_val_acc"), "final_train_acc": summary.get("final_train_acc"),
            "val_images": (summary["data"].get("sizes") or {}).get("val"),
            "test_acc": ck.get("test_acc"), "test_images": ck.get("test_images"),
            "sample_test_acc": ck.get("sample_test_acc"), "provenance": prov,
            "label": (f"{ck['model_name']} at the reference scale: {results.get('data')}; "
                      f"{results.get('epochs_run')} epochs, seed {results.get('seed')}, "
                      f"{prov.get('precision') or 'fp32'} on {prov.get('device')}, "
                      f"{str(prov.get('date'))[:10]}")}
    return model, info


def _rel_out(meta: dict, default: str) -> str:
    """The results folder a command wrote, relative to the kit where it lies inside it."""
    out = meta.get("out")
    if not out:
        return default
    try:
        return str(Path(out).resolve().relative_to(REPO))
    except ValueError:
        return str(out)


def run_command(meta: dict, row: str, seed: int) -> str:
    """The runner's command that trains this one run (row or variant, seed) again, into the
    folder it came from (where it is finished, it is read back): for Table 1 the row (a
    control row: its base row with --control), for a study every variant at that seed."""
    if meta.get("study"):
        study = meta["study"]
        return (f"python -m course_utils.refstudy {study} --seeds 1 --first-seed {seed} --jobs 1 "
                f"--out {_rel_out(meta, f'build/reference/{study}')}")
    base, control = (row[:-len("_control")], True) if row.endswith("_control") else (row, False)
    flags = "".join(f" --{k.replace('_', '-')} {v}" for k, v in sorted((meta.get("overrides") or {}).items())
                    if k in ("epochs", "dataset", "device", "data_root") and v is not None)
    return (f"python -m course_utils.ablate table1 --mode {meta.get('mode', 'reference')} --rows {base} "
            f"--seeds 1 --first-seed {seed} --control {base if control else 'none'} --jobs 1"
            f"{flags} --out {_rel_out(meta, 'build/reference/table1')}")


def _run_results(meta: dict, row: str, seed: int, summary: dict, run_dir: str,
                 before: Optional[dict] = None) -> dict:
    """results.json of one published run. Its provenance is the run's own: when it
    finished and the commit of the code that trained it (the commit when the process that
    finished it started training, "-dirty" where course_utils/ differed), on how many
    threads (summary.json records these since 2026-12-07; for a run trained before, the
    date and commit of the command that collected it, said so in date_note), the runner's
    command for this row and seed, and the training command itself. `before`: the run's
    results.json as published earlier."""
    prov = dict(meta.get("provenance") or {})
    prov.pop("command", None)
    dev = summary.get("device") or {}
    cfg = summary.get("config") or {}
    if summary.get("finished"):
        prov.update(date=summary["finished"], git_commit=summary.get("git_commit"))
    else:
        old = (before or {}).get("provenance") or {}
        if old.get("date"):
            prov.update(date=old["date"], git_commit=old.get("git_commit"))
        prov["date_note"] = ("date and git_commit: when the runner's command that trained or "
                             "collected this run started (its summary.json does not say when "
                             "the run finished)")
    prov.update(cpu_threads=dev.get("cpu_threads", prov.get("cpu_threads")),
                torch=dev.get("torch", prov.get("torch")),
                seed=cfg.get("seed"), table_seed=seed, precision=summary.get("precision"),
                command=run_command(meta, row, seed),
                run_command=f"python -m course_utils.train --config {run_dir}/config.json "
                            f"--out {run_dir} --resume")
    return {"row": row, "seed": seed, "status": summary.get("status"),
            "best_val_acc": summary.get("best_val_acc"),
            "train_acc_at_best": summary.get("train_acc_at_best"),
            "final_val_acc": summary.get("final_val_acc"), "test_acc": summary.get("test_acc"),
            "test_images": summary.get("test_images"), "epochs_run": summary.get("epochs_run"),
            "train_seconds_total": summary.get("train_seconds_total"),
            "data": (summary.get("data") or {}).get("label"), "provenance": prov}


def _sample_test(model, config) -> Optional[dict]:
    """The model on every test image of the CIFAR-10 sample in git (what CI can check);
    None for a run on another dataset."""
    from .data import get_loaders
    from .train import evaluate

    if config.dataset != "cifar10":
        return None
    data = get_loaders("cifar10", mode="quick", seed=0, train_size=10, val_size=10, test_size=2000)
    return evaluate(model, data.test)


def _weights(run_dir: Path, summary: dict) -> dict:
    """The run's final model weights (what test_acc was measured with), how to rebuild it,
    and its accuracy on the sample's test images."""
    import torch

    from .checkpoint import load_checkpoint
    from .train import make_data, make_model

    ck = load_checkpoint(run_dir / "checkpoint.pt")
    cfg = summary.get("config") or {}
    state = {k: v.detach().clone().contiguous() for k, v in ck["model"].items()}
    config = _config(run_dir)
    info = make_data(config).info   # the data the run trained on (so: at hand when publishing)
    model = make_model(config, info.num_classes, info.in_chans)
    model.load_state_dict(state)
    sample = _sample_test(model, config)
    return {"model": state, "model_name": cfg.get("model"), "model_args": cfg.get("model_args") or {},
            "test_acc": summary.get("test_acc"), "test_images": summary.get("test_images"),
            "sample_test_acc": None if sample is None else sample["acc"],
            "sample_test_images": None if sample is None else sample["images"],
            "torch": str(torch.__version__)}


def publish(runs, into, *, checkpoints: Sequence[str] = (), refresh_provenance: bool = False,
            log=print) -> dict:
    """Copy a results folder's finished runs into `into` (see the module docstring);
    returns {"runs": n, "checkpoints": [paths], "bytes": total}. Nothing is written
    unless every named checkpoint fits the size limits."""
    import io

    import torch

    from .files import atomic_write_bytes

    runs, into = Path(runs), Path(into)
    res = load_results(runs)   # refuses a folder without provenance
    meta = res["meta"]
    blobs = {}
    for name in checkpoints:
        row, _, seed = name.partition("/")
        run_dir = runs / row / seed
        summary = json.loads((run_dir / "summary.json").read_text())
        buf = io.BytesIO()
        if not (run_dir / "checkpoint.pt").is_file() and (run_dir / "model.pt").is_file():
            buf.write((run_dir / "model.pt").read_bytes())   # a published run copied back
        else:
            torch.save(_weights(run_dir, summary), buf)
        if buf.tell() > MAX_CHECKPOINT_BYTES:
            raise ValueError(f"checkpoint {name!r}: {buf.tell():,} bytes; allowed: at most "
                             f"{MAX_CHECKPOINT_BYTES:,} (the repository's limit for a lesson's weights)")
        blobs[name] = buf.getvalue()
    if sum(map(len, blobs.values())) > MAX_ALL_CHECKPOINTS:
        raise ValueError(f"checkpoints {sorted(blobs)}: {sum(map(len, blobs.values())):,} bytes "
                         f"in all; allowed: at most {MAX_ALL_CHECKPOINTS:,}")
    n = 0
    for summary_path in sorted(runs.glob("*/seed*/summary.json")):
        d = summary_path.parent
        summary = json.loads(summary_path.read_text())
        if summary.get("status") not in DONE:
            continue
        rel = f"{d.parent.name}/{d.name}"
        dest = into / rel
        # a run published before, unchanged since: its provenance (the invocation that
        # trained it) stays as it was, whichever invocation publishes now
        same = ((dest / "results.json").is_file() and (dest / "summary.json").is_file()
                and (dest / "summary.json").read_text() == summary_path.read_text())
        before = json.loads((dest / "results.json").read_text()) if same else None
        dest.mkdir(parents=True, exist_ok=True)
        for f in RUN_FILES:
            atomic_write_text(dest / f, (d / f).read_text())
        seed = int(d.name.removeprefix("seed"))
        if not same or refresh_provenance:
            atomic_write_text(dest / "results.json", json.dumps(
                _run_results(meta, d.parent.name, seed, summary, rel, before), indent=2) + "\n")
        n += 1
    for name, blob in blobs.items():
        atomic_write_bytes(into / name / "model.pt", blob)
    for f in ("results.json", "results.md", "results.csv", "table1.png"):
        if (runs / f).is_file():
            atomic_write_bytes(into / f, (runs / f).read_bytes())
    if res["rows"] and "name" in res["rows"][0]:   # a Table 1 folder: every stored run counts
        rebuild_table(into, dict(meta, out=str(into)))
    total = sum(p.stat().st_size for p in into.rglob("*") if p.is_file())
    log(f"[reference] {n} runs and {len(blobs)} checkpoint(s) into {into} ({total:,} bytes)")
    return {"runs": n, "checkpoints": [str(into / k / "model.pt") for k in blobs], "bytes": total}


def _config(run_dir: Path, data_root=None):
    """The run's TrainConfig, from its config.json (no folder, nothing written)."""
    from .config import TrainConfig

    cfg = json.loads((run_dir / "config.json").read_text())
    kw = {k: v for k, v in cfg.items() if k in TrainConfig.__dataclass_fields__}
    kw.update(out=None, resume=False, overwrite=False, progress=False, verbose=False)
    if data_root is not None:
        kw["data_root"] = str(data_root)
    return TrainConfig(**kw)


def check_checkpoint(run_dir, data_root=None, split: str = "test") -> dict:
    """Rebuild a stored checkpoint's model from its run's config, load its weights
    (weights_only) and evaluate it: split "test", on the run's test split (for the
    reference runs the full CIFAR-10 test set), or "sample", on the test images of the
    CIFAR-10 sample in git; {"stored", "measured", "images"}."""
    import torch

    from .train import evaluate, make_data, make_model

    if split not in ("test", "sample"):
        raise ValueError(f"split: {split!r}; allowed: 'test', 'sample'")
    run_dir = Path(run_dir)
    ck = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    config = _config(run_dir, data_root)
    if split == "sample":
        model = make_model(config, 10, 3)
        model.load_state_dict(ck["model"])
        m = _sample_test(model, config)
        return {"stored": ck.get("sample_test_acc"), "measured": m and m["acc"],
                "images": m and m["images"]}
    data = make_data(config)
    model = make_model(config, data.info.num_classes, data.info.in_chans)
    model.load_state_dict(ck["model"])
    m = evaluate(model, data.test)
    return {"stored": ck["test_acc"], "measured": m["acc"], "images": m["images"]}


class _StopAfterFirst(Exception):
    pass


def first_epoch(run_dir, data_root=None) -> dict:
    """Train the first epoch of a stored run again from its config.json (in this process,
    nothing written) and return {"stored": first metrics line, "measured": this one}."""
    from .train import run as train_run

    run_dir = Path(run_dir)
    stored = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    seen = {}

    class Stop:   # a callback: fit calls the hooks it has (course_utils.callbacks)
        def on_epoch_end(self, record, history):
            seen.update(record)
            raise _StopAfterFirst

    try:
        train_run(_config(run_dir, data_root), callbacks=[Stop()])
    except _StopAfterFirst:
        pass
    return {"stored": stored, "measured": seen}


def show(name_or_folder) -> str:
    p = Path(name_or_folder)
    folder = p if p.is_dir() else REFERENCE_DIR / str(name_or_folder)
    return (folder / "results.md").read_text()


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_utils.reference",
                                 description="Publish, show and check the stored reference results.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish", help="copy a results folder's finished runs into the repository")
    p.add_argument("runs")
    p.add_argument("into")
    p.add_argument("--checkpoint", action="append", default=[], metavar="ROW/seedK",
                   help="also store this run's final weights (at most 1 MB)")
    p.add_argument("--refresh-provenance", action="store_true",
                   help="rewrite the results.json of runs published before as well (their date "
                        "and commit are kept where summary.json does not record them)")
    p = sub.add_parser("show", help="print a stored folder's results.md")
    p.add_argument("folder")
    p = sub.add_parser("first-epoch", help="train a stored run's first epoch again and compare")
    p.add_argument("run_dir")
    p.add_argument("--data-root", default=None)
    p = sub.add_parser("check-checkpoints", help="re-evaluate every stored checkpoint of a folder")
    p.add_argument("folder")
    p.add_argument("--data-root", default=None)
    a = ap.parse_args(argv)
    if a.command == "publish":
        publish(a.runs, a.into, checkpoints=a.checkpoint, refresh_provenance=a.refresh_provenance)
    elif a.command == "show":
        print(show(a.folder))
    elif a.command == "first-epoch":
        r = first_epoch(a.run_dir, a.data_root)
        bad = 0
        for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
            s, m = r["stored"].get(k), r["measured"].get(k)
            same = s is not None and m is not None and abs(s - m) <= 1e-6 * max(1.0, abs(s))
            bad += not same
            print(f"{k:10s} stored {s!r:>22}  now {m!r:>22}  {'same' if same else 'DIFFERENT'}")
        return 1 if bad else 0
    else:
        bad = 0
        for ck in sorted(Path(a.folder).glob("*/seed*/model.pt")):
            r = check_checkpoint(ck.parent, a.data_root)
            same = r["stored"] == r["measured"]
            bad += not same
            print(f"{ck.parent}: stored {r['stored']!r}, measured {r['measured']!r} on "
                  f"{r['images']} test images: {'same' if same else 'DIFFERENT'}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
