"""Classroom: student versions of the lessons, and automatic grading, on nbgrader.

    python -m course_utils.classroom assignments            # notebooks/ -> lessons/<stem>/
    python -m course_utils.classroom assignments --check    # exit 1 if lessons/ is stale
    python -m course_utils.classroom grade SUBMISSIONS --out build/grades.csv --timeout 300
        [--memory 4G --processes 256 --file-size 256M --cpu-time 600 --scratch 512M] [--unsafe 1]

The exercises are marked in nbgrader's format: an answer cell (nbgrader `solution`) whose
`### BEGIN SOLUTION` ... `### END SOLUTION` region is the instructor's answer, then a
locked check cell (nbgrader `grade`, with `points`) whose `### BEGIN HIDDEN TESTS` ...
`### END HIDDEN TESTS` block the students do not see. Both commands chain nbgrader's own
preprocessors, in the order its `generate_assignment` and `autograde` converters run
them; nothing here edits solutions or tests by hand.

Student version (`assignments`): LockCells, ClearSolutions (an answer region becomes
`raise NotImplementedError()`), ClearOutput, CheckCellMetadata, ComputeChecksums,
ClearHiddenTests, ComputeChecksums. Its paths need no rewriting: every default path of a
notebook (`out_dir=None`, stored results) is resolved from the kit's folder, so
lessons/<stem>/<stem>.ipynb runs from where it lies, or from anywhere else. Files are
rewritten only when their text changes.

Grading (`grade`): every submission is read into memory first; a throw-away gradebook
(sqlite, in a temporary folder) records the cells of every lesson present as released,
hidden tests included (nbgrader's SaveCells). Then, one submission at a time:
  1. its lesson is identified (its nbgrader grade_ids; else its file name);
  2. it is sanitized: ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells
     (a check cell whose text differs from the release, which is every check cell of a
     student version since its hidden tests were removed, is put back whole; a deleted
     one is added back), CheckCellMetadata;
  3. it runs in a bubblewrap sandbox (course_utils/sandbox.py: the system, the venv and the
     repository read-only, private tmpfs HOME and /tmp, no network, an unprivileged user,
     its own PID namespace, limits on memory, processes, file size and CPU time), with
     mode="smoke" injected by papermill (grading is about the exercises, not the
     training); after `timeout` seconds the sandbox is killed with everything in it;
  4. each check cell is scored with nbgrader's determine_grade (score_check: an error, or
     output on stderr: 0; a number shown as the cell's result: that many points, partial
     credit, which course_utils.checks.Cases.score shows, each case an equal share;
     otherwise its points) from the outputs the grader read from the runner's pipe (never
     from a file the submission could write), and the error line, or the first failed
     case, becomes the reason (with the limit it hit, if one did).
The table (one row per submission, one column per exercise, the total, one reason column
per exercise, a note) is written atomically as CSV. Where no sandbox can be made, `grade`
refuses (sandbox.SandboxUnavailable says why and how to get one) unless unsafe=True, which
every row's note records.

One answer, fast: course_utils.answers.check_answers scores an answer to one exercise as
grading scores it, without a sandbox and without running the notebook (for the kit's tests
and an instructor trying a wrong answer, not for submissions).

The sandbox stops a submission from changing anything outside it (the kit, the other
submissions, the grade table, the grader's files), from reaching the network and from
exhausting the machine. It does not stop cheating inside its own kernel (redefining
`assert`, patching what a check calls): as in nbgrader, the checks run in the kernel that
ran the answers; the restored check cells and their hidden tests only make the checks
the instructor's. README.md, "Classroom", has the threat model.
"""

from __future__ import annotations

import argparse
import copy
import csv
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import sandbox
from .files import atomic_open, atomic_write_text

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIR = REPO / "notebooks"
LESSONS_DIR = REPO / "lessons"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
GRADING_MODE = "smoke"               # the exercises do not depend on the training's size
DEFAULT_TIMEOUT = 300.0              # s per notebook; smoke mode needs ~5-70 s on 2 cores
DEFAULT_CSV = REPO / "build" / "grades.csv"
_NBGRADER_LOG = logging.getLogger("course_utils.classroom.nbgrader")
_NBGRADER_LOG.setLevel(logging.ERROR)  # OverwriteCells warns for every restored check cell


class ClassroomError(ValueError):
    """Bad input to a classroom command; the message names the parameter."""


# --------------------------------------------------------------------------- lessons

@dataclass(frozen=True)
class Exercise:
    name: str            # the answer cell's grade_id ("ex1_transposed"), else the check's
    check_id: str        # grade_id of the check cell ("ex1_check")
    points: float
    answer_ids: tuple[str, ...]

    def column(self, stem: str) -> str:
        return f"{stem}:{self.name}"


@dataclass
class Lesson:
    stem: str
    path: Path
    nb: nbformat.NotebookNode
    exercises: list[Exercise]
    grade_ids: set[str]


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) or {}


def exercises_of(nb) -> list[Exercise]:
    """One exercise per nbgrader grade cell, named after the answer cells before it."""
    out, answers = [], []
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if meta.get("solution") and not meta.get("grade"):
            answers.append(meta["grade_id"])
        if meta.get("grade"):
            name = answers[0] if answers else meta["grade_id"]
            out.append(Exercise(name, meta["grade_id"], float(meta.get("points", 0)),
                                tuple(answers)))
            answers = []
    return out


def source_notebooks(source_dir: Path = SOURCE_DIR) -> list[Path]:
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise ClassroomError(f"source folder (--source) {str(source_dir)!r} does not exist")
    paths = sorted(source_dir.glob(NOTEBOOK_GLOB))
    if not paths:
        raise ClassroomError(f"source folder (--source) {str(source_dir)!r} holds no "
                             f"notebook named like {NOTEBOOK_GLOB}")
    return paths


def load_lessons(source_dir: Path = SOURCE_DIR) -> list[Lesson]:
    lessons = []
    for path in source_notebooks(source_dir):
        nb = nbformat.read(path, as_version=4)
        ids = {_nbgrader(c)["grade_id"] for c in nb.cells if "grade_id" in _nbgrader(c)}
        lessons.append(Lesson(path.stem, path, nb, exercises_of(nb), ids))
    return lessons


def _apply(preprocessors, nb, resources):
    for cls in preprocessors:
        nb, resources = cls(log=_NBGRADER_LOG)(nb, resources)
    return nb, resources


def _release_steps():
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, ClearSolutions,
                                        ComputeChecksums, LockCells)
    # nbgrader's generate_assignment order, up to (not including) SaveCells
    return [LockCells, ClearSolutions, ClearOutput, CheckCellMetadata, ComputeChecksums]


# --------------------------------------------------------------------------- assignments

def student_version(nb):
    """The notebook a student gets: answers and hidden tests removed, outputs cleared,
    check cells locked (nbgrader's generate_assignment preprocessors)."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearHiddenTests, ComputeChecksums

    nb = copy.deepcopy(nb)
    steps = _release_steps() + [ClearHiddenTests, ComputeChecksums, CheckCellMetadata]
    nb, _ = _apply(steps, nb, {})
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    return nb


def _dumps(nb) -> str:
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def build_assignments(source_dir: Path = SOURCE_DIR, out_dir: Path = LESSONS_DIR, *,
                      check: bool = False, log=print) -> list[Path]:
    """Write out_dir/<stem>/<name>.ipynb for every notebook of source_dir. Returns the
    files that changed (with check=True: that would change; nothing is written)."""
    out_dir = Path(out_dir)
    changed = []
    for path in source_notebooks(source_dir):
        nb = nbformat.read(path, as_version=4)
        text = _dumps(student_version(nb))
        target = out_dir / path.stem / path.name
        old = target.read_text(encoding="utf-8") if target.is_file() else None
        if old != text:
            changed.append(target)
            if not check:
                atomic_write_text(target, text, mkdir=True)
        n = len(exercises_of(nb))
        state = "stale" if (check and old != text) else ("written" if old != text else "up to date")
        log(f"[assignments] {target}: {n} exercise{'s' * (n != 1)}, {state}")
        if not (out_dir / path.stem / "README.md").is_file():
            log(f"[assignments] warning: {out_dir / path.stem / 'README.md'} is missing: "
                "write the lesson plan (see lessons/01_convolution/README.md)")
    return changed


# --------------------------------------------------------------------------- grading

@dataclass
class Result:
    submission: str
    lesson: str = ""
    scores: dict = field(default_factory=dict)      # exercise column -> points
    max_scores: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)     # exercise column -> text
    note: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    @property
    def max_total(self) -> float:
        return sum(self.max_scores.values())


def find_submissions(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.exists():
        raise ClassroomError(f"submissions folder (SUBMISSIONS) {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ClassroomError(f"submissions folder (SUBMISSIONS) {str(folder)!r} is not a folder")
    subs = sorted(p for p in folder.rglob("*.ipynb")
                  if p.is_file() and not any(part.startswith(".")
                                             for part in p.relative_to(folder).parts))
    if not subs:
        raise ClassroomError(f"submissions folder (SUBMISSIONS) {str(folder)!r} holds no "
                             ".ipynb notebook")
    return subs


def identify(nb, name: str, lessons: list[Lesson]) -> Lesson | None:
    """The lesson a submission belongs to: the most nbgrader grade_ids in common (the
    check ids repeat across lessons, the answer ids do not), then its file name."""
    ids = {_nbgrader(c)["grade_id"] for c in nb.cells if "grade_id" in _nbgrader(c)}
    base = Path(name).name

    def by_name(lesson):
        if lesson.stem in name:
            return 2
        m = re.search(r"(?<!\d)(\d\d)_", base)
        return 1 if m and lesson.stem.startswith(m.group(1) + "_") else 0

    best = max(lessons, key=lambda L: (len(ids & L.grade_ids), by_name(L)))
    if not (ids & best.grade_ids) and not by_name(best):
        return None
    return best


def _gradebook(url: str, lessons: list[Lesson]) -> None:
    """Record every lesson's released cells (hidden tests included), as nbgrader's
    generate_assignment does before ClearHiddenTests."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveCells

    # a new gradebook asks the `alembic` command for its schema version: find the one
    # beside this interpreter even when the virtual environment is not activated
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "")])
    for lesson in lessons:
        if not lesson.exercises:
            continue
        with Gradebook(url) as gb:
            gb.update_or_create_assignment(lesson.stem)
        res = {"nbgrader": {"notebook": lesson.stem, "assignment": lesson.stem, "db_url": url}}
        _apply(_release_steps() + [SaveCells], copy.deepcopy(lesson.nb), res)


def sanitize(nb, lesson: Lesson, url: str):
    """nbgrader autograde's sanitizing steps: restore locked check cells (hidden tests
    included), their points and the kernelspec from the gradebook."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds,
                                        OverwriteCells, OverwriteKernelspec)

    res = {"nbgrader": {"notebook": lesson.stem, "assignment": lesson.stem, "db_url": url}}
    nb = copy.deepcopy(nb)
    for add_missing in (True, False):
        try:
            steps = [ClearOutput, DeduplicateIds, OverwriteKernelspec]
            nb2, _ = _apply(steps, copy.deepcopy(nb), res)
            nb2, _ = OverwriteCells(log=_NBGRADER_LOG, add_missing_cells=add_missing)(nb2, res)
            nb2, _ = _apply([CheckCellMetadata], nb2, res)
            return nb2
        except KeyError:
            # nbgrader cannot place a deleted check cell whose neighbour is deleted too;
            # grade without it (that exercise then scores 0, "check cell missing")
            continue
    raise RuntimeError("nbgrader could not restore the check cells")


def _edited_checks(nb, lesson: Lesson) -> list[str]:
    """Check cells the student changed or deleted (graded with the originals anyway)."""
    from nbgrader.preprocessors import ClearHiddenTests

    released, _ = _apply([ClearHiddenTests], copy.deepcopy(lesson.nb), {})
    allowed = {}   # grade_id -> the texts a check cell may have: as released, or whole
    for c in released.cells + lesson.nb.cells:
        if _nbgrader(c).get("grade"):
            allowed.setdefault(_nbgrader(c)["grade_id"], set()).add(c.source.strip())
    seen = {_nbgrader(c).get("grade_id"): c.source for c in nb.cells if _nbgrader(c).get("grade_id")}
    notes = []
    for gid, texts in allowed.items():
        if gid not in seen:
            notes.append(f"{gid} (deleted)")
        elif seen[gid].strip() not in texts:
            notes.append(f"{gid} (edited)")
    return notes


def _run_isolated(nb, box: sandbox.Sandbox, timeout: float, mode: str, kernel: str):
    """Run one sanitized submission in the sandbox (or, UNSAFE, a private temporary folder
    and process). Returns (records by grade_id, timed_out, return code, why it stopped,
    seconds, bytes of output not kept): all read from the runner's pipe, none from a file."""
    r = sandbox.run(box, _dumps(nb).encode("utf-8"), timeout=timeout, kernel=kernel, mode=mode)
    records, end = {}, {}
    for rec in r.records:
        if isinstance(rec, dict) and isinstance(rec.get("grade_id"), str):
            records.setdefault(rec["grade_id"], rec)
        elif isinstance(rec, dict) and "end" in rec:
            end = rec
    why = str(end.get("why", ""))
    if not why and r.returncode != 0:
        lines = [ln for ln in r.stderr.splitlines()
                 if ln.strip() and not ln.startswith(("[IPKernelApp]", " "))]
        why = lines[-1] if lines else ""
    rc = r.returncode if r.returncode != 0 or end.get("end") == "ok" else 1
    dropped = int(end.get("dropped", 0) or 0) + r.dropped
    return records, r.timed_out, rc, why, r.seconds, dropped


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _one_line(text: str, limit: int = 240) -> str:
    text = " ".join(_ANSI.sub("", str(text)).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _problem(outputs) -> str:
    """Why a cell's outputs earn no points: its error, else what it wrote to stderr."""
    for o in outputs:
        if o.get("output_type") == "error":
            ename, evalue = o.get("ename", "Error"), _one_line(o.get("evalue", ""))
            if ename == "NotImplementedError" and not evalue:
                return "NotImplementedError: not answered yet (the answer cell still raises NotImplementedError)"
            return f"{ename}: {evalue}" if evalue else ename
    for o in outputs:
        if o.get("output_type") == "stream" and o.get("name") == "stderr":
            return "wrote to stderr (nbgrader gives 0): " + _one_line(o.get("text", ""))
    return ""


def _stdout(outputs) -> str:
    return "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                   for o in outputs
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def score_check(outputs, points: float, *, ok: bool = True, answers=()) -> tuple[float, str]:
    """A check cell's score and reason from its outputs, as nbgrader scores it
    (nbgrader.utils.determine_grade): an error or output on stderr gives 0; a number shown
    as the cell's result is partial credit (course_utils.checks.Cases.score shows one);
    otherwise every point. `ok`: the cell ran to its end; `answers`: the outputs of the
    exercise's answer cells, whose first error joins the reason."""
    from nbgrader.utils import determine_grade

    cell = nbformat.v4.new_code_cell(source="", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "check",
        "points": points}})
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    score, _ = determine_grade(cell, _NBGRADER_LOG)
    score = float(score or 0.0) if ok else 0.0
    if score >= points:
        return score, "passed"
    why = _problem(cell.outputs)
    if not why and score:
        failed = [ln for ln in _stdout(outputs).splitlines() if ln.startswith("failed: ")]
        why = f"partial credit {score:g} of {points:g}" + (
            f" ({len(failed)} case{'s' * (len(failed) != 1)} failed; first: "
            f"{_one_line(failed[0][len('failed: '):], 160)})" if failed else "")
    why = why or "the check did not pass"
    answer_errors = [e for e in (_problem([nbformat.from_dict(o) for o in a]) for a in answers) if e]
    if answer_errors and not why.startswith("NotImplementedError"):
        why = f"answer cell: {answer_errors[0]}; check: {why}"
    return score, why


def _score(lesson: Lesson, res: Result, records, timed_out, rc, last_line, timeout) -> None:
    for ex in lesson.exercises:
        col = ex.column(lesson.stem)
        res.max_scores[col] = ex.points
        rec = records.get(ex.check_id)
        if rec is None:
            res.scores[col] = 0.0
            if timed_out:
                res.reasons[col] = f"timed out after {timeout:g} s"
            elif rc != 0:
                res.reasons[col] = "not run: the notebook stopped before this check" + (
                    f" ({_one_line(last_line, 160)})" if last_line else f" (exit status {rc})")
            else:
                res.reasons[col] = "not run: the check cell is missing from the submission"
            continue
        answers = [records[a].get("outputs", []) for a in ex.answer_ids if a in records]
        res.scores[col], res.reasons[col] = score_check(
            rec.get("outputs", []), ex.points, ok=rec.get("status") == "ok", answers=answers)


_LIMIT_HINTS = (  # an error a limit causes -> the limit, named as make grade spells it
    ("MemoryError", "memory", "MEMORY"),
    ("File too large", "file_size", "FILESIZE"),
    ("Resource temporarily unavailable", "processes", "PROCESSES"),
)


def _limit_hint(text: str, limits: sandbox.Limits) -> str:
    for needle, attr, var in _LIMIT_HINTS:
        if needle in text:
            v = getattr(limits, attr)
            shown = f"{v:d}" if attr == "processes" else f"{v / 2**20:g} MiB"
            return f" [the sandbox's limit: {var}={shown}]"
    return ""


def grade_submission(name: str, data: bytes, lessons: list[Lesson], url: str, *,
                     timeout: float, box: sandbox.Sandbox | None = None,
                     mode: str = GRADING_MODE, kernel: str = "python3") -> Result:
    """Grade one submission (its bytes) against the gradebook at `url`, in `box` (None:
    the sandbox of this machine, sandbox.make(); it raises SandboxUnavailable)."""
    box = box or sandbox.make()
    res = Result(name)
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a row, not a crash
        res.note = f"not a readable notebook: {type(e).__name__}: {_one_line(e, 160)}"
        return res
    lesson = identify(nb, name, lessons)
    if lesson is None:
        res.note = ("cannot tell which lesson this is: no nbgrader cell of any lesson and "
                    "no lesson name (e.g. 01_convolution) in the file name")
        return res
    res.lesson = lesson.stem
    if not lesson.exercises:
        res.note = "this lesson has no graded exercises"
        return res
    edited = _edited_checks(nb, lesson)
    try:
        nb = sanitize(nb, lesson, url)
    except Exception as e:  # noqa: BLE001
        for ex in lesson.exercises:
            col = ex.column(lesson.stem)
            res.scores[col], res.max_scores[col] = 0.0, ex.points
            res.reasons[col] = "not graded: the notebook's nbgrader cells could not be restored"
        res.note = f"nbgrader: {type(e).__name__}: {_one_line(e, 160)}"
        return res
    records, timed_out, rc, why, res.seconds, dropped = _run_isolated(nb, box, timeout, mode, kernel)
    _score(lesson, res, records, timed_out, rc, why, timeout)
    for col, reason in res.reasons.items():
        if reason != "passed":
            res.reasons[col] = reason + _limit_hint(reason, box.limits)
    notes = []
    if edited:
        notes.append("graded with the original check cells: " + ", ".join(edited))
    if timed_out:
        notes.append(f"timed out after {timeout:g} s")
    elif rc != 0:
        notes.append(f"stopped early: {_one_line(why, 160) or f'exit status {rc}'}")
    if dropped:
        notes.append(f"output over {box.limits.keep / 2**20:g} MiB not kept "
                     f"({dropped / 2**20:.1f} MiB dropped)")
    res.note = "; ".join(notes)
    return res


UNSAFE_NOTE = "UNSAFE=1: graded without a sandbox"


def _check_timeout(timeout) -> float:
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise ClassroomError(f"timeout (TIMEOUT) must be a number of seconds > 0, got {timeout!r}") from None
    if not timeout > 0:
        raise ClassroomError(f"timeout (TIMEOUT) must be a number of seconds > 0, got {timeout:g}")
    return timeout


def grade(submissions, *, out=DEFAULT_CSV, timeout: float = DEFAULT_TIMEOUT,
          source_dir: Path = SOURCE_DIR, mode: str = GRADING_MODE, kernel: str = "python3",
          unsafe: bool = False, limits: sandbox.Limits | None = None,
          log=print) -> list[Result]:
    """Grade every .ipynb under `submissions`, each in its own sandbox (sandbox.make:
    SandboxUnavailable where none can be made, unless `unsafe`); write the CSV to `out`
    (None: don't)."""
    timeout = _check_timeout(timeout)
    paths = find_submissions(submissions)
    lessons = load_lessons(source_dir)
    root = Path(submissions)
    # read everything first: a submission that writes into this folder changes nothing
    snapshot = [(p.relative_to(root).as_posix(), p.read_bytes()) for p in paths]
    hide = [root] + ([Path(out).resolve().parent] if out is not None else [])
    box = sandbox.make(limits, unsafe=unsafe, hide=hide)
    log(f"[grade] {len(snapshot)} submission{'s' * (len(snapshot) != 1)}, "
        + (f"each in a bubblewrap sandbox ({box.limits.describe()})" if box.safe
           else "WITHOUT a sandbox (UNSAFE=1)"))
    present = set()
    for name, data in snapshot:
        try:
            lesson = identify(nbformat.reads(data.decode("utf-8"), as_version=4), name, lessons)
            present.add(lesson.stem if lesson else None)
        except Exception:  # noqa: BLE001 - grade_submission says why
            continue
    results = []
    with tempfile.TemporaryDirectory(prefix="course-gradebook-",
                                     ignore_cleanup_errors=True) as gbdir:
        url = "sqlite:///" + str(Path(gbdir) / "gradebook.db")
        _gradebook(url, [L for L in lessons if L.stem in present])
        for i, (name, data) in enumerate(snapshot, 1):
            r = grade_submission(name, data, lessons, url, timeout=timeout, box=box, mode=mode,
                                 kernel=kernel)
            if not box.safe:
                r.note = "; ".join([UNSAFE_NOTE] + [r.note] * bool(r.note))
            results.append(r)
            log(f"[grade] {i}/{len(snapshot)} {name}: {r.lesson or '?'} "
                f"{r.total:g}/{r.max_total:g} in {r.seconds:.1f} s" + (f" ({r.note})" if r.note else ""))
    if out is not None:
        write_csv(results, lessons, out)
    return results


def write_csv(results: list[Result], lessons: list[Lesson], out) -> Path:
    """One row per submission; one points column per exercise of the lessons present,
    total and max, then one reason column per exercise, a note and the run time."""
    present = {r.lesson for r in results}
    cols = [ex.column(L.stem) for L in lessons if L.stem in present for ex in L.exercises]
    header = (["submission", "lesson"] + cols + ["total", "max_points"]
              + [f"{c} reason" for c in cols] + ["note", "seconds"])
    out = Path(out)
    with atomic_open(out, "w", mkdir=True, newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in results:
            w.writerow([r.submission, r.lesson]
                       + [f"{r.scores[c]:g}" if c in r.scores else "" for c in cols]
                       + [f"{r.total:g}", f"{r.max_total:g}"]
                       + [r.reasons.get(c, "") for c in cols]
                       + [r.note, f"{r.seconds:.1f}"])
    return out


# --------------------------------------------------------------------------- command line

def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(
        prog="python -m course_utils.classroom",
        description="Student versions of the lessons and automatic grading (nbgrader).")
    sub = ap.add_subparsers(dest="command", required=True)
    a = sub.add_parser("assignments", help="build lessons/<stem>/<notebook> from notebooks/")
    a.add_argument("--source", type=Path, default=SOURCE_DIR, help="instructor notebooks")
    a.add_argument("--out", type=Path, default=LESSONS_DIR, help="lessons folder")
    a.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a student version is out of date")
    g = sub.add_parser("grade", help="grade a folder of submitted notebooks into a CSV")
    g.add_argument("submissions", type=Path, help="folder of submitted .ipynb (searched recursively)")
    g.add_argument("--out", type=Path, default=DEFAULT_CSV, help="CSV to write (default: %(default)s)")
    g.add_argument("--timeout", default=DEFAULT_TIMEOUT,
                   help="seconds per notebook before it is stopped (default: %(default)s)")
    g.add_argument("--source", type=Path, default=SOURCE_DIR, help="instructor notebooks")
    g.add_argument("--mode", default=GRADING_MODE, choices=("smoke", "quick", "full"),
                   help="mode injected into every submission (default: %(default)s)")
    g.add_argument("--kernel", default="python3",
                   help="Jupyter kernel to run submissions with (default: python3, i.e. "
                        "this interpreter's environment)")
    d = sandbox.Limits()
    for opt, var, default, what in (
            ("--memory", "MEMORY", f"{d.memory >> 30}G", "data memory (heap) per process"),
            ("--processes", "PROCESSES", d.processes, "processes and threads in the sandbox"),
            ("--file-size", "FILESIZE", f"{d.file_size >> 20}M", "largest file it may write"),
            ("--cpu-time", "CPUTIME", d.cpu_time, "CPU seconds per process"),
            ("--scratch", "SCRATCH", f"{d.scratch >> 20}M", "size of each writable tmpfs")):
        g.add_argument(opt, metavar=var, help=f"sandbox limit: {what} (default: {default})")
    g.add_argument("--unsafe", nargs="?", const="1", default="", metavar="1",
                   help="grade without a sandbox where none can be made (UNSAFE=1); the "
                        "CSV's note says so on every row")
    args = ap.parse_args(argv)
    try:
        if args.command == "assignments":
            changed = build_assignments(args.source, args.out, check=args.check)
            if args.check and changed:
                print("out of date: " + ", ".join(map(str, changed))
                      + "\nrun `make assignments`", file=sys.stderr)
                return 1
            return 0
        unsafe = str(args.unsafe).strip()
        if unsafe not in ("", "0", "1"):
            raise ClassroomError(f"unsafe (UNSAFE) must be 1 (grade without a sandbox) or "
                                 f"empty; got {args.unsafe!r}")
        _check_timeout(args.timeout)
        limits = sandbox.Limits.parse(args.memory, args.processes, args.file_size,
                                      args.cpu_time, args.scratch)
        results = grade(args.submissions, out=args.out, timeout=args.timeout,
                        source_dir=args.source, mode=args.mode, kernel=args.kernel,
                        unsafe=unsafe == "1", limits=limits,
                        log=lambda m: print(m, file=sys.stderr, flush=True))
        print(f"{len(results)} submission{'s' * (len(results) != 1)} graded; table: {args.out}")
        return 0
    except (ClassroomError, sandbox.SandboxError, sandbox.SandboxUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
