"""The seeded studies of lessons 02 and 03 at the reference scale (issue 17).

Lesson 02 asks Xception's Fig. 10 question (which activation between the depthwise and
the pointwise step) with :func:`course_utils.models.separable_stack`; lesson 03 sweeps
the Inception spectrum at a matched parameter count with ``spectrum_net``. In quick mode
each lesson trains its study in a minute or two; here the same variants, the same seeds
and the same control are trained once at the reference scale (the Table 1 runs' data:
4,000 class-balanced CIFAR-10 training images, 2,000 validation images carved from the
training set by seed, the whole 10,000-image test set, 20 epochs), stored in
data/reference/<study>/ and shown by the lessons beside their quick run.

    python -m course_utils.refstudy fig10 --out build/reference/fig10
    python -m course_utils.refstudy spectrum --out build/reference/spectrum
    python -m course_utils.reference publish build/reference/fig10 data/reference/fig10

Every (variant, seed) is one run of the training command line in its own process
(:func:`course_utils.runs.run_one`, as the ablation runner does), in
``OUT/<variant>/seed<s>/``; the same command again reads finished runs back and resumes
the others. results.json holds, per variant, the final-epoch accuracies by seed (what
:class:`course_utils.compare.Study` compares in the lessons), the variant chosen on
validation and that variant's test accuracy, measured once; and the provenance.

:func:`load` turns a stored study back into a :class:`~course_utils.compare.Study`
(without models) so that a lesson prints its table, verdicts and curves with the same
code as its quick run.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from . import stats
from .ablate import provenance
from .compare import CONTROL_OFFSET, SeedRun, Study
from .config import ConfigError, TrainConfig
from .files import atomic_write_text
from .runs import read_json, run_one

__all__ = ["STUDIES", "RECIPE", "Variant", "variants", "run_study", "load", "StoredStudy"]

# The reference scale of the Table 1 runs (ablate.MODE_RECIPES["reference"]), with the
# optimiser of the lessons' quick studies (lr 0.1, cosine) and crops and flips
RECIPE = dict(mode="full", dataset="cifar10", train_size=4000, val_size=2000, epochs=20,
              batch_size=64, lr=0.1, schedule="cosine", augment=True, amp="off", threads=1,
              progress=False)


@dataclass(frozen=True)
class Variant:
    label: str                       # as the lesson's quick study names it
    model: str
    model_args: dict = field(default_factory=dict)


def _fig10() -> list[Variant]:
    return [Variant(f"mid_act={a or 'none'}", "separable_stack", {"mid_act": a})
            for a in (None, "relu", "elu")]


SPECTRUM_SEGMENTS = (1, 2, 3, 4, 8, "extreme")   # 2, 16, 32: no width within 5%: left out


def _spectrum() -> list[Variant]:
    """Lesson 03's points: the widths that hold the 64-channel extreme net's parameter count
    within 5%, and the extreme end without its middle ReLU."""
    from .models.spectrum import matched_width, spectrum_params

    target = spectrum_params(64, 64)
    out = []
    for s in SPECTRUM_SEGMENTS:
        width, n = matched_width(target, None if s == "extreme" else s)
        if abs(n / target - 1) > 0.05:
            continue
        if s == "extreme":
            out += [Variant("extreme", "spectrum_net", dict(segments=width, channels=width, mid_act="relu")),
                    Variant("extreme, no mid ReLU", "spectrum_net",
                            dict(segments=width, channels=width, mid_act=None))]
        else:
            out.append(Variant(f"{s} segment" + ("s" if s > 1 else ""), "spectrum_net",
                               dict(segments=s, channels=width, mid_act="relu")))
    return out


STUDIES: dict[str, dict] = {
    "fig10": dict(lesson="02", variants=_fig10, baseline="mid_act=none",
                  title="Xception Fig. 10: the activation between depthwise and pointwise "
                        "(separable_stack)"),
    "spectrum": dict(lesson="03", variants=_spectrum, baseline="1 segment",
                     title="The Inception spectrum at a matched parameter count (spectrum_net)"),
}


def variants(name: str) -> list[Variant]:
    if name not in STUDIES:
        raise ConfigError("study", name, f"allowed: {', '.join(STUDIES)}")
    return STUDIES[name]["variants"]()


def slug(label: str) -> str:
    """A folder name for a label: 'mid_act=none' -> 'mid_act_none'."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def control_label(baseline: str) -> str:
    return f"{baseline} (control: seeds +{CONTROL_OFFSET})"   # compare.Study's name


def _tasks(name: str, out: Path, seeds: Sequence[int], overrides: dict) -> list[tuple]:
    """(label, seed, TrainConfig, control_of) of every run; the control is the baseline
    with seeds s + 1000, stored in <baseline>_control/seed<s> (paired with seed s)."""
    vs = variants(name)
    base = next(v for v in vs if v.label == STUDIES[name]["baseline"])
    tasks = []
    for v, ctl in [(v, None) for v in vs] + [(base, base.label)]:
        label = v.label if ctl is None else control_label(ctl)
        folder = slug(v.label) + ("_control" if ctl else "")
        for s in seeds:
            cfg = TrainConfig(**{**RECIPE, **overrides, "model": v.model,
                                 "model_args": dict(v.model_args),
                                 "seed": s + (CONTROL_OFFSET if ctl else 0),
                                 "out": str(out / folder / f"seed{s}"), "resume": True})
            tasks.append((label, s, cfg, ctl))
    return tasks


def _final(run_dir: Path) -> Optional[dict]:
    """The last metrics line and the summary of a finished run, or None."""
    summary = read_json(run_dir / "summary.json")
    if not summary or summary.get("status") not in ("completed", "early_stopped", "time_limit"):
        return None
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return {"summary": summary, "history": lines}


def _write(name: str, out: Path, tasks, meta: dict) -> dict:
    """results.json and results.md from what is on disk (after every finished run)."""
    rows: dict[str, dict] = {}
    for label, s, cfg, ctl in tasks:
        row = rows.setdefault(label, {"label": label, "folder": Path(cfg.out).parent.name,
                                      "model": cfg.model, "model_args": cfg.model_args,
                                      "control_of": ctl, "val_by_seed": {}, "train_by_seed": {},
                                      "best_val_by_seed": {}, "seconds_by_seed": {}, "params": None})
        done = _final(Path(cfg.out))
        if done is None:
            continue
        last, summary = done["history"][-1], done["summary"]
        row["val_by_seed"][str(s)] = round(100 * last["val_acc"], 4)
        row["train_by_seed"][str(s)] = round(100 * last["train_acc"], 4)
        row["best_val_by_seed"][str(s)] = round(100 * summary["best_val_acc"], 4)
        row["seconds_by_seed"][str(s)] = round(summary.get("train_seconds_total") or 0.0, 1)
        row["params"] = summary.get("params")
        meta.setdefault("data", (summary.get("data") or {}).get("label"))
        meta.setdefault("precision", summary.get("precision"))
    seeds = meta["seeds"]
    complete = all(len(r["val_by_seed"]) == len(seeds) for r in rows.values())
    res = {"meta": dict(meta, complete=complete), "rows": list(rows.values())}
    if complete:   # choose on validation, then the chosen variant's test accuracy, once
        study = _as_study(res)
        chosen = study.choose()
        per_seed = {}
        for label, s, cfg, ctl in tasks:
            if label == chosen:
                per_seed[str(s)] = round(100 * _final(Path(cfg.out))["summary"]["test_acc"], 4)
        m, sd = stats.mean_std(list(per_seed.values()))
        images = _final(Path(tasks[0][2].out))["summary"].get("test_images")
        res["chosen"] = {"label": chosen, "test_by_seed": per_seed, "test_mean": m, "test_std": sd,
                         "test_images": images}
    atomic_write_text(out / "results.json", json.dumps(res, indent=2) + "\n")
    atomic_write_text(out / "results.md", markdown(res))
    return res


def _as_study(res: dict) -> Study:
    """A compare.Study holding the stored final-epoch accuracies (and histories where the
    run folders are at hand), without models or data: table, verdicts, difference,
    choose and groups work; test() returns the stored test result of the chosen variant
    and refuses any other, as it does after a lesson's own test."""
    study = Study.__new__(Study)
    seeds = tuple(int(s) for s in res["meta"]["seeds"])
    study.data, study.seeds, study._train_data, study._tested, study._recipes = None, seeds, None, None, {}
    study.runs, study.controls = {}, {}
    for row in res["rows"]:
        if not row["val_by_seed"]:
            continue
        hist = row.get("histories") or {}
        study.runs[row["label"]] = {
            int(s): SeedRun(row["label"], int(s), v, row["train_by_seed"][s], hist.get(s, []),
                            None, row["seconds_by_seed"].get(s, 0.0))
            for s, v in row["val_by_seed"].items()}
        if row.get("control_of"):
            study.controls[row["label"]] = row["control_of"]
    c = res.get("chosen")
    if c:   # the test split was used once, for this choice: test() returns it, refuses others
        study._tested = (c["label"], {"label": c["label"], "acc": c["test_mean"], "std": c["test_std"],
                                      "per_seed": {int(k): v for k, v in c["test_by_seed"].items()},
                                      "images": c["test_images"]})
    return study


def markdown(res: dict) -> str:
    meta = res["meta"]
    lines = [f"# {meta['title']}", "",
             f"{label(meta)}", ""]
    if not meta.get("complete"):
        lines += ["**Not complete**: some runs have not finished; no variant is chosen yet.", ""]
    study = _as_study(res)
    base = meta["baseline"]
    if base in study.runs and study.runs[base]:
        lines += ["```", study.table(baseline=base), "```", ""]
        lines += [f"- {v}" for v in study.verdicts(baseline=base)]
    if res.get("chosen"):
        c = res["chosen"]
        sd = "" if c["test_std"] is None else f" +- {c['test_std']:.2f}"
        lines += ["", f"Chosen on validation: {c['label']}; its test accuracy, measured once: "
                      f"{c['test_mean']:.2f}{sd} % over {len(c['test_by_seed'])} seeds, "
                      f"{c['test_images']:,} test images."]
    return "\n".join(lines) + "\n"


def recipe_line(recipe: Optional[dict] = None, seeds: int = 3) -> str:
    """The reference scale in one line (what the lessons print above stored results)."""
    from .reference import recipe_text

    return recipe_text(RECIPE if recipe is None else recipe, seeds)


def label(meta: dict) -> str:
    """What a lesson prints above stored results: data, scale, epochs, seeds, device, date."""
    prov = meta.get("provenance") or {}
    seeds = meta.get("seeds") or []
    seed_txt = (f"seeds {seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}") if seeds else "no seeds"
    rec = meta.get("recipe") or {}
    scale = ("reference scale" if rec.get("mode") == "full" else
             f"a {rec.get('mode')}-mode try, not the reference scale")
    return (f"{scale}: {meta.get('data') or rec.get('dataset')}; {rec.get('epochs')} epochs "
            f"at batch {rec.get('batch_size')}, {seed_txt} and a control; "
            f"{meta.get('precision') or 'fp32'} on {prov.get('device')}"
            + (f" ({prov['gpu']})" if prov.get("gpu") else f" ({prov.get('cpu')})" if prov.get("cpu") else "")
            + f", {str(prov.get('date', '?'))[:10]}; git {prov.get('git_commit')}")


def run_study(name: str, *, out, seeds: Sequence[int] = (0, 1, 2), jobs: int = 2,
              overrides: Optional[dict] = None, force: bool = False,
              timeout: Optional[float] = None, log: Callable[[str], None] = print,
              command: Optional[str] = None) -> dict:
    """Train every (variant, seed) of study `name` not finished yet, `jobs` at a time, and
    write results.json/.md after each run; returns the results dict."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError("jobs", jobs, "allowed: an integer >= 1 (runs at a time)")
    seeds = tuple(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError("seeds", seeds, "allowed: one or more integers >= 0")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    overrides = dict(overrides or {})
    tasks = _tasks(name, out, seeds, overrides)
    prov = provenance(command, overrides.get("device", "auto"))
    prov["cpu"] = _cpu_name()
    meta = {"study": name, "lesson": STUDIES[name]["lesson"], "title": STUDIES[name]["title"],
            "baseline": STUDIES[name]["baseline"], "control": control_label(STUDIES[name]["baseline"]),
            "seeds": list(seeds), "recipe": {k: v for k, v in {**RECIPE, **overrides}.items()
                                             if k not in ("progress",)},
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "provenance": prov}
    import threading
    lock = threading.Lock()
    t0 = time.perf_counter()

    def one(task):
        label_, s, cfg, _ = task
        try:
            r = run_one(Path(cfg.out), cfg, force, timeout)
        except Exception as e:  # noqa: BLE001 - a broken run is reported, the others go on
            r = {"status": "failed", "error": f"{type(e).__name__}: {e}", "seconds": 0.0}
        with lock:
            log(f"[refstudy] {name}: {label_} seed {s}: {r['status']}"
                + (" (read back)" if r.get("reused") else f" in {r.get('seconds', 0):.0f} s")
                + (f" - {r['error']}" if r.get("error") else ""))
            _write(name, out, tasks, dict(meta, wall_seconds=time.perf_counter() - t0))
        return r

    log(f"[refstudy] {name}: {len(tasks)} runs ({len(tasks) // len(seeds)} variants incl. the "
        f"control x {len(seeds)} seeds), {jobs} at a time, in {out}")
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, tasks))
    res = _write(name, out, tasks, dict(meta, wall_seconds=time.perf_counter() - t0))
    log(f"[refstudy] {name}: {'complete' if res['meta']['complete'] else 'NOT complete'} "
        f"in {time.perf_counter() - t0:.0f} s: {out / 'results.md'}")
    return res


def _cpu_name() -> Optional[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or None


@dataclass
class StoredStudy:
    """A stored study as a lesson shows it: ``study`` (a compare.Study without models),
    ``chosen`` (label, test accuracy measured once), ``meta`` and ``label``."""
    name: str
    study: Study
    chosen: Optional[dict]
    meta: dict
    folder: Path

    @property
    def label(self) -> str:
        return label(self.meta)


def load(name: str, root=None) -> StoredStudy:
    """The stored study `name` from data/reference/<name> (or `root`/<name>), with each
    run's curve read from its metrics.jsonl; raises reference.ReferenceMissing with the
    reason when it is not there, not complete, or lacks its provenance."""
    from .ablate import PROVENANCE_KEYS
    from .reference import ReferenceMissing, reference_dir

    folder = Path(root or reference_dir()) / name
    path = folder / "results.json"
    if not path.is_file():
        raise ReferenceMissing(f"reference study {name!r} cannot be shown: {path} is not there "
                               f"(it is made by `python -m course_utils.refstudy {name}` and "
                               "`python -m course_utils.reference publish`)")
    try:
        res = json.loads(path.read_text())
        meta = res["meta"]
        res["rows"][0]["val_by_seed"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ReferenceMissing(f"reference study {name!r} cannot be shown: {path} is not a "
                               f"study's results.json ({type(e).__name__}: {e})") from None
    missing = [k for k in PROVENANCE_KEYS if not (meta.get("provenance") or {}).get(k)]
    if missing:
        raise ReferenceMissing(f"reference study {name!r} cannot be shown: {path} lacks its "
                               f"provenance ({', '.join(missing)})")
    if not meta.get("complete"):
        raise ReferenceMissing(f"reference study {name!r} cannot be shown: not every run has "
                               f"finished ({path}); run `python -m course_utils.refstudy {name}` again")
    for row in res["rows"]:
        row["histories"] = {}
        for s in row["val_by_seed"]:
            f = folder / row["folder"] / f"seed{s}" / "metrics.jsonl"
            if f.is_file():
                row["histories"][s] = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    return StoredStudy(name, _as_study(res), res.get("chosen"), meta, folder)


def report(ref: StoredStudy, baseline: str, claims: Sequence[tuple] = (), out=print) -> list[dict]:
    """Print a stored study as a lesson prints its quick one (the label, the table, the
    verdicts, the choice on validation and its test accuracy, measured once), then one line
    per claim ``(variant, compared_with, expected_sign, the paper's finding)``: whether the
    reference scale reproduces it, contradicts it or cannot resolve it (stats.finding).
    Returns [{"variant", "vs", "interval", "finding"}]."""
    s = ref.study
    out(ref.label)
    out(s.table(baseline=baseline))
    out("(mean +- std over the seeds, final epoch; the last column: the paired difference to "
        "the baseline, with its 95% Student t interval)\n")
    for line in s.verdicts(baseline=baseline):
        out(line)
    if ref.chosen:
        c = ref.chosen
        sd = "" if c["test_std"] is None else f" +- {c['test_std']:.2f}"
        out(f"\nchosen on validation: {c['label']}; its test accuracy, measured once: "
            f"{c['test_mean']:.2f}{sd} % over {len(c['test_by_seed'])} seeds, {c['test_images']:,} test images")
    found = []
    if claims:
        out("\nthe paper's findings at the reference scale:")
    for variant, vs, sign, finding in claims:
        iv = s.difference(vs, variant)
        f = stats.finding(iv, sign)
        found.append({"variant": variant, "vs": vs, "interval": iv, "finding": f})
        ci = "" if iv.low is None else f" [{iv.low:+.2f}, {iv.high:+.2f}]"
        out(f"  {f.upper()}: {finding}; {variant} minus {vs}: {iv.mean:+.2f}{ci} points")
    return found


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_utils.refstudy",
                                 description="Train lesson 02's or 03's study at the reference scale.")
    ap.add_argument("study", choices=sorted(STUDIES))
    ap.add_argument("--out", default=None, help="results folder (default build/reference/<study>)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per variant (default 3)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    ap.add_argument("--epochs", type=int, default=None, help="override the recipe's 20 epochs")
    ap.add_argument("--train-size", type=int, default=None)
    ap.add_argument("--val-size", type=int, default=None)
    ap.add_argument("--test-size", type=int, default=None)
    ap.add_argument("--data-mode", default=None, choices=("full", "quick", "smoke"),
                    help="the data's mode (default full: the whole dataset through COURSE_DATA; "
                         "quick and smoke: the sample in git, for a try)")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--force", action="store_true", help="rerun finished runs")
    a = ap.parse_args(argv)
    over = {k: v for k, v in dict(epochs=a.epochs, train_size=a.train_size, val_size=a.val_size,
                                   test_size=a.test_size, mode=a.data_mode, dataset=a.dataset, data_root=a.data_root,
                                   device=a.device).items() if v is not None}
    if a.seeds < 1 or a.first_seed < 0:
        ap.error(f"--seeds {a.seeds} --first-seed {a.first_seed}: allowed: seeds >= 1, first seed >= 0")
    try:
        res = run_study(a.study, out=a.out or f"build/reference/{a.study}",
                        seeds=range(a.first_seed, a.first_seed + a.seeds), jobs=a.jobs,
                        overrides=over, force=a.force,
                        command=" ".join(["python", "-m", "course_utils.refstudy",
                                          *(argv if argv is not None else sys.argv[1:])]))
    except ConfigError as e:
        ap.error(str(e))
    print(markdown(res))
    return 0 if res["meta"]["complete"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
