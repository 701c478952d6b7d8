"""Classroom (issue 8): student versions in lessons/ and automatic grading, on nbgrader.

Pure checks run for every notebook; the grading runs execute lesson 01 only (the fastest,
seconds in smoke mode), once, with one folder holding every kind of submission. The
plausible wrong answers to lesson 01's exercises (issue 18) are scored one exercise at a
time by answers.check_answers, all in one process, without running the notebook."""
import ast
import csv
import re
import shutil
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import processes_with
from course_utils import answers, classroom
from course_utils.checks import Cases, Forbidden, formula_only

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob(classroom.NOTEBOOK_GLOB))
IDS = [p.stem for p in NOTEBOOKS]
WITH_EXERCISES = [p for p in NOTEBOOKS if classroom.exercises_of(nbformat.read(p, as_version=4))]
LESSON01 = REPO / "notebooks" / "01_convolution.ipynb"
EX01 = classroom.exercises_of(nbformat.read(LESSON01, as_version=4))


def _student_path(path):
    return REPO / "lessons" / path.stem / path.name


def _nbg(cell):
    return cell.metadata.get("nbgrader", {})


def _view(nb):
    """What must match between a committed student version and a fresh build."""
    keep = ("nbgrader", "tags", "editable", "deletable")
    return ([(c.cell_type, c.get("id"), c.source, {k: c.metadata.get(k) for k in keep})
             for c in nb.cells], nb.metadata.get("kernelspec"))


# ------------------------------------------------------------------ student versions

@pytest.fixture(scope="module")
def fresh_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("lessons")
    classroom.build_assignments(REPO / "notebooks", out, log=lambda *_: None)
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_version_is_committed_and_in_sync(path, fresh_build):
    committed = _student_path(path)
    assert committed.is_file(), f"{committed.relative_to(REPO)} is missing: run `make assignments`"
    fresh = nbformat.read(fresh_build / path.stem / path.name, as_version=4)
    assert _view(nbformat.read(committed, as_version=4)) == _view(fresh), (
        f"{committed.relative_to(REPO)} is out of sync with notebooks/{path.name}: "
        "run `make assignments` and commit lessons/")


def test_no_student_version_without_its_notebook():
    stems = {p.stem for p in NOTEBOOKS}
    stale = [str(p.relative_to(REPO)) for p in (REPO / "lessons").glob("*/*.ipynb")
             if p.stem not in stems or p.parent.name != p.stem]
    assert not stale, f"student versions without a notebook in notebooks/: {stale}"


def _regions(source, begin, end):
    """The stripped lines inside begin/end marker regions, and those outside, in order."""
    inside, outside, state = [], [], False
    for line in source.split("\n"):
        if begin in line:
            state = True
        elif end in line:
            state = False
        elif line.strip():
            (inside if state else outside).append(line.strip())
    return inside, outside


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_version_has_no_solution_and_no_hidden_check(path):
    src = nbformat.read(path, as_version=4)
    stu = nbformat.read(_student_path(path), as_version=4)
    text = "\n".join(c.source for c in stu.cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"{marker!r} in the student version"
    by_id = {_nbg(c)["grade_id"]: c for c in stu.cells if "grade_id" in _nbg(c)}
    # what the notebook shows outside its answers and hidden tests may appear anywhere
    public = "\n".join(ln for c in src.cells for ln in _regions(
        "\n".join(_regions(c.source, "BEGIN SOLUTION", "END SOLUTION")[1]),
        "BEGIN HIDDEN", "END HIDDEN")[1])
    for cell in src.cells:
        meta = _nbg(cell)
        if not meta:
            continue
        gid = meta["grade_id"]
        assert gid in by_id, f"{gid} is missing from the student version"
        if meta.get("solution"):
            inside, outside = _regions(cell.source, "BEGIN SOLUTION", "END SOLUTION")
            leaked = [ln for ln in inside if ln in by_id[gid].source and ln not in public]
            assert not leaked, f"solution lines of {gid} in the student version: {leaked}"
            assert "raise NotImplementedError()" in by_id[gid].source
        if meta.get("grade"):
            inside, outside = _regions(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
            hidden_only = [ln for ln in inside if ln not in outside]
            leaked = [ln for ln in hidden_only if ln in text and ln not in public]
            assert not leaked, f"hidden test lines of {gid} in the student version: {leaked}"
            # the visible checks are kept, whole
            assert _regions(by_id[gid].source, "BEGIN HIDDEN", "END HIDDEN")[1] == outside, (
                f"{gid}: the visible checks differ from the notebook's")
    assert all(not c.get("outputs") for c in stu.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.stem for p in WITH_EXERCISES])
def test_exercises_are_marked_for_nbgrader(path):
    nb = nbformat.read(path, as_version=4)
    exercises = classroom.exercises_of(nb)
    assert len({e.name for e in exercises}) == len(exercises)
    for cell in nb.cells:
        meta = _nbg(cell)
        if meta.get("solution"):
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, meta
        if meta.get("grade"):
            assert meta.get("locked") and meta.get("points", 0) > 0, meta
            assert "### BEGIN HIDDEN TESTS" in cell.source, (
                f"{path.name}: check cell {meta['grade_id']} has no hidden tests "
                "(### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS)")
    for e in exercises:
        assert e.answer_ids, f"{path.name}: check {e.check_id} follows no answer cell"


def _defined_names(source):
    tree = ast.parse(source)
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.stem for p in WITH_EXERCISES])
def test_untouched_student_answers_are_stubs_the_checks_call(path):
    """Pure counterpart, for every lesson, of grading an untouched student version: each
    answer cell defines what the instructor's does, as a stub that raises, and the check
    after it uses one of those names (so it reaches the stub)."""
    src = nbformat.read(path, as_version=4)
    stu = {_nbg(c)["grade_id"]: c for c in nbformat.read(_student_path(path), as_version=4).cells
           if "grade_id" in _nbg(c)}
    for e in classroom.exercises_of(src):
        names = set()
        for a in e.answer_ids:
            original = next(c for c in src.cells if _nbg(c).get("grade_id") == a)
            assert _defined_names(stu[a].source) == _defined_names(original.source), a
            names |= _defined_names(original.source)
        check = stu[e.check_id].source
        assert any(re.search(rf"\b{re.escape(n)}\b", check) for n in names), (
            f"{e.check_id} uses none of {sorted(names)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_student_version_has_no_path_relative_to_where_it_runs(path):
    """Every default path is None, resolved from the kit's folder by nb.setup / the
    notebook: a relative default ("../build/out") would land wherever the kernel stands."""
    for nb in (nbformat.read(path, as_version=4), nbformat.read(_student_path(path), as_version=4)):
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert re.search(r"^out_dir = None\b", params.source, re.M), params.source
        assert not re.findall(r"""=\s*["'](\.\.?/|build/|data/)""", params.source), params.source


SECTIONS = ["Learning objectives", "Prerequisites", "Run time", "50-minute outline",
            "Discussion questions", "Exercises"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_lesson_plan(path):
    readme = REPO / "lessons" / path.stem / "README.md"
    assert readme.is_file(), f"{readme.relative_to(REPO)} is missing: write the lesson plan"
    text = readme.read_text()
    headings = re.findall(r"^#+\s*(.+?)\s*$", text, re.M)
    for s in SECTIONS:
        assert any(h.lower().startswith(s.lower()) for h in headings), f"no '{s}' section"
    for e in classroom.exercises_of(nbformat.read(path, as_version=4)):
        rows = [ln for ln in text.splitlines() if f"`{e.name}`" in ln]
        assert rows, f"exercise {e.name} is not in the lesson plan"
        assert any(re.search(rf"\|\s*{e.points:g}\s*\|", ln) for ln in rows), (
            f"the lesson plan does not give {e.name}'s {e.points:g} point(s)")


def test_assignments_is_a_no_op_when_in_sync(tmp_path):
    out = tmp_path / "lessons"
    first = classroom.build_assignments(REPO / "notebooks", out, log=lambda *_: None)
    assert len(first) == len(NOTEBOOKS)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.ipynb")}
    assert classroom.build_assignments(REPO / "notebooks", out, log=lambda *_: None) == []
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.ipynb")} == mtimes
    assert classroom.main(["assignments", "--out", str(out), "--check"]) == 0
    victim = out / LESSON01.stem / LESSON01.name
    victim.write_text(victim.read_text().replace("raise NotImplementedError()", "return 0", 1))
    assert classroom.main(["assignments", "--out", str(out), "--check"]) == 1
    assert "return 0" in victim.read_text()   # --check writes nothing


# ------------------------------------------------------------------ grading: pure parts

def test_identify_by_grade_ids_then_by_file_name():
    lessons = classroom.load_lessons()
    by_stem = {L.stem: L for L in lessons}
    stu = nbformat.read(_student_path(LESSON01), as_version=4)
    assert classroom.identify(stu, "whatever.ipynb", lessons) is by_stem["01_convolution"]
    # the check ids ex1_check.. repeat across lessons; the answer ids decide
    lesson05 = nbformat.read(_student_path(REPO / "notebooks" / "05_res2net.ipynb"), as_version=4)
    assert classroom.identify(lesson05, "01_convolution.ipynb", lessons) is by_stem["05_res2net"]
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    assert classroom.identify(bare, "alice/01_convolution.ipynb", lessons) is by_stem["01_convolution"]
    assert classroom.identify(bare, "alice_03_whatever.ipynb", lessons) is by_stem["03_inception_spectrum"]
    assert classroom.identify(bare, "homework.ipynb", lessons) is None


def test_check_cells_are_restored_with_their_hidden_tests(tmp_path):
    """nbgrader's OverwriteCells, as grading runs it: an edited check cell and a deleted
    one come back as the notebook has them, hidden tests included."""
    lessons = classroom.load_lessons()
    lesson = next(L for L in lessons if L.stem == LESSON01.stem)
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    classroom._gradebook(url, [lesson])
    nb = nbformat.read(_student_path(LESSON01), as_version=4)
    first, second = [c for c in nb.cells if _nbg(c).get("grade")][:2]
    first.source = "pass  # trust me"
    nb.cells.remove(second)
    assert classroom._edited_checks(nb, lesson) == [
        f"{_nbg(first)['grade_id']} (edited)", f"{_nbg(second)['grade_id']} (deleted)"]
    restored = classroom.sanitize(nb, lesson, url)
    original = {_nbg(c)["grade_id"]: c.source for c in lesson.nb.cells if _nbg(c).get("grade")}
    got = {_nbg(c)["grade_id"]: c.source for c in restored.cells if _nbg(c).get("grade")}
    assert set(got) == set(original)
    for gid, src in original.items():
        assert "BEGIN HIDDEN TESTS" in got[gid] and src.strip() in got[gid], gid


@pytest.mark.parametrize("args,needle", [
    (["grade", "{tmp}/nowhere"], "SUBMISSIONS"),
    (["grade", "{tmp}/file.txt"], "SUBMISSIONS"),
    (["grade", "{tmp}/empty"], "no .ipynb"),
    (["grade", "{tmp}/subs", "--timeout", "0"], "TIMEOUT"),
    (["grade", "{tmp}/subs", "--timeout", "-5"], "TIMEOUT"),
    (["grade", "{tmp}/subs", "--timeout", "soon"], "TIMEOUT"),
])
def test_bad_input_is_a_clear_error(tmp_path, capsys, args, needle):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "subs").mkdir()
    shutil.copy(_student_path(LESSON01), tmp_path / "subs" / LESSON01.name)
    out = tmp_path / "grades.csv"
    argv = [a.format(tmp=tmp_path) for a in args] + ["--out", str(out)]
    assert classroom.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err, err
    assert not out.exists()


def test_csv_is_written_atomically_with_one_column_per_exercise(tmp_path):
    lessons = classroom.load_lessons()
    a, b = [f"01_convolution:{e.name}" for e in EX01[:2]]
    r1 = classroom.Result("a.ipynb", "01_convolution", {a: 1.0, b: 0.5}, {a: 1.0, b: 1.0},
                          {b: "partial credit 0.5 of 1"}, "", 1.0)
    r2 = classroom.Result("b.ipynb", note="cannot tell which lesson this is")
    out = tmp_path / "g.csv"
    out.write_text("old")
    classroom.write_csv([r1, r2], lessons, out)
    assert [p.name for p in tmp_path.iterdir()] == ["g.csv"]   # no temporary left
    rows = list(csv.DictReader(out.open()))
    ex01 = [e.name for e in classroom.exercises_of(nbformat.read(LESSON01, as_version=4))]
    header = list(rows[0])
    assert [h for h in header if ":" in h and not h.endswith("reason")] == \
        [f"01_convolution:{n}" for n in ex01]          # only the lessons present
    assert rows[0]["total"] == "1.5" and rows[0]["max_points"] == "2" and rows[0][b] == "0.5"
    assert rows[0][f"{b} reason"] == "partial credit 0.5 of 1"
    assert rows[1]["lesson"] == "" and rows[1]["total"] == "0" and "which lesson" in rows[1]["note"]


def test_makefile_and_readme_document_the_commands():
    mk = (REPO / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", mk, re.M).group(1).split()
    assert {"assignments", "grade"} <= set(phony)
    head = "".join(ln for ln in mk.splitlines(keepends=True) if ln.startswith("#"))
    assert "make assignments" in head and "make grade" in head
    assert re.search(r"^grade:.*\b(setup|data)\b", mk, re.M)
    assert re.search(r"^assignments:.*\bsetup\b", mk, re.M)
    readme = (REPO / "README.md").read_text()
    assert "## Classroom" in readme and "make grade SUBMISSIONS=" in readme and "nbgrader" in readme


# ------------------------------------------------------------------ exercise checks (course_utils.checks)

def test_cases_give_each_case_its_share_of_the_points(capsys):
    c = Cases("exercise 9", points=3)
    assert c.call(lambda h: h + 1, 1, expect=2)
    assert not c.call(lambda h: h / 2, 4, expect=2)                 # a float where an int is due
    assert c.call(lambda: (torch.ones(2), 5), expect=(torch.ones(2), 5), label="pair")
    assert not c.call(lambda: torch.ones(2, 2), expect=torch.ones(2), label="shape")
    assert not c.call(lambda: torch.full((2,), 1.5), expect=torch.ones(2), tol=0.1, label="values")
    assert not c.call(lambda: 1 / 0, expect=1, label="raises")
    assert c.score() == pytest.approx(3 * 2 / 6, abs=1e-4)
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == ["failed: <lambda>(4) should be the whole number 2 (an int), got 2.0",
                       "failed: shape should have shape (2,), got shape (2, 2)",
                       "failed: values is off by up to 0.5 (tolerance 0.1)",
                       "failed: raises raised ZeroDivisionError: division by zero"]
    assert out[4] == "exercise 9: 2 of 6 cases pass: 1 of 3 points"
    full = Cases("exercise 9", points=2)
    full.call(max, 1, 2, expect=2, weight=3)
    assert full.score() == 2.0


def test_cases_raise_when_nothing_passes_and_stop_at_a_stub():
    c = Cases("e", points=1)
    c.call(lambda: 1 / 0, expect=1)
    c.call(lambda: 2, expect=1)
    with pytest.raises(ZeroDivisionError):             # the first case's own error
        c.score()
    c = Cases("e", points=1)
    c.call(lambda: 2, expect=1, label="f()")
    c.call(lambda: 3, expect=1, label="g()")
    with pytest.raises(AssertionError, match=r"^f\(\) should be 1, got 2 \(and the other 1 cases"):
        c.score()

    def stub():
        raise NotImplementedError()
    with pytest.raises(NotImplementedError):          # an unanswered exercise stops at once
        Cases("e", points=1).call(stub, expect=1)
    with pytest.raises(AssertionError, match="ran no case"):
        Cases("e", points=1).score()


def test_a_slow_case_fails_alone_and_an_outer_alarm_survives():
    import signal
    c = Cases("e", points=2, time_limit=0.2)
    t0 = time.perf_counter()
    c.call(time.sleep, 30, expect=None, label="slow")
    c.call(lambda: 1, expect=1)
    assert time.perf_counter() - t0 < 5
    assert [x.ok for x in c.cases] == [False, True] and "took longer than 0.2 s" in c.cases[0].message
    signal.setitimer(signal.ITIMER_REAL, 100)          # an alarm of the caller: put back, less the time
    try:
        Cases("e", points=1, time_limit=1).call(lambda: 1, expect=1)
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 90 < left <= 100, left
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def test_formula_only_switches_off_convolutions_and_modules_then_puts_them_back():
    x, k = torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3)
    before = F.conv2d(x, k)
    from torch.nn.functional import conv2d as taken, max_pool2d as taken_pool   # as an answer would
    with formula_only("exercise 9 asks for a formula"):
        for fn in (lambda: taken(x, k), lambda: taken_pool(x, 2),
                   lambda: F.conv2d(x, k), lambda: torch.conv2d(x, k),
                   lambda: F.conv_transpose2d(x, k), lambda: F.max_pool2d(x, 2),
                   lambda: F.avg_pool2d(x, 2), lambda: F.unfold(x, 3), lambda: x.unfold(2, 2, 1),
                   lambda: nn.Linear(4, 4)(x), lambda: nn.Identity()(x)):
            with pytest.raises(Forbidden, match="switched off in this check: exercise 9 asks"):
                fn()
        assert (x + 1).sum() == 32                    # arithmetic still works
    assert torch.equal(F.conv2d(x, k), before) and torch.equal(taken(x, k), before) and nn.Identity()(x) is x
    assert torch.equal(F.max_pool2d(x, 2), torch.ones(1, 1, 2, 2)) and x.unfold(2, 2, 1).shape == (1, 1, 3, 4, 2)


def test_formula_only_without_building_refuses_even_the_meta_device():
    nn.Linear(2, 2)                                   # built as usual before
    with formula_only("exercise 9 asks for a formula", build=False):
        with pytest.raises(Forbidden, match="constructing a torch.nn module is switched off in this check"):
            with torch.device("meta"):
                nn.Linear(10 ** 6, 10 ** 6)
        assert (torch.ones(3) * 2).sum() == 6
    with torch.device("meta"):
        assert nn.Linear(10 ** 6, 10 ** 6).weight.shape == (10 ** 6, 10 ** 6)


def test_switched_off_reaches_a_function_taken_by_name_then_puts_it_back():
    from course_utils import stats
    from course_utils.checks import switched_off
    taken = stats.t_quantile                          # as an answer cell would import it
    before = taken(0.975, 4)
    with switched_off(stats, "compute it yourself"):
        for fn in (lambda: taken(0.975, 4), lambda: stats.t_quantile(0.975, 4)):
            with pytest.raises(Forbidden, match="course_utils.stats is switched off in this check: compute it"):
                fn()
    assert taken(0.975, 4) == before == pytest.approx(2.7764, abs=1e-4)


def test_score_check_reads_partial_credit_as_nbgrader_does():
    def stdout(text):
        return {"output_type": "stream", "name": "stdout", "text": text}

    def result(value):
        return {"output_type": "execute_result", "data": {"text/plain": value}, "metadata": {},
                "execution_count": 1}
    partial = [stdout("failed: f(1) should be 2, got 3\nfailed: f(2) should be 4, got 5\n"
                      "e: 1 of 3 cases pass: 1 of 3 points\n"), result("1.0")]
    assert classroom.score_check(partial, 3) == (
        1.0, "partial credit 1 of 3 (2 cases failed; first: f(1) should be 2, got 3)")
    assert classroom.score_check([result("3.0")], 3) == (3.0, "passed")
    assert classroom.score_check([stdout("ok\n")], 3) == (3.0, "passed")     # a check that prints
    assert classroom.score_check([result("1.0")], 3, ok=False)[0] == 0.0
    err = {"output_type": "error", "ename": "AssertionError", "evalue": "f(1) should be 2",
           "traceback": []}
    assert classroom.score_check([stdout("x\n"), err], 3) == (0.0, "AssertionError: f(1) should be 2")
    assert classroom.score_check([result("2.0"), {"output_type": "stream", "name": "stderr",
                                                  "text": "w"}], 3)[0] == 2.0   # as nbgrader: first wins
    answer_err = [{"output_type": "error", "ename": "NameError", "evalue": "x", "traceback": []}]
    assert classroom.score_check([result("0.5")], 1, answers=[answer_err])[1] == (
        "answer cell: NameError: x; check: partial credit 0.5 of 1")


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=[p.stem for p in WITH_EXERCISES])
def test_a_check_that_scores_cases_gives_the_points_of_its_cell(path):
    """Cases(..., points=N) in a check cell must be the cell's nbgrader points: more would
    make nbgrader refuse the partial credit, fewer would never give full marks."""
    for cell in nbformat.read(path, as_version=4).cells:
        meta = _nbg(cell)
        m = re.search(r"\bCases\([^)]*points=([\d.]+)", cell.source)
        if meta.get("grade") and m:
            assert float(m.group(1)) == meta["points"], (meta["grade_id"], m.group(0))


# ------------------------------------------------------------------ lesson 01's exercises, one answer at a time

def _both(a, b):
    return a + "\n\n\n" + b


_TRANSPOSED = ("def transposed_out_size(h, k, s=1, p=0, d=1, output_padding=0):\n"
               "    return (h - 1) * s - 2 * p + d * (k - 1) + output_padding + 1\n")
_PADDING = ("def output_padding_for(h, k, s=1, p=0, d=1):\n"
            "    return (h + 2 * p - d * (k - 1) - 1) % s\n")
_RF = ("def receptive_field(layers):\n    r, jump = 1, 1\n    for layer in layers:\n"
       "        d = layer[3] if layer[0] == 'conv' else 1\n"
       "        r += d * (layer[1] - 1) * jump\n        jump *= layer[2]\n    return r\n")
_BLOCKS = ("def blocks_to_see(size, block):\n    n = 0\n"
           "    while receptive_field(block * n) < size:\n        n += 1\n    return n\n")
_MERGE = ("import torch\n\ndef merge_convs(w1, b1, w2, b2):\n"
          "    k1, k2 = w1.shape[-1], w2.shape[-1]\n"
          "    w = torch.zeros(w2.shape[0], w1.shape[1], k1 + k2 - 1, k1 + k2 - 1)\n"
          "    for u in range(k2):\n        for v in range(k2):\n"
          "            w[:, :, u:u + k1, v:v + k1] += {TAP}\n"
          "    return w, {BIAS}\n")
_TAP = "torch.einsum('om,mcij->ocij', w2[:, :, u, v], w1)"
_BIAS = "b2 + torch.einsum('omuv,m->o', w2, b1)"

# Plausible wrong answers to every exercise of lesson 01: (key, what is wrong, answer, the
# score it gets; None: below full marks and above 0, checked without a number)
WRONG01 = {
    "ex1_transposed": [
        ("plus1", "the + 1 forgotten (off by one)",
         _both(_TRANSPOSED.replace(" + 1\n", "\n"), _PADDING), 0.9231),
        ("dilation", "output_padding_for without the dilation (passes every visible case)",
         _both(_TRANSPOSED, _PADDING.replace("d * (k - 1)", "(k - 1)")), 1.8462),
        ("built", "the layers built and run instead of a formula",
         _both("import torch, torch.nn as nn\n\ndef transposed_out_size(h, k, s=1, p=0, d=1, output_padding=0):\n"
               "    t = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, dilation=d, output_padding=output_padding)\n"
               "    return t(torch.zeros(1, 1, h, h)).shape[-1]\n",
               "def output_padding_for(h, k, s=1, p=0, d=1):\n"
               "    o = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, h, h)).shape[-1]\n"
               "    return h - transposed_out_size(o, k, s, p, d)\n"), 0.0),
    ],
    "ex2_receptive_field": [
        ("strides", "the strides ignored (every layer adds d(k - 1))",
         _both(_RF.replace(" * jump\n", "\n"), _BLOCKS), 1.3846),
        ("pool", "a pooling layer counted by its stride only",
         _both(_RF.replace("        d = layer[3] if layer[0] == 'conv' else 1\n",
                           "        d = layer[3] if layer[0] == 'conv' else 0\n"), _BLOCKS), 2.3077),
        ("late", "blocks_to_see one block too many when the field fits exactly",
         _both(_RF, _BLOCKS.replace("< size:", "<= size and size > 1:")), 2.7692),
        ("built", "the network built and measured by gradient",
         _both("import torch, torch.nn as nn\n\ndef receptive_field(layers):\n"
               "    mods = [nn.Conv2d(1, 1, L[1], stride=L[2], dilation=L[3], padding=L[3] * (L[1] // 2))\n"
               "            if L[0] == 'conv' else nn.AvgPool2d(L[1], L[2]) for L in layers]\n"
               "    x = torch.zeros(1, 1, 128, 128, requires_grad=True)\n"
               "    y = nn.Sequential(*mods)(x)\n"
               "    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()\n"
               "    rows = (x.grad[0, 0] != 0).any(1).nonzero()\n"
               "    return int(rows.max() - rows.min() + 1)\n", _BLOCKS), 0.0),
    ],
    "ex3_merge": [
        ("bias", "the first bias left out (b = b2)",
         _MERGE.replace("{TAP}", _TAP).replace("{BIAS}", "b2.clone()"), 2.6667),
        ("flipped", "the second kernel flipped (a convolution where a cross-correlation is due)",
         _MERGE.replace("{TAP}", _TAP.replace("u, v]", "k2 - 1 - u, k2 - 1 - v]")).replace("{BIAS}", _BIAS),
         2.6667),
        ("channels", "the middle channels not summed (only the first one used)",
         _MERGE.replace("{TAP}", "w2[:, :1, u, v, None, None] * w1[0]")
               .replace("{BIAS}", "b2 + w2[:, 0].sum((1, 2)) * b1[0]"), 2.6667),
    ],
}


def _wrong(exercise, key):
    return next(src for k, _, src, _ in WRONG01[exercise] if k == key)


def _student_answers(path):
    """Each exercise's answer cells as the student version has them (stubs that raise)."""
    stu = {_nbg(c)["grade_id"]: c.source for c in nbformat.read(_student_path(path), as_version=4).cells
           if _nbg(c).get("solution")}
    return {e.name: [stu[a] for a in e.answer_ids] for e in classroom.exercises_of(
        nbformat.read(path, as_version=4))}


@pytest.fixture(scope="module")
def quick():
    """Every answer of the tests below, scored by answers.check_answers: one process, each
    answer in a fresh namespace with the notebook's setup cells and the whole check cell."""
    runs = ([(e.name, None) for e in EX01]
            + [(name, src) for name, src in _student_answers(LESSON01).items()]
            + [(name, src) for name, cases in WRONG01.items() for _, _, src, _ in cases])
    t0 = time.perf_counter()
    results = answers.check_answers(LESSON01, runs, timeout=60)
    print(f"check_answers: {len(runs)} answers in {time.perf_counter() - t0:.1f} s")
    n = len(EX01)
    wrong = iter(results[2 * n:])
    return dict(solutions=results[:n], untouched=results[n:2 * n],
                wrong={(name, k): next(wrong) for name, cases in WRONG01.items() for k, *_ in cases})


def test_every_exercise_of_lesson01_keeps_wrong_answers():
    assert set(WRONG01) == {e.name for e in EX01}
    assert all(WRONG01[e.name] for e in EX01)


def test_solutions_score_full_marks_one_exercise_at_a_time(quick):
    for e, r in zip(EX01, quick["solutions"]):
        assert (r.exercise, r.score, r.reason) == (e.name, e.points, "passed"), r


def test_untouched_answers_score_zero_one_exercise_at_a_time(quick):
    for r in quick["untouched"]:
        assert r.score == 0 and r.reason.startswith("NotImplementedError: not answered yet"), r


@pytest.mark.parametrize("exercise,key", [(name, k) for name, cases in WRONG01.items() for k, *_ in cases],
                         ids=[f"{name}-{k}" for name, cases in WRONG01.items() for k, *_ in cases])
def test_a_wrong_answer_scores_less_than_full_marks(quick, exercise, key):
    r = quick["wrong"][(exercise, key)]
    _, what, _, expected = next(c for c in WRONG01[exercise] if c[0] == key)
    assert r.score < r.points, f"{exercise}: '{what}' got full marks: {r}"
    assert r.score == pytest.approx(expected, abs=1e-4), r
    if expected:
        assert r.reason.startswith(f"partial credit {expected:g} of {r.points:g} ("), r
    if key == "built":      # "from a formula" is enforced: building the model is switched off
        assert r.reason.startswith("Forbidden: running a torch.nn module is switched off"), r


def test_check_answers_stops_a_slow_answer_and_names_bad_input():
    with pytest.raises(classroom.ClassroomError, match="'ex9' is not one of 01_convolution"):
        answers.check_answers(LESSON01, [("ex9", None)])
    r, = answers.check_answers(LESSON01, [(EX01[0].name, "while True:\n    pass")], timeout=2)
    assert (r.score, r.reason) == (0.0, "TimeoutError: timed out after 2 s"), r


# ------------------------------------------------------------------ grading: runs (lesson 01)

def _answers(path):
    return {_nbg(c)["grade_id"]: c.source for c in nbformat.read(path, as_version=4).cells
            if _nbg(c).get("solution")}


def _submission(overrides=None, before_exercises=(), at_end=()):
    """Lesson 01's student version with the instructor's answers filled in (overridden
    per grade_id), and extra cells before the first answer and at the end."""
    nb = nbformat.read(_student_path(LESSON01), as_version=4)
    given = {**_answers(LESSON01), **(overrides or {})}
    for c in nb.cells:
        if _nbg(c).get("solution"):
            c.source = given[_nbg(c)["grade_id"]]
    first = next(i for i, c in enumerate(nb.cells) if _nbg(c).get("solution"))
    nb.cells[first:first] = [nbformat.v4.new_code_cell(s) for s in before_exercises]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in at_end]
    return nb


TIMEOUT = 45   # s per notebook: lesson 01 takes 16-24 s in smoke mode on 2 busy cores


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One grading run over a folder with every kind of submission of lesson 01."""
    tmp = tmp_path_factory.mktemp("grading")
    subs = tmp / "submissions"
    out = tmp / "out" / "grades.csv"
    ex = {e.name: e for e in classroom.exercises_of(nbformat.read(LESSON01, as_version=4))}
    names = list(ex)
    victim = subs / "4_solution" / LESSON01.name
    evil_src = f"""
import os, pathlib
pathlib.Path("../escaped.txt").write_text("written outside the working folder")
pathlib.Path(os.path.expanduser("~/.grader-home-marker")).write_text("x")
pathlib.Path({str(victim)!r}).write_text("overwritten by another submission")
pathlib.Path({str(subs / "9_planted" / "01_convolution.ipynb")!r}).parent.mkdir(exist_ok=True)
pathlib.Path({str(subs / "9_planted" / "01_convolution.ipynb")!r}).write_text("{{}}")
pathlib.Path({str(out)!r}).parent.mkdir(parents=True, exist_ok=True)
pathlib.Path({str(out)!r}).write_text("garbage")
"""
    sleeper = "987.654321"
    cases = {
        # writes outside its folder, overwrites another submission, then kills its kernel
        "1_evil": _submission(before_exercises=[evil_src], at_end=["import os; os._exit(1)"]),
        # the second answer loops forever, after starting a background process
        "2_loops": _submission({names[1]: "import subprocess\nsubprocess.Popen(['sleep', '"
                                + sleeper + "'])\nwhile True:\n    pass"}),
        # a cell that raises before the exercises; the third answer raises; the first
        # passes its visible check but not one hidden case (partial credit)
        "3_raises": _submission({names[2]: "def merge_convs(w1, b1, w2, b2):\n"
                                 "    raise ValueError('boom')",
                                 names[0]: _wrong("ex1_transposed", "dilation")},
                                before_exercises=["raise RuntimeError('a cell that fails')"]),
        "4_solution": nbformat.read(LESSON01, as_version=4),
        "5_untouched": nbformat.read(_student_path(LESSON01), as_version=4),
    }
    for folder, nb in cases.items():
        (subs / folder).mkdir(parents=True)
        nbformat.write(nb, subs / folder / LESSON01.name)
    results = classroom.grade(subs, out=out, timeout=TIMEOUT, log=print)
    rows = {r["submission"].split("/")[0]: r for r in csv.DictReader(out.open())}
    return dict(results={r.submission.split("/")[0]: r for r in results}, rows=rows, names=names,
                ex=ex, tmp=tmp, subs=subs, sleeper=sleeper)


def _col(name):
    return f"01_convolution:{name}"


def _points(graded, name):
    return f"{graded['ex'][name].points:g}"


MAX01 = f"{sum(e.points for e in EX01):g}"


def test_solution_gets_full_marks(graded):
    row = graded["rows"]["4_solution"]
    assert row["lesson"] == "01_convolution"
    assert all(row[_col(n)] == _points(graded, n) for n in graded["names"]), row
    assert row["total"] == row["max_points"] == MAX01


def test_untouched_student_version_gets_zero_with_a_reason(graded):
    row = graded["rows"]["5_untouched"]
    for n in graded["names"]:
        assert row[_col(n)] == "0"
        assert row[_col(n) + " reason"].startswith("NotImplementedError: not answered yet"), row
    assert row["total"] == "0" and row["max_points"] == MAX01


def test_a_submission_that_raises_loses_only_that_exercise(graded):
    row = graded["rows"]["3_raises"]
    a, b, c = graded["names"]
    assert row[_col(b)] == _points(graded, b)         # the failing cell stopped nothing
    assert row[_col(c)] == "0" and row[_col(c) + " reason"] == "ValueError: boom"


def test_hidden_checks_are_put_back_and_the_csv_shows_partial_credit(graded):
    """The first answer passes every visible case; one hidden case fails: the grade table
    gives it the share of the points of the cases it passed, and says which case failed."""
    row = graded["rows"]["3_raises"]
    a = graded["names"][0]
    assert row[_col(a)] == "1.8462", row               # 12 of 13 cases, 2 points
    assert row[_col(a) + " reason"] == (
        "partial credit 1.8462 of 2 (1 case failed; first: output_padding_for(20, 3, s=3, p=1, "
        "d=2) should be 2, got 1)"), row
    assert float(row["total"]) == 1.8462 + graded["ex"][graded["names"][1]].points


def test_an_endless_loop_times_out_and_is_killed(graded):
    row = graded["rows"]["2_loops"]
    a, b, c = graded["names"]
    assert row[_col(a)] == _points(graded, a)         # ran before the loop: kept
    for n in (b, c):
        assert row[_col(n)] == "0" and row[_col(n) + " reason"] == f"timed out after {TIMEOUT} s"
    assert f"timed out after {TIMEOUT} s" in row["note"]
    assert TIMEOUT <= graded["results"]["2_loops"].seconds < TIMEOUT + 30
    assert processes_with(graded["sleeper"]) == [], "a process the submission started survived"


def test_writing_outside_its_folder_changes_no_other_result(graded):
    row = graded["rows"]["1_evil"]
    assert row["total"] == MAX01                      # its checks ran before its kernel died
    assert "stopped early" in row["note"]
    # the overwritten solution was graded from what was read before any submission ran,
    # the planted notebook was not graded, and the CSV is the grader's, not the garbage
    assert graded["rows"]["4_solution"]["total"] == MAX01
    assert "9_planted" not in graded["rows"] and len(graded["rows"]) == 5
    # "../escaped.txt" and "~" were inside the submission's private temporary folder
    assert not list(graded["tmp"].rglob("escaped.txt"))
    assert not (Path.home() / ".grader-home-marker").exists()


def test_student_notebook_runs_in_the_kit_kernel_up_to_its_first_exercise(tmp_path):
    """As a student opens it: from its own folder, default parameters, the kit's kernel."""
    lesson = tmp_path / "lessons" / LESSON01.stem
    shutil.copytree(_student_path(LESSON01).parent, lesson)
    nb = nbformat.read(lesson / LESSON01.name, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if _nbg(c).get("solution"))
    nb.cells = nb.cells[:first]
    head = lesson / "up_to_exercise_1.ipynb"
    nbformat.write(nb, head)
    pm.execute_notebook(str(head), str(lesson / "executed.ipynb"), kernel_name="course-kit",
                        cwd=str(lesson), progress_bar=False)
    # out_dir=None: the kit's build/out/<notebook>, nothing beside the copied lesson
    assert (REPO / "build" / "out" / LESSON01.stem).is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lessons"]
    assert sorted(p.name for p in lesson.iterdir()) == sorted(
        [LESSON01.name, "README.md", "up_to_exercise_1.ipynb", "executed.ipynb"])
