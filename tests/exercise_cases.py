"""What every lesson's exercise tests share (tests/test_exercises_<NN>.py): the solutions,
the untouched student stubs and plausible wrong answers, all scored in one process by
course_utils.answers.check_answers (each answer with the notebook's setup cells and its
whole check cell, hidden tests included), and the assertions every lesson makes about them.

A lesson's test file holds only its data: WRONG = {exercise name: [(key, what is wrong,
answer source or a list of sources (one per answer cell), expected score or None)]}, where
None means "below full marks" without a number (for scores that depend on timing)."""
from pathlib import Path

import nbformat
import pytest

from course_utils import answers, classroom

REPO = Path(__file__).resolve().parents[1]


def lesson_path(stem: str) -> Path:
    return REPO / "notebooks" / f"{stem}.ipynb"


def student_path(path: Path) -> Path:
    return REPO / "lessons" / path.stem / path.name


def _nbg(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def exercises(path: Path):
    return classroom.exercises_of(nbformat.read(path, as_version=4))


def solution_sources(path: Path) -> dict:
    """Each answer cell's source in the instructor's notebook, by grade_id."""
    return {_nbg(c)["grade_id"]: c.source for c in nbformat.read(path, as_version=4).cells
            if _nbg(c).get("solution")}


def student_answers(path: Path) -> dict:
    """Each exercise's answer cells as the student version has them (stubs that raise)."""
    stu = {_nbg(c)["grade_id"]: c.source
           for c in nbformat.read(student_path(path), as_version=4).cells if _nbg(c).get("solution")}
    return {e.name: [stu[a] for a in e.answer_ids] for e in exercises(path)}


def score_all(path: Path, wrong: dict, *, timeout: float = 120) -> dict:
    """Solutions, untouched stubs and every wrong answer, scored in one subprocess."""
    exs = exercises(path)
    runs = ([(e.name, None) for e in exs]
            + list(student_answers(path).items())
            + [(name, src) for name, cases in wrong.items() for _, _, src, _ in cases])
    results = answers.check_answers(path, runs, timeout=timeout)
    n = len(exs)
    rest = iter(results[2 * n:])
    return dict(exercises=exs, solutions=results[:n], untouched=results[n:2 * n],
                wrong={(name, k): next(rest) for name, cases in wrong.items() for k, *_ in cases})


def wrong_ids(wrong: dict) -> list:
    return [(name, k) for name, cases in wrong.items() for k, *_ in cases]


def assert_every_exercise_has_wrong_answers(path: Path, wrong: dict) -> None:
    names = {e.name for e in exercises(path)}
    assert set(wrong) == names, f"wrong answers for {sorted(wrong)}, exercises {sorted(names)}"
    assert all(wrong[n] for n in names)


def assert_solutions_full(scored: dict) -> None:
    for e, r in zip(scored["exercises"], scored["solutions"]):
        assert (r.exercise, r.score, r.reason) == (e.name, e.points, "passed"), r


def assert_untouched_zero(scored: dict) -> None:
    for r in scored["untouched"]:
        assert r.score == 0 and r.reason.startswith("NotImplementedError"), r


def assert_wrong_below_full(scored: dict, wrong: dict, exercise: str, key: str) -> None:
    r = scored["wrong"][(exercise, key)]
    _, what, _, expected = next(c for c in wrong[exercise] if c[0] == key)
    assert r.score < r.points, f"{exercise}: '{what}' got full marks: {r}"
    if expected is not None:
        assert r.score == pytest.approx(expected, abs=1e-4), (what, r)
        if expected:
            assert r.reason.startswith(f"partial credit {expected:g} of {r.points:g} ("), r


def edit(source: str, old: str, new: str) -> str:
    """A wrong answer made from a solution by replacing `old` (which must be there: an
    edited solution fails the test instead of quietly testing something else)."""
    assert old in source, f"not in the solution any more: {old!r}"
    return source.replace(old, new)


# ------------------------------------------------------------------ the tests every lesson runs
# A lesson's file defines LESSON (lesson_path(...)) and WRONG, and imports what follows with
# `from exercise_cases import *`: pytest then collects these tests in that module, and
# pytest_generate_tests gives the last one one case per wrong answer.

def pytest_generate_tests(metafunc):
    if {"exercise", "key"} <= set(metafunc.fixturenames):
        ids = wrong_ids(metafunc.module.WRONG)
        metafunc.parametrize("exercise,key", ids, ids=[f"{e}-{k}" for e, k in ids])


@pytest.fixture(scope="module")
def scored(request):
    return score_all(request.module.LESSON, request.module.WRONG)


def test_every_exercise_keeps_wrong_answers(request):
    assert_every_exercise_has_wrong_answers(request.module.LESSON, request.module.WRONG)


def test_solutions_score_full_marks(scored):
    assert_solutions_full(scored)


def test_untouched_answers_score_zero(scored):
    assert_untouched_zero(scored)


def test_a_wrong_answer_scores_less_than_full_marks(request, scored, exercise, key):
    assert_wrong_below_full(scored, request.module.WRONG, exercise, key)


__all__ = ["lesson_path", "solution_sources", "edit", "pytest_generate_tests", "scored",
           "test_every_exercise_keeps_wrong_answers", "test_solutions_score_full_marks",
           "test_untouched_answers_score_zero", "test_a_wrong_answer_scores_less_than_full_marks"]
