"""The widgets in a real JupyterLab, in a real browser (issue 9).

The browser tests start JupyterLab the way `make lab` does (`make lab` itself, with
LAB_ARGS for loopback, a free port, a token and no browser), open a lesson in headless
Chromium driven by Playwright, run the cells the widget needs from the notebook's own
UI, then move the widget's controls like a student would and check that the numbers the
page shows are the ones course_utils computes for the configuration the page shows.
Screenshots go to build/e2e/<lesson>_<state>.png for a person to look at. (Without a
frontend the explorers print the same numbers as text: tests/test_widgets.py.)

Needs: playwright (the `test` extra) and a Chromium on PATH (Debian: `apt-get install
chromium`, which `make test` does where apt may be used; E2E_CHROMIUM=/path overrides).
Playwright's own browser download is never used. The server is stopped (with its
kernels) when the tests end, pass or fail; a watchdog stops the server and the browser
after E2E_TIMEOUT_S seconds (default 300) so that nothing hangs.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from course_utils import widgets

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SHOTS = REPO / "build" / "e2e"
TIMEOUT_S = float(os.environ.get("E2E_TIMEOUT_S", "300"))
STEP_MS = 60_000  # Playwright's limit for any one step (a cell run, a wait for text)


# ------------------------------------------------------------------ what is needed
def _chromium() -> str | None:
    if os.environ.get("E2E_CHROMIUM"):
        return os.environ["E2E_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _need_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed: make setup (or pip install -e '.[test]')")
    if not _chromium():
        pytest.skip("no Chromium found (looked for chromium, chromium-browser, google-chrome "
                    "on PATH): sudo apt-get install chromium (make test does it where apt may "
                    "be used), or set E2E_CHROMIUM=/path/to/chrome")


# ------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_settings(root: Path) -> dict:
    """A settings folder for this server only: no autosave (the lesson files in notebooks/
    are never written: the test runs cells but saves nothing), every cell in the DOM, no
    news prompt. Returns the environment variables that point JupyterLab at it."""
    settings = {
        "docmanager-extension/plugin": {"autosave": False},
        "notebook-extension/tracker": {"windowingMode": "none"},
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, values in settings.items():
        f = root / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(values))
    for d in ("workspaces", "runtime"):
        (root / d).mkdir()
    return {"JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime")}


def _lab_command(port: int, token: str) -> tuple[list[str], str]:
    """`make lab` when this Python is the kit's .venv (setup is not redone: -o marks it
    done); otherwise (conda) the same command with this Python's jupyter."""
    lab_args = ["--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
                f"--IdentityProvider.token={token}"]
    venv = REPO / ".venv"
    if (shutil.which("make") and (venv / "bin" / "jupyter").exists()
            and Path(sys.prefix).resolve() == venv.resolve()):
        return (["make", "--no-print-directory", "-o", ".venv/.installed", "lab",
                 "LAB_ARGS=" + " ".join(lab_args)], "make lab")
    root = ["--allow-root"] if hasattr(os, "getuid") and os.getuid() == 0 else []
    return ([sys.executable, "-m", "jupyter", "lab", "--notebook-dir=notebooks", *root,
             *lab_args], "jupyter lab (as make lab runs it)")


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill(procs, sig=signal.SIGKILL):
    import psutil

    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(sig)


class Lab:
    """A JupyterLab server started as `make lab` starts it, in its own process group."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = SHOTS / "jupyter-lab.log"
        self.expired = False
        self.opened: set[str] = set()  # notebooks the browser opened
        self.proc = None
        self.kernels = []  # kernel processes seen, so that none outlives the test

    def start(self):
        SHOTS.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
        env.update(_lab_settings(self.tmp))
        cmd, self.how = _lab_command(self.port, self.token)
        if self.how != "make lab":
            env.pop("MPLBACKEND", None)  # as make lab does: inline plots in the kernel
        self.log = open(self.log_path, "w")
        self.log.write(f"$ {' '.join(cmd)}  (in {REPO})\n")
        self.log.flush()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.how} exited with status {self.proc.returncode} "
                                   f"before serving:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}",
                                            timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.how} did not answer on {self.url} within 90 s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.3)

    def log_tail(self, n=40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return "(no server log)"

    def remember_kernels(self):
        if self.proc is not None:
            self.kernels += [p for p in _descendants(self.proc.pid) if p not in self.kernels]

    def stop(self):
        """SIGTERM to the process group (the server shuts its kernels down), then SIGKILL
        to whatever of it is left, kernels included (they run in sessions of their own)."""
        if self.proc is None:
            return
        self.remember_kernels()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        time.sleep(0.5)
        _kill([k for k in self.kernels if k.is_running()])
        self.log.close()


class Watchdog:
    """After `seconds`, stop the server and every browser process this test started, so
    that a hung step fails at once instead of hanging the suite."""

    def __init__(self, seconds: float, lab: Lab):
        self.seconds, self.lab = seconds, lab
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def _fire(self):
        self.lab.expired = True
        browsers = [p for p in _descendants(os.getpid())
                    if p.pid != self.lab.proc.pid and p not in _descendants(self.lab.proc.pid)]
        self.lab.remember_kernels()
        _kill(_descendants(self.lab.proc.pid) + browsers)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.lab.proc.pid, signal.SIGKILL)


def _checkpoints() -> set[Path]:
    d = NOTEBOOKS / ".ipynb_checkpoints"
    return set(d.iterdir()) if d.is_dir() else set()


@pytest.fixture(scope="module")
def lab():
    _need_browser()
    had_checkpoints, checkpoints = (NOTEBOOKS / ".ipynb_checkpoints").is_dir(), _checkpoints()
    with tempfile.TemporaryDirectory(prefix="lab-e2e-") as tmp:
        server = Lab(Path(tmp))
        dog = None
        try:
            server.start()
            dog = Watchdog(TIMEOUT_S, server)
            dog.timer.start()
            yield server
        finally:
            if dog is not None:
                dog.timer.cancel()
            server.stop()
            # JupyterLab keeps a checkpoint of each notebook it opens: remove ours
            ours = {f"{Path(n).stem}-checkpoint.ipynb" for n in server.opened}
            for p in _checkpoints() - checkpoints:
                if p.name in ours:
                    p.unlink()
            if not had_checkpoints and (NOTEBOOKS / ".ipynb_checkpoints").is_dir():
                with contextlib.suppress(OSError):
                    (NOTEBOOKS / ".ipynb_checkpoints").rmdir()
    # the server logs every save ("Saving file at /x.ipynb"): the test must cause none
    saves = [line for line in server.log_path.read_text(errors="replace").splitlines()
             if "Saving file at" in line]
    assert not saves, f"JupyterLab saved files in notebooks/ during the test: {saves}"


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True,
                              args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
        try:
            yield b
        finally:
            with contextlib.suppress(Exception):
                b.close()


# ---------------------------------------------------------------- notebook driving
class Lesson:
    """One lesson open in the browser: run chosen cells from the UI, find its widget."""

    def __init__(self, lab: Lab, browser, name: str):
        self.lab, self.name = lab, name
        lab.opened.add(name)
        self.cells_json = json.loads((NOTEBOOKS / name).read_text())["cells"]
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.set_default_timeout(STEP_MS)
        self.page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
        panel = self.page.locator(".jp-NotebookPanel")
        panel.locator(".jp-Cell").first.wait_for()
        assert panel.count() == 1, f"{panel.count()} notebooks open, expected only {name}"
        self.cells = panel.locator(".jp-Notebook .jp-Cell")
        _wait(self.cells.count, len(self.cells_json), self.page,
              f"{name}: the number of cells (the file's count; was it edited meanwhile?)")
        # the notebook's kernel (course-kit) started and idle; a kernel chooser means it was
        # not found
        status = self.page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle"))
        dialog = self.page.locator(".jp-Dialog")
        t0 = time.monotonic()
        while not status.count():
            if dialog.count():
                raise AssertionError(f"{name}: JupyterLab asks: {dialog.inner_text()} (is the "
                                     "kit's kernel installed? make setup does it)")
            if time.monotonic() - t0 > STEP_MS / 1000:
                raise AssertionError(f"{name}: no idle kernel after {STEP_MS / 1000:.0f} s; "
                                     f"status bar: {self.page.locator('#jp-main-statusbar').inner_text()}")
            self.page.wait_for_timeout(200)

    def code_index(self, needle: str) -> int:
        hits = [i for i, c in enumerate(self.cells_json)
                if c["cell_type"] == "code" and needle in "".join(c["source"])]
        assert hits, f"{self.name}: no code cell contains {needle!r}"
        return hits[0]

    def run(self, i: int):
        """Select cell i by its prompt and press Ctrl+Enter, as a student would; wait for
        its execution count; fail with the traceback if it raised."""
        cell, src = self.cells.nth(i), "".join(self.cells_json[i]["source"])
        first = next((line.strip() for line in src.splitlines() if line.strip()), "")
        editor_text = " ".join(cell.locator(".jp-InputArea-editor").inner_text().split())
        assert " ".join(first.split())[:40] in editor_text, (
            f"{self.name} cell {i}: the page shows {editor_text[:80]!r}, the file {first[:80]!r}")
        cell.locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Control+Enter")
        prompt = cell.locator(".jp-InputArea-prompt")
        t0 = time.monotonic()
        while not re.fullmatch(r"\[\d+\]:?", prompt.inner_text().strip()):
            if time.monotonic() - t0 > STEP_MS / 1000:
                raise AssertionError(f"{self.name} cell {i} did not finish within "
                                     f"{STEP_MS / 1000:.0f} s (prompt {prompt.inner_text()!r})")
            self.page.wait_for_timeout(200)
        out = cell.locator(".jp-Cell-outputArea").inner_text()
        assert "Traceback (most recent call last)" not in out, (
            f"{self.name} cell {i} failed in JupyterLab:\n{out[-3000:]}")
        return cell

    def shot(self, cell, state: str) -> Path:
        path = SHOTS / f"{Path(self.name).stem[:2]}_{state}.png"
        cell.scroll_into_view_if_needed()
        self.page.wait_for_timeout(300)  # let the widget finish painting
        cell.screenshot(path=str(path))
        return path


def _control(out, kind: str, label: str):
    """The ipywidgets control of class widget-<kind> whose description is `label`."""
    return out.locator(f".widget-{kind}").filter(
        has=out.page.locator(".widget-label", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))


def _slide(page, slider, options: list) -> int:
    """Move a SelectionSlider one step with the keyboard (noUiSlider's handle), to the
    right unless it is at the end. Returns the value the readout then shows."""
    readout = slider.locator(".widget-readout")
    now = int(readout.inner_text())
    i = options.index(now)
    key, want = ("ArrowRight", options[i + 1]) if i + 1 < len(options) else ("ArrowLeft", options[i - 1])
    slider.locator(".noUi-handle").focus()
    page.keyboard.press(key)
    _wait(lambda: readout.inner_text().strip(), str(want), page,
          f"the slider's readout after {key} from {now}")
    return want


def _wait(get, want, page, what: str, timeout_s: float = STEP_MS / 1000):
    """Poll get() until it equals want; fail naming both values."""
    t0, got = time.monotonic(), None
    while time.monotonic() - t0 < timeout_s:
        got = get()
        if got == want:
            return got
        page.wait_for_timeout(150)
    raise AssertionError(f"{what}: the page shows {got!r}, expected {want!r}")


def _wait_match(expected, shown, page, what: str, timeout_s: float = STEP_MS / 1000):
    """Poll until shown() == expected(), both read from the page afresh each time: the
    controls' readouts and the numbers they drive arrive as separate messages, so a value
    read once may be one message behind. Returns the matched value."""
    t0, pair = time.monotonic(), None
    while time.monotonic() - t0 < timeout_s:
        pair = (expected(), shown())
        if pair[0] == pair[1]:
            return pair[0]
        page.wait_for_timeout(150)
    raise AssertionError(f"{what}: the page shows {pair[1]!r}, expected {pair[0]!r} for the "
                         "controls' current settings")


def _number(text: str, pattern: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1) if m else None


@contextlib.contextmanager
def _guard(lab: Lab, lesson_name: str, page_holder: list):
    """Turn a watchdog stop into a clear failure, and keep a full-page screenshot and the
    server log tail of any failure."""
    try:
        yield
    except Exception as e:
        if page_holder:
            with contextlib.suppress(Exception):
                page_holder[0].screenshot(path=str(SHOTS / f"{lesson_name}_failure.png"),
                                          full_page=True)
        if lab.expired:
            raise AssertionError(f"the browser test ran past its deadline of {TIMEOUT_S:.0f} s "
                                 f"(E2E_TIMEOUT_S): server and browser were stopped. Server log:\n"
                                 f"{lab.log_tail()}") from e
        raise AssertionError(f"{e}\n--- server log ({lab.log_path}) ---\n{lab.log_tail(25)}") from e


# -------------------------------------------------------------------------- tests
def test_spectrum_widget_in_jupyterlab(lab, browser):
    """Lesson 03: the segments slider and the channels dropdown change the count shown to
    course_utils' count for what the page shows; the plot is redrawn."""
    name, held = "03_inception_spectrum.ipynb", []
    with _guard(lab, "03", held):
        nb = Lesson(lab, browser, name)
        held.append(nb.page)
        params = next(i for i, c in enumerate(nb.cells_json)
                      if "parameters" in c.get("metadata", {}).get("tags", []))
        setup = next(i for i in range(params + 1, len(nb.cells_json))
                     if nb.cells_json[i]["cell_type"] == "code")
        nb.run(params)
        nb.run(setup)
        cell = nb.run(nb.code_index("SpectrumExplorer("))
        out = cell.locator(".jp-Cell-outputArea")
        table = out.locator(".widget-html")
        table.first.wait_for()
        channels = _control(out, "dropdown", "channels").locator("select")
        segments = _control(out, "slider", "segments")
        plot = out.locator(".widget-output img")
        head = r"over (\d+) segment\(s\) of (\d+) channels on 32x32: ([\d,]+) parameters"

        def shown():  # (segments, channels, parameters) of the widget's first line
            m = re.search(head, table.inner_text())
            return m.groups() if m else None

        def expected():
            ch = int(channels.input_value())
            seg = int(segments.locator(".widget-readout").inner_text())
            return (str(seg), str(ch), f"{widgets.segmented_cost(ch, seg, None, 32)['params']:,}")

        def expect_page_state(what):
            got = _wait_match(expected, shown, nb.page,
                              f"03 {what}: (segments, channels, parameters)")
            return int(got[2].replace(",", ""))

        n0 = expect_page_state("initially")
        _wait(lambda: plot.count() > 0, True, nb.page, "03: the spectrum plot (an image in the "
              "widget's Output; a kernel started with MPLBACKEND=Agg draws none)")
        img0 = plot.first.get_attribute("src")
        nb.shot(cell, "spectrum_initial")

        seg = _slide(nb.page, segments, widgets.divisors(int(channels.input_value())))
        n1 = expect_page_state("after moving the segments slider")
        assert n1 != n0
        _wait(lambda: plot.first.get_attribute("src") != img0, True, nb.page,
              "03: the plot was redrawn after the slider moved")
        nb.shot(cell, "spectrum_after_segments")

        ch = 48 if channels.input_value() != "48" else 96
        channels.select_option(str(ch))
        n2 = expect_page_state(f"after choosing {ch} channels")
        # the segment count stays where the new channel count allows it, else goes down
        keep = max(d for d in widgets.divisors(ch) if d <= seg)
        assert n2 != n1
        _wait(lambda: int(segments.locator(".widget-readout").inner_text()), keep, nb.page,
              f"03: the segments readout after choosing {ch} channels")
        nb.shot(cell, "spectrum_after_channels")
        nb.page.close()


def test_dense2net_widget_in_jupyterlab(lab, browser):
    """Lesson 06: the scale slider and the SE toggle change the parameter counts shown
    (tiny and report backbones) to course_utils' counts for what the page shows."""
    name, held = "06_dense2net.ipynb", []
    with _guard(lab, "06", held):
        nb = Lesson(lab, browser, name)
        held.append(nb.page)
        w = nb.code_index("Dense2NetExplorer(")
        for i, c in enumerate(nb.cells_json[:w]):  # every cell above it, as a student would
            if c["cell_type"] == "code":
                nb.run(i)
        cell = nb.run(w)
        out = cell.locator(".jp-Cell-outputArea")
        summary = out.locator(".widget-html", has_text="dense2net_tiny")
        summary.wait_for()
        growth = _control(out, "slider", "growth k")
        scale = _control(out, "slider", "scale s")
        groups = _control(out, "dropdown", "groups C").locator("select")
        se = out.get_by_role("checkbox", name="SE", exact=True)

        def config():
            return dict(growth_rate=int(growth.locator(".widget-readout").inner_text()),
                        scale=int(scale.locator(".widget-readout").inner_text()),
                        groups=int(groups.input_value()), se=se.is_checked())

        def shown():
            text = summary.inner_text()
            return tuple(_number(text, rf"{m}\s+([\d,]+) parameters")
                         for m in ("dense2net_tiny", "dense2net121"))

        def expected():
            cfg = config()
            return tuple(f"{widgets.dense2net_cost(b, **cfg)['params']:,}"
                         for b in ("tiny", "report"))

        def expect_page_state(what):
            return _wait_match(expected, shown, nb.page,
                               f"06 {what}: (dense2net_tiny, dense2net121) parameters")

        n0 = expect_page_state("initially")
        nb.shot(cell, "dense2net_initial")

        _slide(nb.page, scale, widgets.allowed_scales(config()["growth_rate"]))
        n1 = expect_page_state("after moving the scale slider")
        assert n1 != n0
        nb.shot(cell, "dense2net_after_scale")

        was = se.is_checked()
        se.click()
        _wait(se.is_checked, not was, nb.page, "06: the SE checkbox after a click")
        n2 = expect_page_state("after toggling SE")
        assert n2 != n1
        nb.shot(cell, "dense2net_after_se")
        nb.page.close()
