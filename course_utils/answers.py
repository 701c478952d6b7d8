"""One answer to one exercise, scored fast: for the kit's tests and for an instructor trying
out a wrong answer (classroom.check_answers). Not a sandbox: submissions are graded by
classroom.grade.

The answer runs with the notebook's parameters cell (mode injected) and the code cell after
it, then the exercise's check cell as the notebook has it (hidden tests included), in a fresh
namespace of one subprocess shared by all the answers, and is scored by
classroom.score_check exactly as grading scores it."""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .classroom import (GRADING_MODE, ClassroomError, _check_timeout, _nbgrader, _one_line,
                        _stdout, exercises_of, score_check)


@dataclass
class AnswerResult:
    exercise: str
    score: float
    points: float
    reason: str
    output: str = ""        # what the check cell printed

    @property
    def full(self) -> bool:
        return self.score >= self.points


def _setup_cells(nb) -> tuple[int, int]:
    """Indices of the parameters cell and of the code cell after it (imports, nb.setup)."""
    params = next((i for i, c in enumerate(nb.cells)
                   if "parameters" in c.metadata.get("tags", [])), None)
    if params is None:
        raise ClassroomError("the notebook has no cell tagged 'parameters'")
    setup = next((i for i in range(params + 1, len(nb.cells))
                  if nb.cells[i].cell_type == "code"), None)
    if setup is None:
        raise ClassroomError("the notebook has no code cell after its parameters cell")
    return params, setup


def check_answers(path, answers, *, timeout: float = 60.0, mode: str = GRADING_MODE,
                  log=None) -> list[AnswerResult]:
    """Score answers to single exercises of the notebook at `path`, without running the
    notebook: for the kit's tests and for an instructor trying out a wrong answer. It is
    not a sandbox: grade submissions with grade().

    `answers`: (exercise name, answer) pairs; an answer is the source of the exercise's
    answer cell (a list: one source per answer cell), or None for the notebook's own. Each
    runs in a fresh namespace seeded with the notebook's parameters cell (`mode` injected,
    out_dir a temporary folder) and the code cell after it (the imports and nb.setup), then
    the exercise's check cell as the notebook has it, hidden tests included, and is scored
    by score_check as grading scores it. All answers run one after the other in one
    subprocess (in a temporary folder, MPLBACKEND=Agg); each answer with its check is
    stopped after `timeout` seconds (the setup is not timed). A check cell must therefore
    need nothing but that setup and its answer."""
    timeout = _check_timeout(timeout)
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    exercises = {e.name: e for e in exercises_of(nb)}
    by_id = {_nbgrader(c)["grade_id"]: c for c in nb.cells if "grade_id" in _nbgrader(c)}
    params, setup = _setup_cells(nb)
    runs, order = [], []
    for name, answer in answers:
        if name not in exercises:
            raise ClassroomError(f"exercise {name!r} is not one of {path.name}'s: "
                                 f"{', '.join(exercises) or 'it has none'}")
        ex = exercises[name]
        if answer is None:
            sources = [by_id[a].source for a in ex.answer_ids]
        else:
            sources = [answer] if isinstance(answer, str) else list(answer)
        runs.append({"answers": sources, "check": by_id[ex.check_id].source})
        order.append(ex)
    import json
    import subprocess

    results: list[AnswerResult] = []
    with tempfile.TemporaryDirectory(prefix="course-check-", ignore_cleanup_errors=True) as tmp:
        out_file = Path(tmp) / "results.jsonl"
        injected = f"\nmode = {mode!r}\nout_dir = {str(Path(tmp) / 'out')!r}\n"
        job = {"context": [nb.cells[params].source + injected, nb.cells[setup].source],
               "runs": runs, "timeout": timeout, "results": str(out_file)}
        env = {**os.environ, "MPLBACKEND": "Agg"}
        cmd = [sys.executable, "-c", "from course_utils.answers import _check_worker; _check_worker()"]
        stderr = ""
        try:
            r = subprocess.run(cmd, input=json.dumps(job), capture_output=True, text=True,
                               cwd=tmp, env=env, timeout=timeout * len(runs) + 120)
            stderr = r.stderr
        except subprocess.TimeoutExpired:
            stderr = "the worker did not finish in time"
        done = [json.loads(ln) for ln in out_file.read_text().splitlines()] if out_file.is_file() else []
    for i, ex in enumerate(order):
        if i >= len(done):
            last = [ln for ln in stderr.splitlines() if ln.strip()]
            results.append(AnswerResult(ex.name, 0.0, ex.points,
                                        "not run: " + (_one_line(last[-1], 160) if last else "the worker stopped")))
            continue
        rec = done[i]
        score, why = score_check(rec["check"]["outputs"], ex.points, ok=rec["check"]["status"] == "ok",
                                 answers=rec["answers"])
        results.append(AnswerResult(ex.name, score, ex.points, why, _stdout(rec["check"]["outputs"])))
        if log:
            log(f"[check] {ex.name}: {score:g}/{ex.points:g} {why}")
    return results


class _Stop(BaseException):
    """Raised in the worker when an answer's time is up (not caught by `except Exception`)."""


def _run_source(source: str, ns: dict) -> tuple[str, list]:
    """Run one cell's source in `ns` as a kernel would: its outputs in nbformat's form
    (stdout, stderr, then the last expression's value as the result, or the error)."""
    import ast
    import contextlib
    import io
    import traceback

    out, err = io.StringIO(), io.StringIO()
    result, error = None, None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            tree = ast.parse(source)
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr) and not source.rstrip().endswith(";"):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, "<cell>", "exec"), ns)
            if last is not None:
                value = eval(compile(last, "<cell>", "eval"), ns)
                if value is not None:
                    result = repr(value)
    except _Stop as e:
        error = {"output_type": "error", "ename": "TimeoutError", "evalue": str(e), "traceback": [],
                 "stopped": True}
    except BaseException as e:  # noqa: BLE001 - the answer's error is its output
        error = {"output_type": "error", "ename": type(e).__name__, "evalue": str(e),
                 "traceback": traceback.format_exception(type(e), e, e.__traceback__)}
    outputs = [{"output_type": "stream", "name": name, "text": buf.getvalue()}
               for name, buf in (("stdout", out), ("stderr", err)) if buf.getvalue()]
    if result is not None:
        outputs.append({"output_type": "execute_result", "data": {"text/plain": result},
                        "metadata": {}, "execution_count": None})
    if error is not None:
        outputs.append(error)
    return ("ok" if error is None else "error"), outputs


def _check_worker() -> None:
    """check_answers' subprocess: reads the job (JSON) on stdin, appends one JSON line per
    answer to the job's results file."""
    import json
    import signal

    job = json.loads(sys.stdin.read())
    limit = float(job["timeout"])

    def stop(*_):
        raise _Stop(f"timed out after {limit:g} s")

    signal.signal(signal.SIGALRM, stop)
    for run in job["runs"]:
        ns = {"__name__": "__main__"}
        context_error = None
        for src in job["context"]:     # the setup (the first imports torch): not timed
            status, outputs = _run_source(src, ns)
            if status != "ok":
                context_error = dict(outputs[-1], evalue="the notebook's setup failed: "
                                     + str(outputs[-1].get("evalue", "")))
                break
        if context_error is not None:
            rec = {"answers": [], "check": {"status": "error", "outputs": [context_error]}}
        else:
            signal.setitimer(signal.ITIMER_REAL, limit)
            try:
                answers = [_run_source(src, ns)[1] for src in run["answers"]]
                timed_out = [o for a in answers for o in a if o.get("stopped")]
                if timed_out:     # the time is up: the check does not run
                    status, outputs, answers = "error", timed_out[:1], []
                else:
                    status, outputs = _run_source(run["check"], ns)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            rec = {"answers": answers, "check": {"status": status, "outputs": outputs}}
        with open(job["results"], "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, default=str) + "\n")
