"""Ablation rows as cluster jobs (course_utils/launch.py), tested for real.

Where Debian's slurm-wlm and munge are installed and the tests run as root (CI: `make
test` installs them through `make slurm`), the module starts a one-node Slurm on
127.0.0.1 (munged, slurmctld, slurmd, with their state, spool, socket and non-default
ports in a temporary folder), submits smoke rows through `--launcher slurm`, kills one
job with scancel and preempts another with submitit's signal, and stops every daemon it
started. Elsewhere the same tests run the same path through submitit's LocalExecutor
(`--launcher submitit-local`), and test_a_real_slurm_cluster_ran_here says why
(COURSE_TEST_SLURM=0 asks for that path where Slurm could run).
Synthetic data, smoke mode, one thread per run: about a minute and a half on 2 cores.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import pytest

from course_utils.ablate import load_results, main
from course_utils.checkpoint import read_metrics
from course_utils.launch import run_states, slurm_minutes, status_text

REPO = Path(__file__).resolve().parents[1]
SBIN = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
CLIENTS = ("sbatch", "squeue", "sinfo", "srun", "scontrol", "scancel")


def _which(name: str) -> Optional[str]:
    return shutil.which(name, path=SBIN)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


try:
    _PRCTL = ctypes.CDLL(None).prctl  # looked up here: the forked child only calls it
except (OSError, AttributeError):
    _PRCTL = None


def _die_with_parent() -> None:
    """In a daemon started here: SIGTERM when the test process dies (no daemon outlives it)."""
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def _stepds() -> set[int]:
    found = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == "slurmstepd":
                    found.add(int(d.name))
            except OSError:
                pass
    return found


class LoopbackSlurm:
    """A one-node Slurm cluster on 127.0.0.1 that this test process starts and stops."""

    def __init__(self) -> None:
        self.dir: Optional[Path] = None
        self.conf: Optional[Path] = None
        self.procs: dict[str, subprocess.Popen] = {}
        self.host = socket.gethostname().split(".")[0]
        self.stepds_before = set()

    @staticmethod
    def why_not() -> Optional[str]:
        if os.environ.get("COURSE_TEST_SLURM") == "0":
            return "COURSE_TEST_SLURM=0 asks for no cluster"
        if sys.platform != "linux":
            return f"Slurm runs on Linux (this is {sys.platform})"
        missing = [b for b in ("munged", "slurmctld", "slurmd") + CLIENTS if _which(b) is None]
        if missing:
            return (f"Debian's slurm-wlm and munge are not installed (missing: {', '.join(missing)}); "
                    "`make test` installs them where apt may be used (`make slurm`)")
        if os.geteuid() != 0:
            return "not root: a one-node slurmd that runs jobs needs root (CI runs as root)"
        return None

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.dir / f"{name}.out", "wb")
        env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.procs[name] = subprocess.Popen([_which(name)] + args, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, preexec_fn=_die_with_parent)
        log.close()

    def _logs(self) -> str:
        out = []
        for p in sorted(self.dir.glob("*.out")) + sorted(self.dir.glob("*.log")):
            lines = p.read_text(errors="replace").splitlines()[-4:]
            out.append(f"{p.name}: " + " | ".join(lines))
        return "; ".join(out)

    def _munge(self) -> str:
        munge = self.dir / "munge"
        munge.mkdir(mode=0o755)
        key = munge / "munge.key"
        try:
            key.write_bytes(Path("/etc/munge/munge.key").read_bytes())
        except OSError:
            key.write_bytes(os.urandom(1024))  # munged's own key: only this cluster uses it
        key.chmod(0o600)
        sock = munge / "munge.socket"
        self._spawn("munged", ["-F", f"--key-file={key}", f"--socket={sock}",
                               f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}",
                               f"--seed-file={munge / 'munged.seed'}"])
        for _ in range(100):
            if sock.exists():
                return str(sock)
            if self.procs["munged"].poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"munged did not start: {self._logs()}")

    def start(self) -> None:
        self.stepds_before = _stepds()
        self.dir = Path(tempfile.mkdtemp(prefix="course-slurm-"))
        self.dir.chmod(0o755)  # munged checks that its socket's folder is reachable
        sock = self._munge()
        for sub in ("state", "spool"):
            (self.dir / sub).mkdir()
        ctld, slurmd = _free_ports(2)
        self.conf = self.dir / "slurm.conf"
        d = self.dir
        self.conf.write_text("\n".join([
            "ClusterName=coursekit", f"SlurmctldHost={self.host}(127.0.0.1)",
            "SlurmUser=root", "SlurmdUser=root", f"SlurmctldPort={ctld}", f"SlurmdPort={slurmd}",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={sock}",
            f"StateSaveLocation={d / 'state'}", f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'slurmctld.pid'}", f"SlurmdPidFile={d / 'slurmd.pid'}",
            f"SlurmctldLogFile={d / 'slurmctld.log'}", f"SlurmdLogFile={d / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
            "ReturnToService=2", "MpiDefault=none", "MailProg=/bin/true", "KillWait=5",
            "MinJobAge=600", "SlurmctldTimeout=30", "SlurmdTimeout=30",
            f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory=1000 "
            "State=UNKNOWN",
            f"PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP", ""]))
        self._spawn("slurmctld", ["-D", "-f", str(self.conf)])
        self._spawn("slurmd", ["-D", "-f", str(self.conf), "-N", self.host])
        env = dict(os.environ, SLURM_CONF=str(self.conf))
        state = ""
        for i in range(60):
            time.sleep(0.5)
            r = subprocess.run(["sinfo", "-h", "-n", self.host, "-o", "%T"], capture_output=True,
                               text=True, env=env, timeout=30)
            state = r.stdout.strip() or r.stderr.strip()
            if state == "idle":
                return
            if i == 20 and state.startswith(("drain", "down")):
                subprocess.run(["scontrol", "update", f"NodeName={self.host}", "State=RESUME"],
                               env=env, capture_output=True, timeout=30)
            if any(p.poll() is not None for p in self.procs.values()):
                break
        raise RuntimeError(f"the node did not come up (sinfo: {state!r}): {self._logs()}")

    def stop(self) -> list[str]:
        """Cancel every job, stop every daemon started here; what is still alive after."""
        env = dict(os.environ, SLURM_CONF=str(self.conf))
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, timeout=30)
            for _ in range(60):
                r = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True,
                                   text=True, timeout=30)
                if r.returncode != 0 or not r.stdout.strip():
                    break
                time.sleep(0.5)
            # a cancelled job leaves the queue before its slurmstepd has finished its
            # cleanup (seen: two steps still there at once): give them time to end while
            # slurmd still answers them; one that outlives this is an orphan
            for _ in range(60):
                if not _stepds() - self.stepds_before:
                    break
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=15)
        alive = [n for n, p in self.procs.items() if p.poll() is None]
        for pid in _stepds() - self.stepds_before:  # a job step that outlived its slurmd
            alive.append(f"slurmstepd {pid}")
            os.kill(pid, signal.SIGKILL)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        return alive


@pytest.fixture(scope="module")
def slurm():
    """A LoopbackSlurm that runs (SLURM_CONF points at it), or why there is none."""
    why = LoopbackSlurm.why_not()
    cluster = LoopbackSlurm()
    if why is None:
        try:
            cluster.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            why = f"Slurm is installed but did not start here: {e}"
    before = os.environ.get("SLURM_CONF")
    if why is None:
        os.environ["SLURM_CONF"] = str(cluster.conf)
    yield cluster if why is None else why
    if before is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = before
    if cluster.procs:
        alive = cluster.stop()
        assert not alive, f"still running after the cluster was stopped: {alive}"


@pytest.fixture(scope="module")
def launcher(slurm) -> str:
    """The path these tests run: real Slurm, or submitit's local executor (and why)."""
    if isinstance(slurm, str):
        print(f"\n[test_slurm] submitit's LocalExecutor runs the launcher's path: {slurm}")
        return "submitit-local"
    print(f"\n[test_slurm] real Slurm: one node {slurm.host} on 127.0.0.1 ({slurm.conf})")
    return "slurm"


def test_a_real_slurm_cluster_ran_here(slurm):
    if isinstance(slurm, str):
        pytest.skip(f"no real Slurm: {slurm}; the launcher's tests ran through submitit's "
                    "LocalExecutor instead (--launcher submitit-local)")
    r = subprocess.run(["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["debug*", "idle"] or "debug*" in r.stdout, r


def _argv(out: Path, rows: list[str], launcher: str, epochs: Optional[int] = None) -> list[str]:
    argv = ["table1", "--mode", "smoke", "--dataset", "synthetic", "--device", "cpu", "--rows",
            *rows, "--seeds", "1", "--out", str(out), "--launcher", launcher, "--time", "10"]
    if launcher == "slurm":
        argv += ["--partition", "debug", "--gpus-per-row", "none"]  # the node has no GPU
    return argv + ([] if epochs is None else ["--epochs", str(epochs)])


def _command(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "course_utils.ablate"] + argv


def _run(argv: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(_command(argv), cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _job(run_dir: Path) -> dict:
    return json.loads((run_dir / "job.json").read_text())


def _until(what: str, check, timeout: float = 120, every: float = 0.3):
    t0 = time.time()
    while time.time() - t0 < timeout:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def _epochs_done(run_dir: Path) -> int:
    try:
        return len(read_metrics(run_dir))
    except (OSError, ValueError):
        return 0


def test_two_rows_as_jobs_land_in_the_local_layout(tmp_path, launcher):
    """Two smoke rows, one job each (one array on Slurm), into the folder layout of a
    local run: load_results reads it, provenance names each run's job, status says done;
    the same command again reads both back and submits nothing."""
    out = tmp_path / "two"
    argv = _argv(out, ["densenet", "dense2net"], launcher)
    t0 = time.time()
    r = _run(argv)
    first = time.time() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"submitted 2 {launcher} job(s)" in r.stdout
    res = load_results(out)
    assert [row["status"] for row in res["rows"]] == ["ok", "ok"]
    prov = res["meta"]["provenance"]
    assert prov["launcher"] == launcher and prov["device"] == "cpu"
    assert prov["command"].startswith("python -m course_utils.ablate table1")
    ids = {}
    for name in ("densenet", "dense2net"):
        run_dir = out / name / "seed0"
        job = _job(run_dir)
        ids[name] = job["job_id"]
        assert prov["jobs"][f"{name}/seed0"] == job["job_id"] and job["launcher"] == launcher
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
        assert f"job {job['job_id']} " in (run_dir / "log.txt").read_text()
        assert len(read_metrics(run_dir)) == 1
    if launcher == "slurm":  # one array: N_0 and N_1
        assert {i.split("_")[0] for i in ids.values()} == {ids["densenet"].split("_")[0]}
        assert all("_" in i for i in ids.values())
    states = {s["row"]: s for s in run_states(out)}
    assert {s["state"] for s in states.values()} == {"done"}
    assert states["dense2net"]["job"] == ids["dense2net"]
    t1 = time.time()
    again = _run(argv)
    assert again.returncode == 0 and again.stdout.count("(read back)") == 2, again.stdout[-2000:]
    assert "submitted" not in again.stdout.split("# ")[0]
    assert {n: _job(out / n / "seed0")["job_id"] for n in ids} == ids
    print(f"[test_slurm] {launcher}: two rows in {first:.0f} s, read back in {time.time() - t1:.0f} s")


def _kill(launcher: str, job_id: str) -> None:
    if launcher == "slurm":
        subprocess.run(["scancel", job_id], check=True, timeout=30)
    else:  # the job's controller, as LocalJob.cancel does
        os.kill(int(job_id), signal.SIGINT)


def _task_pid(controller: int) -> Optional[int]:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == controller and b"submitit" in (d / "cmdline").read_bytes():
                    return int(d.name)
            except (OSError, IndexError, ValueError):
                pass
    return None


def _preempt(launcher: str, job_id: str) -> None:
    """The signal a job gets before its time limit or preemption: submitit's USR2."""
    if launcher == "slurm":
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=30)
        # Slurm holds a requeued job for about two minutes: let it start now
        _until("the requeued job to wait", lambda: subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
            timeout=30).stdout.strip() == "PENDING", timeout=60)
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True,
                       timeout=30)
    else:
        os.kill(_until("the job's task", lambda: _task_pid(int(job_id)), 30), signal.SIGUSR2)


def test_a_killed_job_resumes_and_a_preempted_job_requeues(tmp_path, launcher):
    """scancel a row's job after two epochs: the command reports the row failed (with its
    log), status says so; the same command again resumes it from its checkpoint. Then
    the scheduler's preemption signal: the job requeues itself and resumes again. The
    metrics file ends with every epoch once, the epochs before the kill unchanged."""
    out = tmp_path / "kill"
    run_dir = out / "densenet" / "seed0"
    argv = _argv(out, ["densenet"], launcher, epochs=6)
    first = subprocess.Popen(_command(argv), cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        _until("two epochs", lambda: _epochs_done(run_dir) >= 2)
        killed = _job(run_dir)["job_id"]
        _kill(launcher, killed)
        said = first.communicate(timeout=120)[0]
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 1 and f"job {killed} " in said and "failed" in said, said[-2000:]
    before = read_metrics(run_dir)
    assert 2 <= len(before) < 6
    (state,) = run_states(out)
    assert state["state"] == "failed" and state["epochs"] == f"{len(before)}/6", state
    assert state["job"] == killed and "epoch" in state["detail"]
    second = subprocess.Popen(_command(argv), cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        _until("the new job's epochs", lambda: _job(run_dir)["job_id"] != killed
               and _epochs_done(run_dir) >= len(before) + 1)
        resumed = _job(run_dir)["job_id"]
        assert run_states(out)[0]["state"] == "running"
        _until("an epoch more", lambda: _epochs_done(run_dir) >= len(before) + 2)
        preempted_after = _epochs_done(run_dir)
        _preempt(launcher, resumed)
        said = second.communicate(timeout=240)[0]
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, said[-3000:]
    after = read_metrics(run_dir)
    assert [m["epoch"] for m in after] == [1, 2, 3, 4, 5, 6]  # each epoch once
    assert after[:len(before)] == before  # nothing lost, nothing trained again
    log = (run_dir / "log.txt").read_text()
    assert f"resuming {run_dir / 'checkpoint.pt'} after epoch {len(before)}" in log
    assert "requeued, resumes from checkpoint.pt" in log
    tail = log.split("requeued, resumes from checkpoint.pt")[1]
    assert f"after epoch {preempted_after}" in tail or f"after epoch {preempted_after + 1}" in tail
    job = _job(run_dir)
    assert job["job_id"] == resumed and [p["job_id"] for p in job["previous"]] == [killed]
    res = load_results(out)
    assert res["rows"][0]["status"] == "ok"
    assert res["meta"]["provenance"]["jobs"] == {"densenet/seed0": resumed}
    assert run_states(out)[0]["state"] == "done"


def test_bad_launcher_options_are_refused_before_anything_is_submitted(tmp_path, capsys, slurm):
    """Each bad option exits with status 2 and a message naming it, argparse-style, before
    the results folder is made or a job submitted; a job that sbatch itself refuses
    submits nothing either."""
    def jobs() -> str:
        if isinstance(slurm, str):
            return ""
        return subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i"], capture_output=True,
                              text=True, timeout=30).stdout

    def refused(argv: list[str], option: str) -> str:
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and f"argument {option}: " in err, (argv, err)
        return err

    out = tmp_path / "never"
    base = ["table1", "--mode", "smoke", "--dataset", "synthetic", "--rows", "densenet",
            "--out", str(out)]
    slurm_debug = ["--launcher", "slurm", "--partition", "debug"]
    cases = [(["--launcher", "slurm", "--gpus-per-row", "0"], "--gpus-per-row"),
             (["--launcher", "slurm", "--gpus-per-row", "two"], "--gpus-per-row"),
             (["--partition", "debug"], "--partition"),  # the local launcher takes none
             (["--launcher", "submitit-local", "--partition", "debug"], "--partition"),
             (["--launcher", "slurm", "--time", "soon", "--gpus-per-row", "none"], "--time"),
             (["--launcher", "slurm", "--slurm-arg", "qos", "--gpus-per-row", "none"], "--slurm-arg")]
    if isinstance(slurm, str):  # no cluster answers: said so, naming the launcher
        cases.append((["--launcher", "slurm", "--partition", "gpu"], "--launcher"))
    else:
        cases += [(["--launcher", "slurm", "--partition", "nope", "--gpus-per-row", "none"], "--partition"),
                  (slurm_debug + ["--gpus-per-row", "1"], "--gpus-per-row"),  # the node has no GPU
                  (slurm_debug + ["--gpus-per-row", "none", "--cpus-per-row", "512"], "--cpus-per-row")]
    queued = jobs()
    for extra, option in cases:
        err = refused(base + extra, option)
        if "nope" in extra:  # the message lists what there is
            assert "one of the cluster's partitions: debug" in err
    assert not out.exists() and jobs() == queued  # nothing written, nothing submitted
    if not isinstance(slurm, str):
        refused(base + slurm_debug + ["--gpus-per-row", "none", "--slurm-arg",
                                      "constraint=nosuchfeature"], "--launcher")
        assert jobs() == queued and not (out / "densenet" / "seed0" / "job.json").exists()


def test_time_limits_in_slurms_formats():
    assert [slurm_minutes(t) for t in ("90", "1:30", "12:00:00", "1-00:00:00", "2-3", "0-1:30")] == \
        [90, 2, 720, 1440, 2 * 1440 + 180, 90]
    assert slurm_minutes("infinite") is None and slurm_minutes("UNLIMITED") is None
    for bad in ("soon", "1:00:00:00", "-5", ""):
        with pytest.raises(ValueError):
            slurm_minutes(bad)


def test_status_shows_every_run_whichever_launcher_ran_it(tmp_path, capsys):
    """A results folder by hand: done, failed (its log's tail), a job that was cancelled,
    a run training in a process here (the local launcher), and one not started."""
    out = tmp_path
    rows = [{"name": "densenet", "seeds": 2}, {"name": "dense2net", "seeds": 1},
            {"name": "dense2net_se", "seeds": 1}, {"name": "dense2net_scale8", "seeds": 1}]
    (out / "results.json").write_text(json.dumps({"meta": {}, "rows": rows}))

    def run(name, epochs_done, summary=None, log=None, job=None):
        d = out / name / "seed0"
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"epochs": 3}))
        (d / "metrics.jsonl").write_text("".join(json.dumps({"epoch": i + 1}) + "\n"
                                                 for i in range(epochs_done)))
        if summary:
            (d / "summary.json").write_text(json.dumps(summary))
        if log:
            (d / "log.txt").write_text(log)
        if job:
            (d / "job.json").write_text(json.dumps(job))
        return d

    run("densenet", 3, {"status": "completed", "best_val_acc": 0.5})
    run("dense2net", 1, {"status": "failed"}, log="epoch 1/3 ...\nValueError: scale=5 does not divide 48\n")
    run("dense2net_se", 2, log="epoch 2/3 ...\n", job={"launcher": "slurm", "job_id": "987654",
                                                      "state": "CANCELLED"})
    busy = run("dense2net_scale8", 1, log="epoch 1/3 ...\n")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "course_utils.train", "--out", str(busy)])
    try:
        states = {(s["row"], s["seed"]): s for s in run_states(out)}
        assert main(["status", str(out)]) == 0
        text = capsys.readouterr().out
    finally:
        proc.kill()
        proc.wait()
    assert states[("densenet", 0)]["state"] == "done" and states[("densenet", 0)]["epochs"] == "3/3"
    assert "best val acc 50.00%" in states[("densenet", 0)]["detail"]
    assert states[("densenet", 1)]["state"] == "not started"
    assert states[("dense2net", 0)]["state"] == "failed"
    assert "scale=5 does not divide 48" in states[("dense2net", 0)]["detail"]
    assert states[("dense2net_se", 0)]["state"] == "failed"
    assert states[("dense2net_se", 0)]["detail"].startswith("job cancelled: epoch 2/3")
    assert states[("dense2net_scale8", 0)]["state"] == "running"
    assert text.startswith(f"{out}: 5 run(s): 1 done, 1 not started, 2 failed, 1 running\n")
    assert "987654" in text and "scale=5 does not divide 48" in text
    assert "running" not in status_text(out).split("\n", 1)[1]  # the process is gone now
    for argv in (["status"], ["status", str(out / "nowhere")], ["table1", str(out)]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    capsys.readouterr()
