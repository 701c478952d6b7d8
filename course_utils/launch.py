"""Ablation rows as cluster jobs: Slurm through submitit, and the state of a results folder.

    python -m course_utils.ablate table1 --mode full --launcher slurm --partition gpu \\
        --gpus-per-row 1 --time 12:00:00 --out runs/table1_full
    python -m course_utils.ablate status runs/table1_full

Each (row, seed) that has not finished becomes one Slurm job (all of them one job array,
``--jobs N`` running at most N at a time) whose only work is :func:`runs.run_one` on the
run's folder with resume: the same engine, files and folder layout as a row run on this
machine, so ``load_results`` and lesson 07 read the folder unchanged. The submitting
command waits and writes the results as each job finishes (``--no-wait``: it submits and
returns; ``ablate status OUT`` shows the jobs, the same command later collects them).

What survives what:

- a job that dies (scancel, node failure, an error): the same command again reads the
  finished runs back and submits the others again; each resumes from its checkpoint.pt;
- a job about to reach its time limit, or preempted with the user signal: submitit's
  checkpoint hook (``RowJob.checkpoint``) requeues it, and it resumes the same way. A row
  longer than the partition's limit thus runs as a chain of jobs.

Each run folder records its job in ``job.json`` (launcher, job id, when, partition, the
earlier job ids); results.json's provenance lists every run's job id. The launcher
``submitit-local`` runs the same jobs through submitit's LocalExecutor as processes of
this machine (no Slurm needed): what the tests run where Slurm cannot.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from .ablate_results import _DONE
from .config import ConfigError, TrainConfig
from .files import atomic_write_text
from .runs import read_back, read_json, run_one, tail

__all__ = ["LAUNCHERS", "ClusterOptions", "RowJob", "cluster_options", "check_cluster",
           "job_states", "run_on_cluster", "run_states", "status_text", "slurm_minutes"]

LAUNCHERS = ("local", "slurm", "submitit-local")
DEFAULT_TIME = "12:00:00"
SLURM_TOOLS = ("sbatch", "squeue", "sinfo", "srun", "scontrol", "scancel")
# Slurm job states (squeue %T, sacct State): waiting to run, running, anything else ended
QUEUED = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED",
          "STOPPED", "RESV_DEL_HOLD"}
RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING"}
ACTIVE = QUEUED | RUNNING


@dataclass
class ClusterOptions:
    """How rows become jobs (the command line's --launcher ... options, checked)."""

    launcher: str = "slurm"  # "slurm" or "submitit-local"
    partition: Optional[str] = None  # None: the cluster's default partition
    gpus_per_row: Optional[int] = 1  # None: ask for no GPU (a CPU partition)
    cpus_per_row: Optional[int] = None  # None: the partition's default
    time: str = DEFAULT_TIME  # each job's time limit, Slurm's format
    extra: dict = field(default_factory=dict)  # more sbatch options (--slurm-arg KEY=VALUE)
    parallelism: Optional[int] = None  # at most this many rows running at once (--jobs)
    wait: bool = True  # wait for the jobs and write the results as each finishes

    def describe(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "wait"}


# --------------------------------------------------------------------------------------
# Options, checked before anything is submitted
# --------------------------------------------------------------------------------------
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def slurm_minutes(value: str) -> Optional[int]:
    """Minutes (rounded up) of a time in Slurm's formats: M, M:S, H:M:S, D-H, D-H:M,
    D-H:M:S; None for "infinite"/"UNLIMITED". Raises ValueError otherwise."""
    v = str(value).strip()
    if v.lower() in ("infinite", "unlimited"):
        return None
    m = _TIME.match(v)
    if not m:
        raise ValueError(v)
    days, a, b, c = m.groups()
    if days is not None:  # D-H, D-H:M, D-H:M:S
        secs = int(days) * 86400 + int(a) * 3600 + int(b or 0) * 60 + int(c or 0)
    elif c is not None:  # H:M:S
        secs = int(a) * 3600 + int(b) * 60 + int(c)
    else:  # M or M:S
        secs = int(a) * 60 + int(b or 0)
    return -(-secs // 60)


def _gpus(value) -> Optional[int]:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        n = value
    elif str(value).strip().lower() == "none":
        return None
    elif str(value).strip().isdigit():
        n = int(str(value).strip())
    else:
        n = -1
    if n is not None and n < 1:
        raise ConfigError("gpus_per_row", value, "allowed: an integer >= 1 (the GPUs each row's "
                          "job asks for), or 'none' for a partition without GPUs (0 is refused: "
                          "a full row would train on CPU cores for days; say 'none' if you mean it)")
    return n


def cluster_options(launcher: str = "local", *, partition=None, gpus_per_row=None,
                    cpus_per_row=None, time=None, slurm_args: Sequence[str] = (),
                    no_wait: bool = False, jobs=None) -> Optional[ClusterOptions]:
    """The launcher options as given on the command line (None: not given), checked for
    their form (what needs the cluster is :func:`check_cluster`). None for the local
    launcher, which takes none of them. Raises ConfigError naming the option."""
    if launcher not in LAUNCHERS:
        raise ConfigError("launcher", launcher, "allowed: " + ", ".join(LAUNCHERS))
    given = {"partition": partition, "gpus_per_row": gpus_per_row, "cpus_per_row": cpus_per_row,
             "time": time, "slurm_arg": list(slurm_args) or None, "no_wait": no_wait or None}
    if launcher == "local":
        for name, value in given.items():
            if value is not None:
                raise ConfigError(name, value, "allowed only with --launcher slurm (or "
                                  "submitit-local): the local launcher runs the rows on this machine")
        return None
    if launcher == "submitit-local":
        for name in ("partition", "slurm_arg"):
            if given[name] is not None:
                raise ConfigError(name, given[name], "allowed only with --launcher slurm")
    gpus = _gpus(gpus_per_row if gpus_per_row is not None else
                 (1 if launcher == "slurm" else None))
    if cpus_per_row is not None and (isinstance(cpus_per_row, bool) or not isinstance(cpus_per_row, int)
                                     or cpus_per_row < 1):
        raise ConfigError("cpus_per_row", cpus_per_row, "allowed: an integer >= 1")
    limit = time if time is not None else DEFAULT_TIME
    try:
        minutes = slurm_minutes(limit)
    except ValueError:
        minutes = 0
    if not minutes:
        raise ConfigError("time", limit, "allowed: a time limit per job in Slurm's format: "
                          "minutes, H:M:S or D-H:M:S (e.g. 12:00:00, 1-00:00:00)")
    extra = {}
    for item in slurm_args:
        key, sep, value = str(item).partition("=")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_-]*", key):
            raise ConfigError("slurm_arg", item, "allowed: KEY=VALUE, an sbatch option without "
                              "its dashes, e.g. account=abc123, qos=normal, constraint=a100")
        extra[key.replace("-", "_")] = value
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ConfigError("jobs", jobs, "allowed: an integer >= 1 (rows running at once)")
    return ClusterOptions(launcher, partition, gpus, cpus_per_row, limit, extra, jobs, not no_wait)


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _partitions() -> dict[str, dict]:
    """The cluster's partitions (sinfo): default, time limit (minutes, None: none), GPUs
    and CPUs of their largest node."""
    try:
        r = _run(["sinfo", "-h", "-a", "-o", "%P|%l|%G|%c"])
    except (OSError, subprocess.SubprocessError) as e:
        raise ConfigError("launcher", "slurm", f"allowed: a cluster that answers (sinfo: {e})") from None
    if r.returncode != 0:
        said = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        raise ConfigError("launcher", "slurm", f"allowed: a cluster that answers; sinfo could not "
                          f"reach one ({said})")
    parts: dict[str, dict] = {}
    for line in r.stdout.splitlines():
        bits = line.strip().split("|")
        if len(bits) != 4:
            continue
        name, limit, gres, cpus = bits
        p = parts.setdefault(name.rstrip("*"), {"default": False, "minutes": None, "gpus": 0,
                                                "cpus": 0, "gres": set()})
        p["default"] |= name.endswith("*")
        try:
            p["minutes"] = slurm_minutes(limit)
        except ValueError:
            pass
        p["gres"].add(gres)
        for m in re.finditer(r"gpu(?::[^:(,]+)*?:(\d+)", gres):
            p["gpus"] = max(p["gpus"], int(m.group(1)))
        if cpus.strip().isdigit():
            p["cpus"] = max(p["cpus"], int(cpus))
    return parts


def check_cluster(opts: ClusterOptions) -> ClusterOptions:
    """What only the cluster can say, before anything is submitted: Slurm's commands are
    here, the partition exists (None: the default one), it has the GPUs and CPUs asked
    for, and --time fits its limit. Fills in the partition. Raises ConfigError."""
    if opts.launcher != "slurm":
        return opts
    missing = [t for t in SLURM_TOOLS if shutil.which(t) is None]
    if missing:
        raise ConfigError("launcher", "slurm", f"Slurm's commands are not on PATH here (missing: "
                          f"{', '.join(missing)}): run this on the cluster's login node, or use "
                          "--launcher local")
    parts = _partitions()
    if opts.partition is None:
        default = [n for n, p in parts.items() if p["default"]]
        if not default:
            raise ConfigError("partition", None, "allowed: one of " + ", ".join(parts)
                              + " (the cluster has no default partition)")
        opts.partition = default[0]
    if opts.partition not in parts:
        raise ConfigError("partition", opts.partition, "allowed: one of the cluster's partitions: "
                          + (", ".join(parts) or "(sinfo lists none)"))
    p = parts[opts.partition]
    if opts.gpus_per_row is not None and opts.gpus_per_row > p["gpus"]:
        gres = ", ".join(sorted(p["gres"]))
        raise ConfigError("gpus_per_row", opts.gpus_per_row, (
            f"allowed: 1-{p['gpus']} (partition {opts.partition} has at most {p['gpus']} GPUs "
            f"per node; sinfo GRES: {gres})") if p["gpus"] else (
            f"allowed: 'none' to run each row on CPU cores, or a partition with GPUs "
            f"(partition {opts.partition} has none; sinfo GRES: {gres})"))
    if opts.cpus_per_row is not None and p["cpus"] and opts.cpus_per_row > p["cpus"]:
        raise ConfigError("cpus_per_row", opts.cpus_per_row, f"allowed: 1-{p['cpus']} (the CPUs "
                          f"of partition {opts.partition}'s largest node)")
    minutes = slurm_minutes(opts.time)
    if p["minutes"] is not None and minutes > p["minutes"]:
        raise ConfigError("time", opts.time, f"allowed: at most partition {opts.partition}'s "
                          f"limit, {p['minutes']} minutes (a row longer than one job is requeued "
                          "and resumes: a shorter --time is fine)")
    return opts


# --------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------
def _note(run_dir: Path, text: str) -> None:
    with open(Path(run_dir) / "log.txt", "a") as f:
        f.write(f"[launch] {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")


class RowJob:
    """One (row, seed) as a cluster job: :func:`runs.run_one` on its folder, resuming from
    its checkpoint; picklable (submitit sends it to the node)."""

    def __init__(self, run_dir: str, config: TrainConfig, force: bool = False,
                 timeout: Optional[float] = None, notebook: Optional[str] = None,
                 kernel: str = "python3") -> None:
        self.run_dir, self.config, self.force = str(run_dir), config, force
        self.timeout, self.notebook, self.kernel = timeout, notebook, kernel

    def __call__(self) -> dict:
        from submitit import JobEnvironment

        env = JobEnvironment()
        try:
            log = (Path(self.run_dir) / "log.txt").read_text(errors="replace")
        except OSError:
            log = ""
        started = f"job {env.job_id} ({env.name()}) on "
        # requeued by the scheduler itself (not through checkpoint()): --force only once
        force = self.force and started not in log
        _note(self.run_dir, started + socket.gethostname())
        # Slurm sends submitit's checkpoint signal (USR2) to every process of the job: the
        # training process ignores it, this one requeues (checkpoint below), the engine resumes
        ignore = functools.partial(signal.signal, getattr(signal, "SIG" + JobEnvironment.USR_SIG),
                                   signal.SIG_IGN)
        res = run_one(Path(self.run_dir), self.config, force, self.timeout,
                      None if self.notebook is None else Path(self.notebook), self.kernel,
                      child_setup=ignore)
        res.pop("summary", None)  # it is in the folder
        return res

    def checkpoint(self, *args, **kwargs):
        """Preempted, or close to the time limit: submitit requeues the job with this. The
        engine's checkpoint.pt holds the last finished epoch; the requeued job resumes it
        (never --force again: that would start the run over)."""
        from submitit.helpers import DelayedSubmission

        _note(self.run_dir, "preempted or at its time limit: requeued, resumes from checkpoint.pt")
        return DelayedSubmission(RowJob(self.run_dir, self.config, False, self.timeout,
                                        self.notebook, self.kernel))


def _executor(opts: ClusterOptions, folder: Path, name: str):
    import submitit

    minutes = slurm_minutes(opts.time)
    if opts.launcher == "submitit-local":
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=10)
        ex.update_parameters(timeout_min=minutes, gpus_per_node=opts.gpus_per_row or 0)
        return ex
    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=10)
    params = dict(job_name=name, partition=opts.partition, time=minutes, stderr_to_stdout=True)
    if opts.gpus_per_row is not None:
        params["gpus_per_node"] = opts.gpus_per_row
    if opts.cpus_per_row is not None:
        params["cpus_per_task"] = opts.cpus_per_row
    if opts.parallelism is not None:
        params["array_parallelism"] = opts.parallelism
    known = set(ex._valid_parameters())
    params.update({k: v for k, v in opts.extra.items() if k in known})
    other = {k.replace("_", "-"): v for k, v in opts.extra.items() if k not in known}
    if other:
        params["additional_parameters"] = other
    ex.update_parameters(**params)
    return ex


# --------------------------------------------------------------------------------------
# Job states
# --------------------------------------------------------------------------------------
def _pid_state(pid: str) -> str:
    """A submitit-local job (its controller's process id): RUNNING while it lives."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except (OSError, ValueError):
        return "ENDED"
    return "ENDED" if stat.rsplit(")", 1)[-1].split()[0] in "ZX" else "RUNNING"


def _slurm_states(ids: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    base = sorted({i.split("_")[0] for i in ids})
    try:
        r = _run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(base)])
        for line in r.stdout.splitlines() if r.returncode == 0 else []:
            jid, _, state = line.strip().partition("|")
            found[jid] = state.split()[0] if state else "UNKNOWN"
        rest = sorted({i.split("_")[0] for i in ids if i not in found})
        if rest and shutil.which("sacct"):  # gone from squeue: the accounting, where kept
            r = _run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(rest)])
            for line in r.stdout.splitlines() if r.returncode == 0 else []:
                jid, _, state = line.strip().partition("|")
                if jid in ids and jid not in found:
                    found[jid] = state.split()[0] if state else "UNKNOWN"
    except (OSError, subprocess.SubprocessError):
        pass
    return found


def job_states(ids: Sequence[str], launcher: str = "slurm") -> dict[str, str]:
    """Each job's state: Slurm's (squeue, then sacct) or RUNNING/ENDED for submitit-local;
    UNKNOWN where the scheduler no longer knows the job."""
    ids = [str(i) for i in ids]
    if launcher == "submitit-local":
        return {i: _pid_state(i) for i in ids}
    found = _slurm_states(ids) if ids and shutil.which("squeue") else {}
    return {i: found.get(i, "UNKNOWN") for i in ids}


# --------------------------------------------------------------------------------------
# Submit and wait
# --------------------------------------------------------------------------------------
@dataclass
class _Watch:
    task: tuple
    job_id: str
    launcher: str
    since: float = field(default_factory=time.time)
    ended_polls: int = 0


def _write_job(run_dir: Path, job, opts: ClusterOptions, old: Optional[dict]) -> dict:
    previous = list((old or {}).get("previous", []))
    if old and old.get("job_id"):
        previous.append({k: old.get(k) for k in ("job_id", "launcher", "submitted")})
    info = {"launcher": opts.launcher, "job_id": str(job.job_id),
            "submitted": time.strftime("%Y-%m-%d %H:%M:%S %z"), "partition": opts.partition,
            "gpus_per_row": opts.gpus_per_row, "cpus_per_row": opts.cpus_per_row,
            "time": opts.time, "log": str(job.paths.stdout), "previous": previous}
    atomic_write_text(run_dir / "job.json", json.dumps(info, indent=2) + "\n")
    return info


def _plan(tasks, force: bool, log) -> tuple[list, list, list]:
    """Split the runs: finished (read back), still queued/running as a job of an
    earlier call (waited for), to submit."""
    done, attach, submit = [], [], []
    olds = {id(t): read_json(Path(t[2].out) / "job.json") for t in tasks}
    by_launcher: dict[str, list[str]] = {}
    for t in tasks:
        old = olds[id(t)]
        if old and old.get("job_id"):
            by_launcher.setdefault(old.get("launcher", "slurm"), []).append(str(old["job_id"]))
    states = {}
    for launcher, ids in by_launcher.items():
        states.update({(launcher, k): v for k, v in job_states(ids, launcher).items()})
    for t in tasks:
        row, seed, cfg = t
        old = olds[id(t)]
        back = None if force else read_back(Path(cfg.out), cfg)
        state = states.get((old.get("launcher", "slurm"), str(old.get("job_id")))) if old else None
        if back is not None:
            done.append((t, back))
        elif state in ACTIVE:
            if force:
                raise ConfigError("force", True, f"job {old['job_id']} of {row.name} seed {seed} is "
                                  "still queued or running: scancel it first, then run again")
            log(f"[ablate] {row.name} seed {seed}: job {old['job_id']} is still {state.lower()}; "
                "waiting for it")
            attach.append(_Watch(t, str(old["job_id"]), old.get("launcher", "slurm")))
        else:
            submit.append((t, old))
    return done, attach, submit


def _submit(submit: list, opts: ClusterOptions, out: Path, force: bool, timeout, notebook,
            kernel, log) -> list[_Watch]:
    if not submit:
        return []
    folder = out / ("_slurm" if opts.launcher == "slurm" else "_submitit")
    ex = _executor(opts, folder, f"ablate-{out.name}")
    fns = []
    for (row, seed, cfg), old in submit:
        run_dir = Path(cfg.out)
        run_dir.mkdir(parents=True, exist_ok=True)
        if force:  # the finished result must not be read back while the new run starts
            (run_dir / "summary.json").unlink(missing_ok=True)
        fns.append(RowJob(str(run_dir), cfg, force, timeout,
                          None if notebook is None else str(Path(notebook).resolve()), kernel))
    try:
        jobs = ex.submit_array(fns)  # one job array on Slurm where there is more than one run
    except RuntimeError as e:  # sbatch said no (submitit's FailedJobError carries its stderr)
        said = (str(e).strip().splitlines() or [type(e).__name__])[-1]
        raise ConfigError("launcher", opts.launcher, f"allowed: jobs that the scheduler accepts; "
                          f"it refused them ({said})") from None
    watches = []
    for ((task, old), job) in zip(submit, jobs):
        info = _write_job(Path(task[2].out), job, opts, old)
        _note(Path(task[2].out), f"submitted as {opts.launcher} job {info['job_id']}"
              + (f" (after job {old['job_id']})" if old and old.get("job_id") else ""))
        watches.append(_Watch(task, info["job_id"], opts.launcher))
    log(f"[ablate] submitted {len(jobs)} {opts.launcher} job(s): "
        + ", ".join(f"{t[0].name}/{Path(t[2].out).name} {w.job_id}" for (t, _), w in zip(submit, watches)))
    return watches


def _ended(w: _Watch, state: str) -> dict:
    """A job that ended without a finished run: noted in its log and job.json (a
    scheduler without accounting forgets the job after a few minutes; status reads it there)."""
    run_dir = Path(w.task[2].out)
    info = read_json(run_dir / "job.json") or {}
    if str(info.get("job_id")) == w.job_id:
        info.update(state=state, ended=time.strftime("%Y-%m-%d %H:%M:%S %z"))
        atomic_write_text(run_dir / "job.json", json.dumps(info, indent=2) + "\n")
    _note(run_dir, f"job {w.job_id} ended ({state.lower()}) before the run finished; "
          "the same command again resubmits it, resuming")
    why = tail(run_dir / "log.txt", 4) or tail(Path(info.get("log", "")), 4)
    return {"status": "failed", "summary": read_json(run_dir / "summary.json"), "reused": False,
            "seconds": time.time() - w.since, "job_id": w.job_id,
            "error": f"job {w.job_id} {state.lower()}: {why}"}


def _wait(watches: list[_Watch], record: Callable, log) -> None:
    t0 = time.time()
    while watches:
        time.sleep(min(30.0, 1.0 + (time.time() - t0) / 10))
        states: dict[tuple, str] = {}
        for launcher in {w.launcher for w in watches}:
            ids = [w.job_id for w in watches if w.launcher == launcher]
            states.update({(launcher, k): v for k, v in job_states(ids, launcher).items()})
        for w in list(watches):
            state = states.get((w.launcher, w.job_id), "UNKNOWN")
            back = read_back(Path(w.task[2].out), w.task[2])
            if back is not None:
                record(w.task, dict(back, reused=False, seconds=time.time() - w.since,
                                    job_id=w.job_id))
                watches.remove(w)
                continue
            # ended without a finished run: seen twice, so that a file the job wrote last
            # (a shared file system may show it late) or a requeue in progress is not missed
            w.ended_polls = 0 if state in ACTIVE else w.ended_polls + 1
            if w.ended_polls >= 2:
                record(w.task, _ended(w, state))
                watches.remove(w)


def _devices(meta: dict, summary: Optional[dict]) -> None:
    """results.json's provenance names the device the jobs trained on (not this host's)."""
    dev = (summary or {}).get("device") or {}
    if not dev.get("device"):
        return
    prov = meta["provenance"]
    seen = set(prov.get("job_devices", []))
    seen.add(dev["device"] + (f" ({dev['name']})" if dev.get("name") else ""))
    prov["job_devices"] = sorted(seen)
    prov["device"] = ", ".join(sorted({d.split(" (")[0] for d in seen}))
    if dev.get("type") == "cuda":
        prov["gpu"] = dev.get("name")


def run_on_cluster(tasks: list, opts: ClusterOptions, out: Path, *, force: bool,
                   timeout: Optional[float], notebook, kernel: str, record: Callable,
                   meta: dict, log: Callable[[str], None] = print) -> bool:
    """Run ablation tasks ((row, seed, TrainConfig) with config.out the run folder) as
    jobs: finished runs are read back, a job still queued or running from an earlier
    call is waited for, the rest are submitted (one array). `record(task, result)` is the
    runner's (it writes the results); `meta` gets the launcher and job ids. Returns
    whether every run was collected (False with opts.wait off, while jobs are out)."""
    done, attach, submit = _plan(tasks, force, log)
    watches = attach + _submit(submit, opts, out, force, timeout, notebook, kernel, log)
    jobs = {}
    for row, seed, cfg in tasks:
        info = read_json(Path(cfg.out) / "job.json") or {}
        if info.get("job_id"):
            jobs[f"{row.name}/{Path(cfg.out).name}"] = info["job_id"]
    meta["launcher"] = opts.describe()
    meta["provenance"].update(launcher=opts.launcher, jobs=jobs, device=f"{opts.launcher} jobs")

    def note(task, res):  # the runner's record, with the device the job trained on
        _devices(meta, res.get("summary"))
        record(task, res)

    for task, res in done:
        note(task, res)
    if not opts.wait:
        if watches:
            log(f"[ablate] not waiting: `python -m course_utils.ablate status {out}` shows the "
                "jobs; the same command again collects the finished runs")
        return not watches
    try:
        _wait(watches, note, log)
    except KeyboardInterrupt:
        log(f"[ablate] interrupted: the jobs go on; `python -m course_utils.ablate status {out}`, "
            "and the same command again collects them")
        raise
    return True


# --------------------------------------------------------------------------------------
# Status of a results folder (any launcher)
# --------------------------------------------------------------------------------------
def _run_dirs(out: Path) -> list[tuple[str, int, Path]]:
    found = {}
    res = read_json(out / "results.json") or {}
    first = int((res.get("meta") or {}).get("first_seed") or 0)
    for r in res.get("rows", []):
        for s in range(first, first + int(r.get("seeds") or 0)):
            found[(r["name"], s)] = out / r["name"] / f"seed{s}"
    for d in sorted(out.glob("*/seed*")):
        if d.is_dir() and d.name[4:].isdigit() and not d.parent.name.startswith("_"):
            found.setdefault((d.parent.name, int(d.name[4:])), d)
    return [(name, seed, d) for (name, seed), d in found.items()]


def _training_here(run_dir: Path) -> bool:
    """Whether a process of this machine trains in run_dir (a local-launcher run)."""
    needle = str(run_dir.resolve()).encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmd and (b"course_utils.train" in cmd or b"papermill" in cmd
                                   or b"course_utils.kernelpoll" in cmd):
                return True
    return False


def _epochs(run_dir: Path, config: Optional[dict]) -> str:
    try:
        n = sum(1 for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln.strip())
    except OSError:
        n = 0
    total = (config or {}).get("epochs")
    return f"{n}/{total}" if total else str(n)


def run_states(out) -> list[dict]:
    """Every run of a results folder: row, seed, state (done, queued, running, failed,
    not started), epochs (done/planned), job id and a detail (for a failed run the tail
    of its log). Works for folders of every launcher."""
    out = Path(out)
    runs = _run_dirs(out)
    jobs = {(n, s): read_json(d / "job.json") for n, s, d in runs}
    states: dict[tuple, str] = {}
    for launcher in {j.get("launcher", "slurm") for j in jobs.values() if j}:
        ids = [str(j["job_id"]) for j in jobs.values() if j and j.get("launcher", "slurm") == launcher]
        states.update({(launcher, k): v for k, v in job_states(ids, launcher).items()})
    rows = []
    for name, seed, d in runs:
        summary, config, job = read_json(d / "summary.json"), read_json(d / "config.json"), jobs[(name, seed)]
        jid = str(job["job_id"]) if job else None
        jstate = states.get((job.get("launcher", "slurm"), jid)) if job else None
        if jstate in ("UNKNOWN", "ENDED") and job.get("state"):
            jstate = job["state"]  # as the submitting command saw it end
        status = (summary or {}).get("status")
        if status in _DONE:
            acc = summary.get("best_val_acc")
            state, detail = "done", status.replace("_", " ") + (
                f", best val acc {100 * acc:.2f}%" if acc is not None else "")
        elif jstate in QUEUED:
            state, detail = "queued", f"job {jstate.lower()}"
        elif jstate in RUNNING or (job is None and _training_here(d)):
            state, detail = "running", (f"job {jstate.lower()}" if jstate else "a process here")
        elif job is not None or status == "failed" or (d / "log.txt").exists():
            why = tail(d / "log.txt", 3) or tail(Path((job or {}).get("log", "")), 3)
            state = "failed"
            detail = (f"job {jstate.lower()}: " if jstate else "") + (why or "no log")
        else:
            state, detail = "not started", ""
        rows.append({"row": name, "seed": seed, "state": state, "epochs": _epochs(d, config),
                     "job": jid, "launcher": (job or {}).get("launcher", "local"),
                     "detail": detail})
    return rows


def status_text(out) -> str:
    """`python -m course_utils.ablate status OUT`: one line per run."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a folder: expected an ablation's --out folder")
    rows = run_states(out)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    head = f"{out}: {len(rows)} run(s)" + ("" if not rows else ": " + ", ".join(
        f"{n} {s}" for s, n in counts.items()))
    width = max([len(r["row"]) for r in rows] + [3])
    lines = [head, f"{'row':{width}}  seed  {'state':11}  epochs  {'job':10}  detail"]
    for r in rows:
        lines.append(f"{r['row']:{width}}  {r['seed']:4}  {r['state']:11}  {r['epochs']:6}  "
                     f"{(r['job'] or '-'):10}  {r['detail']}")
    return "\n".join(lines) + "\n"
