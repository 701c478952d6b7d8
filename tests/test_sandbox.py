"""Grading that a hostile submission cannot harm (issue 19): the bubblewrap sandbox.

One grading run over a folder of lesson 01 submissions, each doing one harmful thing in
an answer cell, plus an honest one graded last; the honest one is also graded alone
first (that run also warms up the grader's own imports, so that the fingerprints below
see only what the submissions did). The submissions are lesson 01's student version with
the instructor's answers filled in and the cells no check needs deleted (as a student
may): a few seconds each. Every loop and size is bounded."""
import ast
import csv
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from conftest import processes_with
from course_utils import classroom, sandbox

REPO = Path(__file__).resolve().parents[1]
LESSON01 = REPO / "notebooks" / "01_convolution.ipynb"
STUDENT01 = REPO / "lessons" / LESSON01.stem / LESSON01.name
SITE = Path(next(p for p in sys.path if p.endswith("site-packages")))
TIMEOUT = 25                       # s per notebook; a compact lesson 01 takes 4-12 s
LIMITS = dict(memory="2G", processes=64, file_size="16M", cpu_time=120, scratch="64M")
SLEEPER = "987.654321"             # the argument of the processes the fork bomb starts


def _why_no_sandbox():
    """Why the sandbox tests cannot run here: only a missing bwrap or another system skips
    them; a sandbox that bwrap cannot start is a failure of the kit, and fails."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux; this is {sys.platform}"
    if shutil.which("bwrap") is None:
        return ("bwrap is not on PATH (make test installs Debian's bubblewrap where apt may "
                "be used; else: sudo apt-get install bubblewrap)")
    return None


WHY = _why_no_sandbox()
needs_sandbox = pytest.mark.skipif(WHY is not None, reason=f"no bubblewrap sandbox here: {WHY}")


def _nbg(cell):
    return cell.metadata.get("nbgrader", {})


def _compact(overrides=None):
    """Lesson 01's student version, answered (overridden per grade_id), with only what its
    checks need before the exercises: torch, profile and measured_receptive_field (the
    third check uses it), as a student who deleted the rest would hand it in."""
    answers = {_nbg(c)["grade_id"]: c.source for c in nbformat.read(LESSON01, as_version=4).cells
               if _nbg(c).get("solution")}
    answers.update(overrides or {})
    nb = nbformat.read(STUDENT01, as_version=4)
    rf = next(c.source for c in nb.cells if "def measured_receptive_field" in c.source)
    fn = next(n for n in ast.parse(rf).body if isinstance(n, ast.FunctionDef))
    setup = ("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
             "from course_utils import profile\n\n" + ast.get_source_segment(rf, fn))
    keep = [nbformat.v4.new_code_cell(setup)]
    for c in nb.cells:
        if _nbg(c).get("solution"):
            c.source = answers[_nbg(c)["grade_id"]]
        if _nbg(c) and c.cell_type == "code":
            keep.append(c)
    nb.cells = keep
    return nb


# exercise 1's answer (two formulas) and exercise 2's, as a student could write them
TRANSPOSED = ("def transposed_out_size(h, k, s=1, p=0, d=1, output_padding=0):\n"
              "    return (h - 1) * s - 2 * p + d * (k - 1) + output_padding + 1\n\n"
              "def output_padding_for(h, k, s=1, p=0, d=1):\n"
              "    return (h + 2 * p - d * (k - 1) - 1) % s\n")
BLOCKS = ("def blocks_to_see(size, block):\n    n = 0\n"
          "    while receptive_field(block * n) < size:\n        n += 1\n    return n\n")


def _points():
    """Each exercise's points, in order, as the grade table writes them ('2', not '2.0')."""
    pts = [_nbg(c)["points"] for c in nbformat.read(LESSON01, as_version=4).cells
           if _nbg(c).get("grade") and not _nbg(c).get("solution")]
    return tuple(f"{p:g}" for p in pts)


def _expect(*full):
    """Scores for exercises that pass in full (True) or score 0 (False)."""
    return tuple(p if ok else "0" for p, ok in zip(_points(), full))


def _writes(targets):
    """An answer that tries every write, then raises with what each attempt gave."""
    lines = ["import os, pathlib", "results = []"]
    for label, path in targets:
        touch = path.exists()     # an existing file of the kit: touched, not overwritten
        lines += ["try:",
                  f"    p = pathlib.Path({str(path)!r})",
                  "    os.utime(p)" if touch else "    p.parent.mkdir(parents=True, exist_ok=True)",
                  "" if touch else "    p.write_text('written by a hostile submission')",
                  f"    results.append({label!r} + ': written')",
                  "except OSError as e:",
                  f"    results.append(f'{label}: errno {{e.errno}}')"]
    return "\n".join(lines + ["raise PermissionError('writes: ' + '; '.join(results))"])


def _listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.5)
    got = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (socket.timeout, OSError):
                continue
            conn.settimeout(1)
            try:
                got.append(conn.recv(1024) or b"<connected>")
            except OSError:
                got.append(b"<connected>")
            conn.close()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    return srv, got, stop, t


def _fingerprint(root: Path, skip=(), content=True) -> dict:
    """path -> (size, mode, mtime, ctime) for every entry under root, plus (content) a
    sha256 of files under 1 MB outside .git: a write, chmod or touch changes ctime (which
    no one can set back), a new file adds a path; a folder counts by its entries and mode.
    Paths in `skip` are left out (folders: with all under them)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if p in skip:
                continue
            if name in dirnames:
                out[p] = (st.st_mode,)
                continue
            rec = (st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns)
            if content and name in filenames and st.st_size < 1 << 20 and "/.git/" not in p + "/" \
                    and os.path.isfile(p) and not os.path.islink(p):
                rec += (hashlib.sha256(Path(p).read_bytes()).hexdigest(),)
            out[p] = rec
    return out


def _changed(before: dict, after: dict) -> list:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    subs, out = tmp / "submissions", tmp / "out" / "grades.csv"
    token = uuid.uuid4().hex[:12]
    srv, got, stop, listener = _listener()
    port = srv.getsockname()[1]
    victim = subs / "9_honest" / LESSON01.name
    home = Path(os.path.expanduser("~"))
    write_targets = [
        ("package", REPO / "course_utils" / f"PROBE-{token}.txt"),
        ("package file", REPO / "course_utils" / "checks.py"),
        ("repository", REPO / f"PROBE-{token}.txt"),
        ("site-packages", SITE / f"probe-{token}.pth"),
        ("HOME", home / f".probe-{token}"),
        ("other submission", victim),
        ("/tmp", Path("/tmp") / f"escaped-{token}.txt"),
    ]
    ex1, ex2, ex3 = [_nbg(c)["grade_id"] for c in nbformat.read(LESSON01, as_version=4).cells
                     if _nbg(c).get("solution")]
    big = 20 << 20
    cases = {
        "1_writes": {ex1: _writes(write_targets)},
        "2_network": {ex2: "import socket\nsocket.create_connection(('127.0.0.1', "
                           f"{port}), timeout=5).sendall(b'leaked')"},
        "3_processes": {ex2: "import subprocess\nprocs = []\nfor _ in range(200):\n"
                             f"    procs.append(subprocess.Popen(['sleep', '{SLEEPER}']))"},
        "4_memory": {ex1: "hog = bytearray(3 << 30)\n" + TRANSPOSED},
        "5_file_size": {ex1: f"open('big.bin', 'wb').write(b'x' * (32 << 20))\n{TRANSPOSED}"},
        "6_loops": {ex3: "while True:\n    pass"},
        "7_kills_kernel": {ex1: "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"},
        # 20 MB on stdout in the first check (which still passes), then a line on stderr in
        # the second, after the cap (which nbgrader scores 0 whatever else was printed)
        "8_prints": {ex1: f"_said = []\n{TRANSPOSED}\n_formula = transposed_out_size\n"
                          "def transposed_out_size(*a, **kw):\n"
                          f"    if not _said:\n        _said.append(print('y' * {big}))\n"
                          "    return _formula(*a, **kw)\n",
                     ex2: "import sys\n_warned = []\ndef receptive_field(layers):\n"
                          "    if not _warned:\n        _warned.append(sys.stderr.write('a warning\\n'))\n"
                          "    r, jump = 1, 1\n    for layer in layers:\n"
                          "        d = layer[3] if layer[0] == 'conv' else 1\n"
                          "        r += d * (layer[1] - 1) * jump\n        jump *= layer[2]\n"
                          "    return r\n\n" + BLOCKS},
        "9_honest": {},
    }
    for folder, overrides in cases.items():
        (subs / folder).mkdir(parents=True)
        nbformat.write(_compact(overrides), subs / folder / LESSON01.name)
    limits = sandbox.Limits.parse(**LIMITS)
    # graded alone first (this also imports, once, everything the grader itself uses)
    alone_dir = tmp / "alone"
    (alone_dir / "9_honest").mkdir(parents=True)
    nbformat.write(_compact(), alone_dir / "9_honest" / LESSON01.name)
    alone = classroom.grade(alone_dir, out=None, timeout=TIMEOUT, limits=limits, log=print)[0]
    # left out of the repository: the venv (its site-packages is watched on its own),
    # build/ and git's object store, which other jobs on this machine may write meanwhile
    # (.git/config and .git/hooks, which would run code, are watched)
    volatile = {str(REPO / p) for p in (".venv", "build", ".pytest_cache", ".git/objects", ".git/refs",
                                        ".git/logs", ".git/index", ".git/index.lock",
                                        ".git/COMMIT_EDITMSG", ".git/ORIG_HEAD")}
    watched = {"repo": (REPO, volatile, True), "submissions": (subs, (), True),
               "site-packages": (SITE, (), False)}   # 49,000 files: their stat only
    before = {k: _fingerprint(*w) for k, w in watched.items()}
    home_before = sorted(os.listdir(home))
    t0 = time.perf_counter()
    results = classroom.grade(subs, out=out, timeout=TIMEOUT, limits=limits, log=print)
    wall = time.perf_counter() - t0
    time.sleep(1.0)                 # a connection in flight reaches the listener by now
    stop.set()
    listener.join(5)
    srv.close()
    after = {k: _fingerprint(*w) for k, w in watched.items()}
    rows = {r["submission"].split("/")[0]: r for r in csv.DictReader(out.open())}
    return dict(rows=rows, results={r.submission.split("/")[0]: r for r in results},
                alone=alone, before=before, after=after, home_before=home_before,
                home_after=sorted(os.listdir(home)), got=got, wall=wall, token=token,
                names=(ex1, ex2, ex3), n=len(cases))


def _col(name):
    return f"01_convolution:{name}"


def _scores(row, names):
    return tuple(row[_col(n)] for n in names)


@needs_sandbox
def test_no_file_outside_the_sandbox_changed(hostile):
    for what in hostile["before"]:
        changed = _changed(hostile["before"][what], hostile["after"][what])
        assert not changed, f"{what}: changed during grading: {changed[:10]}"
    assert hostile["home_before"] == hostile["home_after"], "the grader's HOME changed"
    assert not Path(f"/tmp/escaped-{hostile['token']}.txt").exists()
    row = hostile["rows"]["1_writes"]
    ex1, ex2, ex3 = hostile["names"]
    reason = row[_col(ex1) + " reason"]
    assert _scores(row, hostile["names"]) == _expect(False, True, True), row
    # read-only (errno 30) where the kit lies; the rest landed in the sandbox's own tmpfs
    # or was refused, and the fingerprints above show that nothing outside changed
    assert reason.startswith("answer cell: PermissionError: writes: package: errno 30; "
                             "package file: errno 30; repository: errno 30; site-packages: "
                             "errno 30; HOME: "), reason


@needs_sandbox
def test_no_network(hostile):
    assert hostile["got"] == [], "the listener outside the sandbox received a connection"
    row = hostile["rows"]["2_network"]
    ex1, ex2, ex3 = hostile["names"]
    assert _scores(row, hostile["names"]) == _expect(True, False, True), row
    assert "ConnectionRefusedError" in row[_col(ex2) + " reason"] or \
        "OSError" in row[_col(ex2) + " reason"], row


@needs_sandbox
def test_process_limit(hostile):
    row = hostile["rows"]["3_processes"]
    ex1, ex2, ex3 = hostile["names"]
    assert _scores(row, hostile["names"]) == _expect(True, False, True), row
    reason = row[_col(ex2) + " reason"]
    assert "BlockingIOError" in reason and "PROCESSES=64" in reason, reason
    assert processes_with(SLEEPER) == [], "a process the submission started survived"


@needs_sandbox
def test_memory_limit(hostile):
    row = hostile["rows"]["4_memory"]
    ex1 = hostile["names"][0]
    assert _scores(row, hostile["names"]) == _expect(False, True, True), row
    assert re.search(r"MemoryError.*MEMORY=2048 MiB", row[_col(ex1) + " reason"]), row


@needs_sandbox
def test_file_size_limit(hostile):
    row = hostile["rows"]["5_file_size"]
    ex1 = hostile["names"][0]
    assert _scores(row, hostile["names"]) == _expect(False, True, True), row
    reason = row[_col(ex1) + " reason"]
    assert "File too large" in reason and "FILESIZE=16 MiB" in reason, reason


@needs_sandbox
def test_endless_loop_times_out(hostile):
    row = hostile["rows"]["6_loops"]
    ex3 = hostile["names"][2]
    assert _scores(row, hostile["names"]) == _expect(True, True, False), row
    assert row[_col(ex3) + " reason"] == f"timed out after {TIMEOUT} s"
    assert TIMEOUT <= hostile["results"]["6_loops"].seconds < TIMEOUT + 15


@needs_sandbox
def test_killing_its_kernel(hostile):
    row = hostile["rows"]["7_kills_kernel"]
    assert _scores(row, hostile["names"]) == ("0", "0", "0"), row
    for n in hostile["names"]:
        assert row[_col(n) + " reason"] == ("not run: the notebook stopped before this check "
                                            "(DeadKernelError: Kernel died)"), row
    assert "stopped early" in row["note"], row


@needs_sandbox
def test_output_is_capped_without_changing_the_score(hostile):
    row = hostile["rows"]["8_prints"]
    ex1, ex2, ex3 = hostile["names"]
    assert _scores(row, hostile["names"]) == _expect(True, False, True), row
    assert row[_col(ex2) + " reason"].startswith("wrote to stderr"), row
    assert re.search(r"output over 1 MiB not kept \((19|20)\.\d MiB dropped\)", row["note"]), row


@needs_sandbox
def test_others_score_as_graded_alone_and_the_run_ends_in_time(hostile):
    alone, row = hostile["alone"], hostile["rows"]["9_honest"]
    assert alone.total == alone.max_total == sum(map(float, _points())), alone
    assert _scores(row, hostile["names"]) == _expect(True, True, True) and row["note"] == "", row
    assert len(hostile["rows"]) == hostile["n"]
    assert all(any(r[_col(n) + " reason"] for n in hostile["names"])
               for r in hostile["rows"].values())
    assert hostile["wall"] < hostile["n"] * TIMEOUT, hostile["wall"]


# ------------------------------------------------------------------ without bwrap

def test_refuses_without_a_sandbox_unless_unsafe(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), subs / "x.ipynb")
    out = tmp_path / "g.csv"
    assert classroom.main(["grade", str(subs), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no sandbox: bwrap (bubblewrap) is not on PATH")
    assert "apt-get install bubblewrap" in err and "UNSAFE=1" in err
    assert not out.exists()
    # UNSAFE=1: graded (this notebook belongs to no lesson: no kernel starts) and recorded
    assert classroom.main(["grade", str(subs), "--out", str(out), "--unsafe", "1"]) == 0
    row = next(csv.DictReader(out.open()))
    assert row["note"].startswith(classroom.UNSAFE_NOTE), row


@pytest.mark.parametrize("args,needle", [
    (["--memory", "lots"], "memory (MEMORY)"),
    (["--memory", "0"], "memory (MEMORY)"),
    (["--memory", "100M"], "memory (MEMORY) must be a size at least 512M"),
    (["--processes", "4"], "processes (PROCESSES) must be a whole number >= 16"),
    (["--file-size=-1M"], "file size (FILESIZE)"),
    (["--cpu-time", "1.5"], "CPU time (CPUTIME)"),
    (["--scratch", "big"], "scratch (SCRATCH)"),
    (["--unsafe", "yes"], "unsafe (UNSAFE) must be 1"),
])
def test_bad_limits_are_clear_errors(tmp_path, capsys, args, needle):
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), subs / "x.ipynb")
    out = tmp_path / "g.csv"
    assert classroom.main(["grade", str(subs), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err, err
    assert not out.exists()


def test_sizes_parse():
    assert sandbox.parse_size("x", "2G") == 2 << 30
    assert sandbox.parse_size("x", "512m") == 512 << 20
    assert sandbox.parse_size("x", "64KiB") == 64 << 10
    assert sandbox.parse_size("x", 1000) == 1000
    with pytest.raises(sandbox.SandboxError, match="got '2X'"):
        sandbox.parse_size("x", "2X")
    assert sandbox.Limits.parse() == sandbox.Limits()


def test_mounts_hide_then_expose_shallow_before_deep(tmp_path):
    (tmp_path / "home" / "t" / "venv").mkdir(parents=True)
    (tmp_path / "home" / "t" / "secret").mkdir()
    home, venv = tmp_path / "home", tmp_path / "home" / "t" / "venv"
    ops = sandbox._mounts([venv], [home, venv / "hidden-but-missing"])
    assert ops == ["--tmpfs", str(home), "--perms", "0755", "--dir", str(home / "t"),
                   "--ro-bind", str(venv), str(venv)]
    # an exposed folder is never hidden, and one that / shows already is not bound again
    assert sandbox._mounts([venv], [venv]) == []


@needs_sandbox
def test_the_sandbox_user_has_no_privilege():
    info = sandbox.probe(sandbox.make(sandbox.Limits.parse(**LIMITS)))
    assert not info.get("error"), info
    assert info["caps"]["CapEff"] == info["caps"]["CapPrm"] == "0" * 16, info
    assert info["caps"]["CapBnd"] == "0" * 16 or os.geteuid() != 0, info
    assert info["nproc"] == 64 and info["home_writable"] and not info["repo_writable"], info
    if os.geteuid() == 0:
        assert (info["uid"], info["gid"]) == (sandbox.SANDBOX_UID, sandbox.SANDBOX_GID)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed here: only "
                    "`make -n` can show what make grade runs")
def test_make_grade_passes_the_limits_and_needs_no_dataset():
    r = subprocess.run(["make", "-n", "grade", "SUBMISSIONS=subs", "MEMORY=2G", "PROCESSES=64",
                        "FILESIZE=16M", "CPUTIME=60", "SCRATCH=64M", "UNSAFE=1"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for opt in ('--memory="2G"', '--processes="64"', '--file-size="16M"', '--cpu-time="60"',
                '--scratch="64M"', '--unsafe="1"'):
        assert opt in r.stdout, (opt, r.stdout)
    assert "course_utils.data prepare" not in r.stdout and "bubblewrap" in r.stdout
