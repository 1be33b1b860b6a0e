"""The layers' import contract, read from the source (every module of each package, imports inside
functions included), and three imports that must stay light, run in fresh interpreters.

A layer is named by the top-level name it imports: `from engine.gateways.base import Verdict` imports
`engine`; `import urllib3.exceptions` imports `urllib3`."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FORBIDDEN = {
    "domain": {"textual", "huey", "requests", "urllib3", "prometheus_client",
               "service", "engine", "tasks", "ops", "console"},
    "engine": {"huey", "textual", "tasks", "console", "service"},
    "console": {"huey", "tasks", "engine"},
    "service": {"textual", "huey", "tasks", "engine", "console"},
    "ops": {"textual", "console"},
    # The HTTP API calls the service and reads the domain: no queue, engine, console or ops of its own
    # (the process that serves it, app.py, wires the waker and the gateway in).
    "api": {"textual", "huey", "tasks", "engine", "console", "ops", "models", "app"},
}
# Only the command line serves the API: nothing else imports it.
IMPORTERS_OF_API = {"app.py"}


def _modules(package, root=ROOT):
    return sorted((root / package).rglob("*.py"))


def imports(path, root=ROOT):
    """{(top-level name imported, line)} of one module, imports inside functions included; a
    relative import is resolved against the module's package."""
    package = list(path.relative_to(root).parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:
                name = ".".join(package[:len(package) - node.level + 1] + ([name] if name else []))
            found.add((name.split(".")[0], node.lineno))
    return found


def violations(package, forbidden, root=ROOT):
    return sorted(f"{path.relative_to(root)}:{line} imports {name}"
                  for path in _modules(package, root) for name, line in imports(path, root)
                  if name in forbidden)


def test_the_scan_sees_imports_inside_functions_and_relative_ones(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    module = pkg / "mod.py"
    module.write_text("import os.path\n"
                      "def f():\n    from huey import crontab\n"
                      "    from . import sibling\n"
                      "    from .sub.deeper import x\n")
    assert {name for name, _ in imports(module, tmp_path)} == {"os", "huey", "pkg"}
    assert violations("pkg", {"huey"}, tmp_path) == ["pkg/mod.py:3 imports huey"]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports_nothing_it_must_not(package):
    assert _modules(package), f"no modules found under {package}/"
    assert violations(package, FORBIDDEN[package]) == []


def test_nothing_but_the_command_line_imports_the_api():
    sources = [p for p in ROOT.glob("*.py")] + [p for package in ("domain", "service", "engine", "tasks", "ops",
                                                                 "console", "simulator", "migrations")
                                               for p in _modules(package)]
    importers = sorted(str(p.relative_to(ROOT)) for p in sources if any(name == "api" for name, _ in imports(p)))
    assert set(importers) <= IMPORTERS_OF_API and importers == ["app.py"]


def test_the_api_writes_through_the_service_only():
    assert [w for path in _modules("api") for w in model_writes(path)] == []


def test_simulator_imports_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"__future__", "simulator"}
    found = sorted(f"{path.relative_to(ROOT)}:{line} imports {name}"
                   for path in _modules("simulator") for name, line in imports(path)
                   if name not in allowed)
    assert found == []


MODEL_WRITES = {"create", "insert", "insert_many", "insert_from", "replace", "replace_many", "update",
                "delete", "delete_instance", "save", "get_or_create", "bulk_create", "bulk_update",
                "atomic", "transaction", "execute_sql"}


def _root(expr):
    while isinstance(expr, (ast.Attribute, ast.Call, ast.Subscript)):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def model_writes(path, root=ROOT):
    """Calls of a write method on anything reached from `models` (the module or a name imported
    from it): `models.Message.update(...)`, `Client.create(...)`, `models.db.atomic()`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names = {"models"} | {alias.asname or alias.name for node in ast.walk(tree)
                          if isinstance(node, ast.ImportFrom) and node.module == "models"
                          for alias in node.names}
    return sorted(f"{path.relative_to(root)}:{node.lineno} calls .{node.func.attr}()"
                  for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in MODEL_WRITES and _root(node.func) in names)


def test_the_scan_sees_model_writes(tmp_path):
    module = tmp_path / "screen.py"
    module.write_text("import models\nfrom models import Client as C\n"
                      "def f(app):\n    models.Message.update(x=1).where(True).execute()\n"
                      "    C.create(phone='7')\n    models.Attempt.select().where(True)\n"
                      "    app.save()\n")
    assert model_writes(module, tmp_path) == ["screen.py:4 calls .update()", "screen.py:5 calls .create()"]


def test_the_console_writes_through_the_service_only():
    assert [w for path in _modules("console") for w in model_writes(path)] == []


# ---------------------------------------------------------------------------------------------------
# Imports that must stay light, each in a fresh interpreter in an empty directory.


def _python(code_or_args, cwd, **env):
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "PROBE_"))}
    environment.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", **env)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=60, check=True)


def _files(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_the_console_app_imports_no_queue_and_no_engine(tmp_path):
    out = _python("import console.app, sys; print('huey' in sys.modules); "
                  "print(sorted(m for m in ('tasks', 'engine') if m in sys.modules))", tmp_path)
    assert out.stdout.split("\n")[:2] == ["False", "[]"]
    assert _files(tmp_path) == []


def test_importing_tasks_creates_no_file(tmp_path):
    _python("import tasks, tasks.consumer", tmp_path, MAILER_DB_URL=f"sqlite:///{tmp_path}/data/m.db")
    assert _files(tmp_path) == []


def test_the_simulator_help_writes_nothing_and_imports_no_project_storage(tmp_path):
    out = _python(["-c", "import runpy, sys\n"
                         "sys.argv = ['simulator', '--help']\n"
                         "try:\n    runpy.run_module('simulator', run_name='__main__', alter_sys=True)\n"
                         "except SystemExit:\n    pass\n"
                         "print('LOADED', sorted(m for m in ('models', 'huey', 'peewee', 'domain') "
                         "if m in sys.modules))"], tmp_path)
    assert "usage:" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "LOADED []"
    assert _files(tmp_path) == []


def test_python_dash_m_simulator_help_runs_in_an_empty_directory(tmp_path):
    out = _python(["-m", "simulator", "--help"], tmp_path)
    assert out.stdout.startswith("usage: python -m simulator")
    assert _files(tmp_path) == []
