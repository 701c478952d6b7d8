"""The guard on papermill's wait for the kernel (course_utils/kernelpoll.py): messages come
through, a caller's timeout still ends the wait, a wake-up that never comes does not hang
it, and the command line is papermill's."""
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from queue import Empty

import nbformat
import pytest
import zmq
import zmq.asyncio
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.session import Session

from course_utils import kernelpoll

REPO = Path(__file__).resolve().parents[1]


def test_the_tests_run_notebooks_with_the_guard():
    assert kernelpoll.installed()          # conftest installs it; install() again is a no-op
    assert kernelpoll.install() is False and kernelpoll.installed()


async def _pair():
    ctx = zmq.asyncio.Context.instance()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    port = a.bind_to_random_port("tcp://127.0.0.1")
    b.connect(f"tcp://127.0.0.1:{port}")
    session = Session(key=b"k")
    return a, b, session, AsyncZMQSocketChannel(a, session)


def test_a_message_comes_through_and_a_timeout_still_ends_the_wait():
    async def go():
        a, b, session, chan = await _pair()
        try:
            session.send(b, "execute_reply", {"status": "ok"})
            msg = await asyncio.wait_for(chan.get_msg(timeout=None), 5)
            assert msg["msg_type"] == "execute_reply" and msg["content"] == {"status": "ok"}
            t0 = time.monotonic()
            with pytest.raises(Empty):
                await chan.get_msg(timeout=0.3)
            return time.monotonic() - t0
        finally:
            a.close(0), b.close(0)

    waited = asyncio.run(go())
    assert 0.25 <= waited < 3, waited


def test_a_wake_up_that_never_comes_does_not_hang_the_wait(monkeypatch):
    """The socket's poll is made to never report the message (the lost wake-up): the
    guard finds it through zmq.EVENTS after one slice; jupyter_client's own get_msg,
    given the same socket, would still be waiting when the test gives up on it."""
    async def go():
        a, b, session, chan = await _pair()
        try:
            session.send(b, "status", {"execution_state": "idle"})
            await asyncio.sleep(0.2)                     # the message is there
            async def never(*args, **kw):
                await asyncio.sleep((args[0] if args and args[0] is not None else 60_000) / 1000)
                return 0
            monkeypatch.setattr(a, "poll", never)
            original = kernelpoll._ORIGINAL["get_msg"]
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(original(chan, timeout=None), 2 * kernelpoll.SLICE_S + 0.5)
            before = kernelpoll.MISSED["count"]
            msg = await asyncio.wait_for(chan.get_msg(timeout=None), 5)
            assert msg["content"] == {"execution_state": "idle"}
            assert kernelpoll.MISSED["count"] == before + 1
        finally:
            a.close(0), b.close(0)

    asyncio.run(go())


def test_the_command_line_is_papermills(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print('x is', x)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    r = subprocess.run([sys.executable, "-m", "course_utils.kernelpoll", str(tmp_path / "in.ipynb"),
                        str(tmp_path / "out.ipynb"), "-p", "x", "41", "-k", "python3", "--no-progress-bar"],
                       capture_output=True, text=True, cwd=str(REPO), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert "x is 41" in "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    # a usage error is papermill's, with a failing status
    r = subprocess.run([sys.executable, "-m", "course_utils.kernelpoll", "--no-such-option"],
                       capture_output=True, text=True, cwd=str(REPO), timeout=120)
    assert r.returncode != 0 and "no-such-option" in r.stderr
