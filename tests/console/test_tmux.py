"""The real `mailer console` in a real terminal (tmux): type a mailing in, read the screen back; and
every screen at 80x24 and at 200x50, visited from the keyboard and read back."""
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

from console_testkit import send_in_process

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


    @staticmethod
    def footer(screen):
        """The last line of the screen (the footer's keys)."""
        return screen.rstrip("\n").splitlines()[-1]

    def wait_for_footer(self, *labels, timeout=15.0):
        """Wait until the footer shows every one of these key labels (it is drawn anew as the focus
        and the screen change); -> the screen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if screen.strip() and all(label in self.footer(screen) for label in labels):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{labels} not all in the footer after {timeout} s:\n{self.screen()}")

    def quit_console(self):
        """Wait (bounded) until the console's session has ended."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.run("has-session", "-t", self.name, check=False).returncode == 0:
            time.sleep(0.1)
        assert self.run("has-session", "-t", self.name, check=False).returncode != 0, "the console did not quit"


def console_command(env):
    """The shell command that runs `mailer console` on the test's database."""
    mailer = Path(sys.executable).with_name("mailer")
    assert mailer.exists(), mailer
    variables = {"MAILER_DB_URL": env.url, "MAILER_QUEUE_URL": env.queue_url, "MAILER_TZ": "Europe/Moscow",
                 "TERM": "xterm-256color", "COLORTERM": "truecolor", "PATH": os.environ.get("PATH", "")}
    return "env -u COLUMNS -u LINES " + " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items()) + " " + \
        shlex.quote(str(mailer)) + " console"


def test_mailer_console_in_tmux(env):
    service.create_client(phone="79001234567", tag="vip")
    command = console_command(env)
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
        tmux.quit_console()
    finally:
        tmux.run("kill-server", check=False)


LONG_TEXT = "Spring sale: orders over 1000 roubles ship free until May 31; reply STOP to opt out"


@pytest.mark.parametrize("width,height", [(80, 24), (200, 50)])
def test_every_screen_in_tmux_at_80x24_and_200x50(env, sim, width, height):
    """Each screen visited from the keyboard and read back: at 80x24 nothing that matters is cut (the
    footer keeps the global keys, the forms' buttons and the match count come into view by tab), at
    200 columns a long mailing text shows whole."""
    service.create_client(phone="79001234567", tag="vip")
    service.create_client(phone="79005550000")  # the simulator refuses it: a failure in the log
    long = service.create_mailing(text=LONG_TEXT, start="now", end="+1h")
    assert send_in_process(sim) == 2
    wide = width >= 200
    tmux = Tmux(f"mailer-layout-{width}x{height}-{os.getpid()}")
    try:
        tmux.run("new-session", "-d", "-s", tmux.name, "-x", str(width), "-y", str(height), console_command(env))

        # the dashboard: every panel whole, the mailing's text (whole at 200 columns), the global keys
        tmux.wait_for("Spring sale: orders")
        screen = tmux.wait_for_footer("1 Dash", "2 Clients", "3 Mailings", "4 Log", "? Help", "q Quit")
        assert "Mailer — Dashboard" in screen
        for whole in ("Consumer", "Failures", "failed in all", "sent in the last 60 s"):
            assert whole in screen, whole
        assert (LONG_TEXT in screen) == wide

        # the clients: the phones, the screen's keys and the global ones
        tmux.keys("2")
        tmux.wait_for("79001234567")
        screen = tmux.wait_for_footer("/ Filter", "a Add", "? Help", "q Quit",
                                      "1 Dash" if wide else "1 2 3 4 Screens")
        assert "Mailer — Clients" in screen and "79005550000" in screen

        # the client form: tab through every field to Save, which is on screen, and enter saves
        tmux.keys("a")
        tmux.wait_for("New client")
        tmux.keys("79001112233", literal=True)
        for _ in range(4):  # phone -> operator -> tag -> time zone -> Save
            tmux.keys("Tab")
        screen = tmux.wait_for_footer("esc Cancel", "^s Save")
        assert "Save (ctrl+s)" in screen and "Cancel (esc)" in screen
        tmux.keys("Enter")
        screen = tmux.wait_for("79001112233", gone="New client")
        assert models.Client.get(phone="79001112233").operator == "900"

        # a client (filtered to it, enter): its fields and its message in the long mailing; q goes back.
        # Keys wait for the screen under the form to be back (its footer): a key typed while the form
        # is still leaving is taken by it, and the screen's focus comes back after it.
        tmux.wait_for_footer("a Add")
        tmux.wait_for("saved (79001112233)")  # the form's callback has run: it is gone
        tmux.keys("/")
        tmux.wait_for("/ Filter", gone="a Add")  # the filter has the focus (the footer says so)
        tmux.keys("4567", literal=True)
        tmux.keys("Enter")
        tmux.wait_for("79001234567", gone="79005550000")
        tmux.keys("Enter")
        screen = tmux.wait_for("Mailer — Client")
        screen = tmux.wait_for("Spring sale")
        assert "vip" in screen and "sent" in next(line for line in screen.splitlines() if "Spring sale" in line)
        tmux.keys("q")
        tmux.wait_for("Mailer — Clients")

        # the mailings: filter and text columns at both sizes, the text whole at 200 columns
        tmux.keys("3")
        tmux.wait_for("Mailer — Mailings")
        tmux.wait_for("Spring sale: orders")
        screen = tmux.wait_for_footer("n New", "e Edit", "? Help", "q Quit")
        header = next(line for line in screen.splitlines() if line.lstrip().startswith("ID"))
        assert "Filter" in header and "Text" in header, header
        row = next(line for line in screen.splitlines() if "Spring sale" in line)
        assert row.split()[:2] == [str(long.id), "running"] and "everyone" in row
        assert (LONG_TEXT in row) == wide, row
        assert wide or "…" in row

        # the detail of the long mailing (the only one: the cursor is on it); q goes back
        tmux.keys("Enter")
        tmux.wait_for(f"Mailer — Mailing {long.id}")
        tmux.wait_for("79001234567")
        screen = tmux.wait_for_footer("q Back", "p Pause", "? Help")
        assert "sent" in next(line for line in screen.splitlines() if "79001234567" in line)
        assert "text: Spring sale" in screen
        tmux.keys("q")
        tmux.wait_for_footer("n New")

        # the editor: type a text, an operator (the match count follows), tab to Save, enter saves
        tmux.keys("n")
        tmux.wait_for("New mailing")
        tmux.wait_for_footer("^s Save")  # the editor is up, its text field focused
        tmux.keys(f"Made at {width}x{height}", literal=True)
        tmux.wait_for(f"Made at {width}x{height}")
        for _ in range(3):  # text -> start -> end -> operator
            tmux.keys("Tab")
        tmux.wait_for("3 client(s) match (no filter)")
        tmux.keys("900", literal=True)
        tmux.wait_for("3 client(s) match (operator 900)")
        for _ in range(5):  # operator -> tag -> window -> days -> spread -> Save
            tmux.keys("Tab")
        screen = tmux.wait_for_footer("esc Cancel", "^s Save")
        assert "3 client(s) match (operator 900)" in screen
        assert "Save (ctrl+s)" in screen and "Cancel (esc)" in screen
        tmux.keys("Enter")
        screen = tmux.wait_for(f"Made at {width}x{height}", gone="New mailing")
        made = models.Mailing.get(models.Mailing.text == f"Made at {width}x{height}")
        assert (made.operator, made.state) == ("900", "running")

        # the live log: the two sends, the refusal among them
        tmux.keys("4")
        tmux.wait_for("Mailer — Live log")
        tmux.wait_for(" failed ")
        screen = tmux.wait_for_footer("space Pause/follow", "/ Filter", "? Help", "q Quit")
        assert f"mailing {long.id}" in screen and " sent " in screen

        # the help: the keys of the screen under it, what they do readable
        tmux.keys("?")
        tmux.wait_for("Here: Live log")
        screen = tmux.wait_for_footer("esc Close")
        assert "Pause/follow" in screen
        tmux.keys("Escape")
        tmux.wait_for_footer("space Pause/follow")

        # q quits a console of its own at once, mailings running or not (its consumer sends on)
        tmux.keys("q")
        tmux.quit_console()
    finally:
        tmux.run("kill-server", check=False)
