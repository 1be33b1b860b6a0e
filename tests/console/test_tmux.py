"""The real `mailer console` in a real terminal (tmux): type a mailing in, read the screen back."""
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import models
import service
import tasks

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, name):
        self.socket, self.name = name, name

    def run(self, *args, check=True):
        # COLUMNS/LINES may be in the C environment of a test process: the console must measure the pane.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        return subprocess.run(["tmux", "-L", self.socket, *args], check=check, capture_output=True,
                              text=True, timeout=10, env=env)

    def screen(self):
        return self.run("capture-pane", "-p", "-t", self.name, check=False).stdout

    def keys(self, *keys, literal=False):
        self.run("send-keys", "-t", self.name, *(["-l"] if literal else []), *keys)

    def wait_for(self, text, timeout=15.0, gone=None):
        """Wait until `text` is on screen (and `gone`, if given, is not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen and (gone is None or gone not in screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not on screen after {timeout} s:\n{self.screen()}")


def test_mailer_console_in_tmux(env):
    service.create_client(phone="79001234567", tag="vip")
    mailer = Path(sys.executable).with_name("mailer")
    assert mailer.exists(), mailer
    variables = {"MAILER_DB_URL": env.url, "MAILER_QUEUE_URL": env.queue_url, "MAILER_TZ": "Europe/Moscow",
                 "TERM": "xterm-256color", "COLORTERM": "truecolor", "PATH": os.environ.get("PATH", "")}
    command = "env -u COLUMNS -u LINES " + " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items()) + " " + \
        shlex.quote(str(mailer)) + " console"
    tmux = Tmux(f"mailer-console-test-{os.getpid()}")
    try:
        tmux.run("new-session", "-d", "-s", tmux.name, "-x", "140", "-y", "45", command)
        tmux.wait_for("Mailer — Dashboard")
        tmux.keys("3")
        tmux.wait_for("Mailer — Mailings")
        tmux.keys("n")
        tmux.wait_for("New mailing")
        tmux.keys("Typed in tmux [b]ok[/b]", literal=True)
        tmux.wait_for("23 / 1000 characters")
        tmux.keys("Tab")
        tmux.keys("+5m", literal=True)  # replaces the selected "now"
        tmux.keys("Tab")
        tmux.keys("+2h", literal=True)
        tmux.keys("Tab")
        tmux.keys("900", literal=True)
        tmux.wait_for("1 client(s) match (operator 900)")
        tmux.keys("C-s")
        screen = tmux.wait_for("Typed in tmux [b]ok[/b]", gone="New mailing")
        assert "1 mailing(s): 1 scheduled" in screen
        mailing = models.Mailing.get()
        assert (mailing.text, mailing.operator, mailing.state) == ("Typed in tmux [b]ok[/b]", "900", "scheduled")
        row = next(line for line in screen.splitlines() if "Typed in tmux" in line)
        assert row.split()[:2] == [str(mailing.id), "scheduled"]
        tmux.keys("q")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and tmux.run("has-session", "-t", tmux.name, check=False).returncode == 0:
            time.sleep(0.1)
    finally:
        tmux.run("kill-server", check=False)
