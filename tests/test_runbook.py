from course_utils import runbook


def _row(name, seconds, status="ok"):
    return {"notebook": name, "status": status, "seconds": seconds, "error": "boom",
            "headline": {"name": "acc", "value": 0.5, "note": ""}}


def test_report_shows_this_runs_times_against_the_budgets():
    rows = [_row("02_x.ipynb", 200.0), _row("07_y.ipynb", 300.0), _row("01_z.ipynb", 1.0, "FAILED")]
    table = runbook.format_table(rows, "quick", where="test machine, 2 cores")
    lines = table.splitlines()
    assert "mode=quick" in lines[0] and "on test machine, 2 cores" in lines[0]
    assert "| 02_x.ipynb | ok | 200.0 | 180 **over** | acc: 0.5 |" in lines
    assert "| 07_y.ipynb | ok | 300.0 | 480 | acc: 0.5 |" in lines
    assert "| 01_z.ipynb | FAILED | 1.0 | 180 | boom |" in lines
    assert "total: 501.0 s, 2/3 notebooks ok" in table
    # budgets are quick mode's: other modes show none
    assert "| 02_x.ipynb | ok | 200.0 | - | acc: 0.5 |" in runbook.format_table(rows, "smoke", "m")
