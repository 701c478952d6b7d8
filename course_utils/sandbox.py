"""Sandbox: run one submitted notebook where it cannot harm the grader or the others.

`classroom grade` runs each sanitized submission as

    bwrap [mounts, namespaces] python -I -m course_utils.sandbox _execute [limits] < notebook

On Linux with bubblewrap (Debian's `bubblewrap`), inside the sandbox:
  * the whole system is mounted read-only (nosuid, nodev), the virtual environment and the
    repository included; the grader's HOME, /root, /home, /run, /mnt, /media, /var/tmp, the
    submissions folder and the grade table's folder are hidden behind empty tmpfs (the
    interpreter, the venv and the repository are mounted back, read-only, where they lie
    under one of them);
  * the only writable places are three private tmpfs of SCRATCH bytes each: HOME
    (/home/student, holding the working folder `work`), /tmp and /dev/shm;
  * no network (--unshare-net: a loopback of its own), its own PID, IPC, UTS and cgroup
    namespaces, a new session (no terminal), --die-with-parent, a cleared environment;
  * an unprivileged user: as root, bwrap keeps only CAP_SETUID/SETGID/SETPCAP and the runner's
    first act is to become uid/gid 65534 (nobody), dropping every capability; as another
    user, bwrap makes a user namespace (no capability, no nested user namespace where
    bwrap can forbid it) and the instructor's own uid runs it;
  * resource limits set by the runner on itself before anything else, inherited by the
    kernel and whatever it starts: data memory per process (RLIMIT_DATA: heap and private
    mappings, MEMORY; RLIMIT_AS would count the 4 GB of address space that importing
    torch reserves), processes and threads of the sandbox user (RLIMIT_NPROC, PROCESSES),
    file size (FILESIZE), CPU seconds per process (CPUTIME), no core dumps.

The runner (`_execute`, trusted code from the read-only venv) reads the notebook from
stdin, runs it with nbclient and writes one JSON line per nbgrader cell to a private copy
of its stdout, the grader's pipe. The kernel gets /dev/null as stdin, stdout and stderr,
and the runner makes itself non-dumpable, so neither the kernel nor anything it starts can
open, trace or write into the runner's pipe (/proc/PID/fd is refused): scores come only
from what the grader reads from that pipe, never from a file. Outputs are capped as they
arrive (at most `keep` bytes per notebook; beyond it only what scoring needs: errors, the
first stderr/stdout output and result of each cell, shortened), and the grader caps what
it reads again. At the timeout the grader SIGKILLs bwrap: its PID namespace and every
process in it die with it.

Without bubblewrap (or on another system) there is no sandbox: `grade` refuses, saying
why and how to get one, unless the instructor passes unsafe=True (make grade UNSAFE=1);
then the runner runs in a private temporary folder with the same limits except the
process limit (it would count every process of the user), and the CSV says so.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SANDBOX_UID = SANDBOX_GID = 65534       # nobody / nogroup
SANDBOX_HOME = "/home/student" if os.path.isdir("/home") else "/tmp/student"
TOKEN_VAR = "COURSE_GRADE_TOKEN"        # marks every process of an UNSAFE run
HIDDEN = ("/root", "/home", "/run", "/mnt", "/media", "/var/tmp")
PASS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "COURSE_DATA", "TZ")
LINE_MAX = 4 << 20                      # bytes of one record line the grader accepts
HOW_TO = ("install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`, which "
          "`make grade` does where apt may be used; Fedora: `sudo dnf install bubblewrap`) "
          "on a Linux machine; or grade without a sandbox, trusting every submission: "
          "make grade ... UNSAFE=1")

_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


class SandboxError(ValueError):
    """A limit given with a bad value; the message names the parameter and what is allowed."""


class SandboxUnavailable(RuntimeError):
    """No sandbox can be made here; the message says why and how to get one."""


def parse_size(name: str, value, minimum: int = 1) -> int:
    """'2G', '512M', '64k' or a number of bytes (>= minimum) -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", str(value), re.I)
    n = int(float(m.group(1)) * _SUFFIX[m.group(2).lower()]) if m else 0
    if isinstance(value, bool) or n < max(1, minimum):
        least = f"at least {minimum / 2**20:g}M" if minimum > 1 else "> 0"
        raise SandboxError(f"{name} must be a size {least} such as 2G, 512M, 64k or a number "
                           f"of bytes; got {value!r}")
    return n


def parse_count(name: str, value, minimum: int = 1) -> int:
    try:
        n = int(str(value).strip())
    except ValueError:
        n = None
    if isinstance(value, bool) or n is None or n < minimum:
        raise SandboxError(f"{name} must be a whole number >= {minimum}; got {value!r}")
    return n


@dataclass(frozen=True)
class Limits:
    memory: int = 4 << 30        # RLIMIT_DATA per process (heap, private mappings), bytes (MEMORY)
    processes: int = 256         # RLIMIT_NPROC: processes + threads of the sandbox (PROCESSES)
    file_size: int = 256 << 20   # RLIMIT_FSIZE, bytes (FILESIZE)
    cpu_time: int = 600          # RLIMIT_CPU per process, seconds (CPUTIME)
    scratch: int = 512 << 20     # size of each writable tmpfs: HOME, /tmp, /dev/shm (SCRATCH)
    keep: int = 1 << 20          # output bytes kept per notebook

    @classmethod
    def parse(cls, memory=None, processes=None, file_size=None, cpu_time=None, scratch=None,
              keep=None) -> "Limits":
        # the minimums: what the runner and a kernel that imports torch need to start
        d, mib = cls(), 1 << 20
        return cls(
            d.memory if memory is None else parse_size("memory (MEMORY)", memory, 512 * mib),
            d.processes if processes is None else parse_count("processes (PROCESSES)", processes, 16),
            d.file_size if file_size is None else parse_size("file size (FILESIZE)", file_size, mib),
            d.cpu_time if cpu_time is None else parse_count("CPU time (CPUTIME)", cpu_time, 10),
            d.scratch if scratch is None else parse_size("scratch (SCRATCH)", scratch, 16 * mib),
            d.keep if keep is None else parse_size("kept output (keep)", keep, 4096))

    def args(self) -> list[str]:
        return ["--memory", str(self.memory), "--processes", str(self.processes),
                "--file-size", str(self.file_size), "--cpu-time", str(self.cpu_time),
                "--keep", str(self.keep)]

    def describe(self) -> str:
        return (f"memory {self.memory / 2**30:g} GiB, {self.processes} processes, files "
                f"{self.file_size / 2**20:g} MiB, CPU {self.cpu_time} s, scratch "
                f"{self.scratch / 2**20:g} MiB")


# --------------------------------------------------------------------------- the command

def _real(p) -> str:
    return os.path.realpath(str(p))


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _mounts(expose, hide) -> list[str]:
    """bwrap options over `--ro-bind / /`: each hidden folder becomes an empty tmpfs and
    each exposed one is mounted back read-only, shallow before deep, with the folders
    leading to it made (0755) inside the tmpfs above it."""
    expose = sorted({_real(p) for p in expose if os.path.exists(p)})
    hide = sorted({_real(p) for p in hide if os.path.isdir(p)} - set(expose) - {"/"})
    ops = [(p.count("/"), 0, p) for p in hide] + [(p.count("/"), 1, p) for p in expose]
    out, tmpfs = [], []
    for _, kind, p in sorted(ops):
        if kind == 0:
            out += ["--tmpfs", p]
            tmpfs.append(p)
            continue
        above = [t for t in tmpfs if _under(p, t) and t != p]
        if not above:
            continue                      # visible already, through / (read-only)
        top = max(above, key=len)
        parts = Path(p).relative_to(top).parts[:-1]
        for i in range(len(parts)):
            out += ["--perms", "0755", "--dir", str(Path(top, *parts[:i + 1]))]
        out += ["--ro-bind", p, p]
    return out


def _bwrap_supports(bwrap: str, option: str) -> bool:
    try:
        r = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return option in r.stdout + r.stderr


@dataclass
class Sandbox:
    """How to start a command in the sandbox (None bwrap: no sandbox, UNSAFE)."""
    limits: Limits = field(default_factory=Limits)
    bwrap: str | None = None
    privileged: bool = False
    hide: tuple = ()
    disable_userns: bool = False

    @property
    def safe(self) -> bool:
        return self.bwrap is not None

    def env(self) -> dict:
        env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin",
                                        "/usr/bin", "/bin"]),
               "HOME": SANDBOX_HOME, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
               "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
        env.update({k: os.environ[k] for k in PASS_ENV if k in os.environ})
        return env

    def command(self, inner: list[str]) -> list[str]:
        """The bwrap command line that runs `inner` (the runner) in the sandbox."""
        size = str(self.limits.scratch)
        expose = [REPO, sys.prefix, sys.base_prefix, Path(sys.executable).parent,
                  os.environ.get("COURSE_DATA") or REPO]
        hide = list(HIDDEN) + [os.path.expanduser("~"), *self.hide]
        argv = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        argv += _mounts(expose, hide)
        scratch = []
        for path, perms in ((SANDBOX_HOME, "0777"), ("/tmp", "1777"), ("/dev/shm", "1777")):
            if path == "/tmp" or not _under(path, "/tmp"):
                argv += ["--perms", perms, "--size", size, "--tmpfs", path]
                scratch.append(path)
        # a venv or repository that lies under /tmp (a CI clone) is mounted back read-only
        # on top of the fresh /tmp, with the folders leading to it made there
        for p in sorted({_real(e) for e in expose if os.path.exists(e)}):
            top = next((t for t in scratch if _under(p, t) and p != t), None)
            if top is None or any(_under(p, q) and q != p for q in {_real(e) for e in expose
                                                                   if os.path.exists(e)}
                                  if _under(q, top) and q != top):
                continue
            parts = Path(p).relative_to(top).parts[:-1]
            for i in range(len(parts)):
                argv += ["--perms", "0755", "--dir", str(Path(top, *parts[:i + 1]))]
            argv += ["--ro-bind", p, p]
        argv += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                 "--unshare-cgroup-try", "--hostname", "sandbox", "--die-with-parent",
                 "--new-session", "--chdir", "/", "--clearenv"]
        if self.privileged:
            argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                     "--cap-add", "CAP_SETPCAP"]
        else:
            argv += ["--unshare-user"] + (["--disable-userns"] if self.disable_userns else [])
        for k, v in self.env().items():
            argv += ["--setenv", k, v]
        return argv + ["--"] + inner

    def runner(self, *args: str) -> list[str]:
        """The runner's command line (inside the sandbox, or bare when UNSAFE)."""
        who = ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_GID)] if self.privileged else []
        nproc = [] if self.safe else ["--no-process-limit"]
        boot = (f"import sys; sys.path.insert(0, {str(REPO)!r}); "
                "from course_utils.sandbox import main; sys.exit(main())")
        inner = [sys.executable, "-I", "-c", boot, *args,
                 *self.limits.args(), *who, *nproc]
        return self.command(inner) if self.safe else inner


def make(limits: Limits | None = None, *, unsafe: bool = False, hide=()) -> Sandbox:
    """The sandbox for this machine, checked by running the runner's imports inside it.
    Raises SandboxUnavailable (why, and how to get one) unless unsafe."""
    limits = limits or Limits()
    if unsafe:
        return Sandbox(limits)
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable(f"no sandbox on {sys.platform}: bubblewrap needs Linux; "
                                 + HOW_TO)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("no sandbox: bwrap (bubblewrap) is not on PATH; " + HOW_TO)
    box = Sandbox(limits, bwrap, os.geteuid() == 0, tuple(str(h) for h in hide),
                  os.geteuid() != 0 and _bwrap_supports(bwrap, "--disable-userns"))
    r = probe(box)
    if r.get("error"):
        raise SandboxUnavailable(f"no sandbox: {r['error']}; " + HOW_TO)
    return box


def probe(box: Sandbox) -> dict:
    """Run `_probe` in the sandbox: who it runs as, its limits, what it could import."""
    try:
        p = subprocess.run(box.runner("_probe"), capture_output=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return {"error": f"{box.bwrap} could not run: {type(e).__name__}: {e}"}
    try:
        info = json.loads(p.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        err = " ".join(p.stderr.decode(errors="replace").split())[-400:]
        return {"error": f"the sandbox did not start (exit status {p.returncode}): "
                         f"{err or 'no message'}"}
    return info


# --------------------------------------------------------------------------- inside

def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _drop_capabilities() -> None:
    """Clear the permitted, effective and inheritable sets (capset, Linux)."""
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    if _libc().capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def enter(limits: Limits, uid: int | None = None, gid: int | None = None,
          process_limit: bool = True) -> None:
    """The runner's first act: become the unprivileged user (when started as root), then
    set the limits that it and everything it starts inherit, then become non-dumpable."""
    if uid is not None and os.geteuid() == 0:
        for cap in range(64):             # empty the bounding set (needs CAP_SETPCAP)
            _libc().prctl(24, cap, 0, 0, 0)   # PR_CAPBSET_DROP; past the last cap: EINVAL
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        _drop_capabilities()
    lim = [(resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_DATA, limits.memory, limits.memory),
           (resource.RLIMIT_FSIZE, limits.file_size, limits.file_size),
           (resource.RLIMIT_CPU, limits.cpu_time, limits.cpu_time + 5)]
    if process_limit:
        lim.append((resource.RLIMIT_NPROC, limits.processes, limits.processes))
    for res, soft, hard in lim:
        old_soft, old_hard = resource.getrlimit(res)
        hard = hard if old_hard == resource.RLIM_INFINITY else min(hard, old_hard)
        resource.setrlimit(res, (min(soft, hard), hard))
    if sys.platform.startswith("linux"):
        _libc().prctl(4, 0, 0, 0, 0)      # PR_SET_DUMPABLE 0: no ptrace, no /proc/PID/fd


def _probe_main(a) -> int:
    info = {"uid": os.getuid(), "gid": os.getgid()}
    try:
        import importlib

        for name in ("ipykernel", "nbclient", "papermill", "course_utils"):
            importlib.import_module(name)
        info["caps"] = {k: v for k, v in (ln.split(":\t") for ln in
                                          Path("/proc/self/status").read_text().splitlines()
                                          if ln.startswith("Cap"))}
        info["nproc"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
        info["home_writable"] = os.access(os.environ.get("HOME", "/"), os.W_OK)
        info["repo_writable"] = os.access(str(REPO), os.W_OK)
    except Exception as e:  # noqa: BLE001 - reported to the grader, which refuses
        info["error"] = (f"uid {os.getuid()} cannot import the kit's packages in the sandbox "
                         f"({type(e).__name__}: {e}); the interpreter "
                         f"{sys.base_prefix}, the venv {sys.prefix} and the repository {REPO} "
                         "must be readable by that user (chmod o+rX on each folder to them)")
    print(json.dumps(info), flush=True)
    return 0


def _size(out) -> int:
    if out.get("output_type") == "stream":
        return len(out.get("text", ""))
    if out.get("output_type") == "error":
        return len(out.get("evalue", "")) + sum(len(t) for t in out.get("traceback", []))
    return sum(len(str(v)) for v in (out.get("data") or {}).values())


def _shorten(out, limit: int):
    """The output with its texts cut to `limit` characters (what scoring reads is kept:
    the type, the stream's name, the error's name, the first of its value and traceback)."""
    def cut(s):
        s = "".join(s) if isinstance(s, list) else str(s)
        return s if len(s) <= limit else s[:limit] + f"... [{len(s) - limit} characters not kept]"
    kind = out.get("output_type")
    if kind == "stream":
        out["text"] = cut(out.get("text", ""))
    elif kind == "error":
        out["evalue"] = cut(out.get("evalue", ""))
        out["traceback"] = [cut("\n".join(out.get("traceback", [])[-3:]))]
    else:
        out["data"] = {"text/plain": cut((out.get("data") or {}).get("text/plain", ""))}
    return out


def _capped_client(keep: int):
    """An nbclient NotebookClient that keeps at most `keep` bytes of outputs per notebook;
    beyond that, per cell, only its errors and its first stdout, stderr and result output,
    shortened, so that nbgrader scores the cell as it would the whole output."""
    from nbclient import NotebookClient

    from .kernelpoll import install

    install()   # nbclient's wait on the kernel, polled in slices (course_utils/kernelpoll.py)

    class Capped(NotebookClient):
        kept = 0
        dropped = 0

        def output(self, outs, msg, display_id, cell_index):
            out = super().output(outs, msg, display_id, cell_index)
            if out is None or not outs or outs[-1] is not out:
                return out
            n = _size(out)
            if self.kept + n <= keep:
                self.kept += n
                return out
            kind = out.get("output_type")
            first = not any(o is not out and o.get("output_type") == kind
                            and o.get("name") == out.get("name") for o in outs)
            if kind == "error" or (first and kind in ("stream", "execute_result")):
                _shorten(out, 1000)
                self.dropped += max(0, n - _size(out))
                self.kept += _size(out)
            else:
                outs.pop()
                self.dropped += n
            return out

        def handle_comm_msg(self, outs, msg, cell_index):
            n = len(json.dumps(msg.get("content", {}), default=str))
            if self.kept + n > keep:
                self.dropped += n
                return
            self.kept += n
            super().handle_comm_msg(outs, msg, cell_index)

    return Capped


def _read_notebook(data: bytes):
    """The notebook from the grader, with papermill's metadata defaults (its reader's)."""
    import nbformat

    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    nb = nbformat.v4.upgrade(nb) or nb
    nb.metadata.setdefault("papermill", {"default_parameters": {}, "parameters": {},
                                         "environment_variables": {}})
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
        cell.metadata.setdefault("papermill", {})
    return nb


def _execute_main(a) -> int:
    """Run the notebook read from stdin; one JSON line per nbgrader cell on stdout as soon
    as it has run, then a last line {"end": ...}."""
    data = sys.stdin.buffer.read()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    records = os.fdopen(os.dup(1), "w", encoding="utf-8")   # close-on-exec: no child has it
    os.dup2(2, 1)                                          # a stray print goes to stderr

    def emit(rec):
        records.write(json.dumps(rec) + "\n")
        records.flush()

    from papermill.parameterize import parameterize_notebook

    home = Path(os.environ.get("HOME") or tempfile.mkdtemp())
    work = home / "work"
    work.mkdir(parents=True, exist_ok=True)
    nb = parameterize_notebook(_read_notebook(data), {"mode": a.mode, "out_dir": "out"},
                               kernel_name=a.kernel, language="python")

    def record(cell, cell_index, execute_reply):
        gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if gid:
            emit({"grade_id": gid, "index": cell_index,
                  "status": execute_reply["content"].get("status"),
                  "outputs": cell.get("outputs", [])})

    client = _capped_client(a.keep)(nb, kernel_name=a.kernel, timeout=None, allow_errors=True,
                                    resources={"metadata": {"path": str(work)}},
                                    on_cell_executed=record)
    end = {"end": "ok"}
    try:
        client.execute(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    except Exception as e:  # noqa: BLE001 - a dead kernel, a kernel that did not start
        end = {"end": "stopped", "why": f"{type(e).__name__}: {e}"[:400]}
    end["dropped"] = client.dropped
    emit(end)
    return 0 if end["end"] == "ok" else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m course_utils.sandbox",
                                 description="Internal: the runner inside the sandbox.")
    ap.add_argument("command", choices=("_execute", "_probe"))
    ap.add_argument("--kernel", default="python3")
    ap.add_argument("--mode", default="smoke")
    for opt in ("--memory", "--processes", "--file-size", "--cpu-time", "--keep"):
        ap.add_argument(opt, type=int, required=True)
    ap.add_argument("--uid", type=int)
    ap.add_argument("--gid", type=int)
    ap.add_argument("--no-process-limit", action="store_true")
    a = ap.parse_args(argv)
    # jsonschema (under nbformat) compiles rfc3987_syntax's grammar at import, 1.6 s of
    # every submission, for an "iri" format check that the notebook schema never uses
    sys.modules.setdefault("rfc3987_syntax", None)
    limits = Limits(a.memory, a.processes, a.file_size, a.cpu_time, keep=a.keep)
    enter(limits, a.uid, a.gid, process_limit=not a.no_process_limit)
    return _probe_main(a) if a.command == "_probe" else _execute_main(a)


# --------------------------------------------------------------------------- the grader's side

@dataclass
class Run:
    records: list = field(default_factory=list)   # the runner's JSON lines, parsed
    timed_out: bool = False
    returncode: int = 0
    stderr: str = ""          # the last lines the runner (and bwrap) wrote to stderr
    seconds: float = 0.0
    dropped: int = 0          # bytes of record lines the grader did not keep


def _kill_marked(token: str) -> None:
    """SIGKILL every process whose environment carries this token (UNSAFE runs: the
    runner, its kernel and what the submission started; the sandbox needs none of this:
    its PID namespace dies with bwrap)."""
    needle = f"{TOKEN_VAR}={token}".encode()
    for _ in range(3):
        found = False
        for d in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
            if not d.name.isdigit() or int(d.name) == os.getpid():
                continue
            try:
                if needle in (d / "environ").read_bytes().split(b"\0"):
                    os.kill(int(d.name), signal.SIGKILL)
                    found = True
            except (OSError, ValueError):
                continue
        if not found:
            return
        time.sleep(0.2)


def _pump_records(stream, run: Run, budget: int) -> None:
    kept, skipping = 0, False
    while True:
        line = stream.readline(LINE_MAX)
        if not line:
            return
        whole = line.endswith(b"\n")
        if skipping or not whole or kept + len(line) > budget:
            run.dropped += len(line)
            skipping = not whole
            continue
        kept += len(line)
        try:
            run.records.append(json.loads(line))
        except ValueError:
            run.dropped += len(line)


def _pump_tail(stream, run: Run, keep: int = 16384) -> None:
    tail = b""
    for chunk in iter(lambda: stream.read1(65536), b""):
        tail = (tail + chunk)[-keep:]
    run.stderr = tail.decode("utf-8", errors="replace")


def run(box: Sandbox, notebook: bytes, *, timeout: float, kernel: str = "python3",
        mode: str = "smoke") -> Run:
    """Run one sanitized notebook (bytes of .ipynb) in `box`, stopping it and everything it
    started after `timeout` seconds. The result is what the grader read from the runner's
    pipe, at most 4x the kept-output budget."""
    out = Run()
    with tempfile.TemporaryDirectory(prefix="course-submission-",
                                     ignore_cleanup_errors=True) as priv:
        env, cwd, token = None, "/", None
        if not box.safe:
            priv = Path(priv)
            for d in ("work", "home", "tmp"):
                (priv / d).mkdir()
            token = os.urandom(16).hex()
            env = {k: v for k, v in os.environ.items()
                   if k not in ("MPLBACKEND", "MPLCONFIGDIR", "IPYTHONDIR", "XDG_CACHE_HOME",
                                "XDG_CONFIG_HOME", "JUPYTER_RUNTIME_DIR")}
            env.update(box.env(), HOME=str(priv / "home"), TMPDIR=str(priv / "tmp"),
                       PATH=os.environ.get("PATH", ""), **{TOKEN_VAR: token})
            cwd = str(priv / "work")
        argv = box.runner("_execute", "--kernel", kernel, "--mode", mode)
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
        pumps = [threading.Thread(target=_pump_records, args=(p.stdout, out, 4 * box.limits.keep)),
                 threading.Thread(target=_pump_tail, args=(p.stderr, out)),
                 threading.Thread(target=_feed, args=(p.stdin, notebook))]
        for t in pumps:
            t.daemon = True
            t.start()
        try:
            out.returncode = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            out.timed_out = True
        finally:
            _kill(p, token)
            out.returncode = p.wait() if out.timed_out else out.returncode
        for t in pumps:
            t.join(timeout=10)
        out.seconds = time.perf_counter() - t0
    return out


def _feed(stream, data: bytes) -> None:
    try:
        stream.write(data)
        stream.close()
    except (OSError, ValueError):
        pass   # the runner died before reading it all


def _kill(p, token) -> None:
    for kill in (lambda: os.killpg(p.pid, signal.SIGKILL), lambda: p.kill()):
        try:
            kill()
        except (ProcessLookupError, PermissionError, OSError):
            pass
    if token:
        _kill_marked(token)


if __name__ == "__main__":
    sys.exit(main())
