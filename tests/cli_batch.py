"""Run several `mailer` command lines one after another in one process: `python tests/cli_batch.py`
reads a JSON list of argument lists on stdin and prints a JSON list of {returncode, stdout, stderr},
one for each, as `python -m app ARGS` would have exited and written them (app.main; an uncaught
exception is a traceback on stderr and exit 1, as the interpreter makes it).

For the long lists of refusals in test_cli.py: each `mailer` process costs ~0.5 s to start (Python
and the drivers peewee loads), and a refusal is decided before anything is written, by the same
main() in a process with the same environment. Commands that succeed go through Env.mailer, one
process each."""
import contextlib
import io
import json
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import app  # noqa: E402


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = app.main(argv)
        except SystemExit as exc:  # argparse's refusals, as sys.exit would end the process
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except Exception:
            traceback.print_exc()
            code = 1
    return {"returncode": code or 0, "stdout": out.getvalue(), "stderr": err.getvalue()}


if __name__ == "__main__":
    print(json.dumps([run(argv) for argv in json.load(sys.stdin)]))
