"""The layout by concern holds: Flask stays in the web process, contracts bite, names resolve.

The import-linter contracts themselves live in pyproject.toml and run in ``make lint``; these
tests show that they fail on a violation, and check what a contract cannot see (``sys.modules``
of a real process, job names stored in Redis, environment variables read by hand).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job

from bot.settings import ROOT

BIN = Path(sys.executable).parent


def _modules_after(code: str) -> set[str]:
    """The top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys\nprint('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_the_worker_never_loads_flask():
    loaded = _modules_after(
        "from bot import cli\n"
        "from bot.worker import JOB_MODULES, run_worker\n"
        "import importlib\n"
        "for name in JOB_MODULES: importlib.import_module(name)\n"
    )
    assert "rq" in loaded and "bot" in loaded
    assert "flask" not in loaded and "werkzeug" not in loaded


def test_the_action_server_and_rasa_server_never_load_flask():
    loaded = _modules_after(
        "from bot.rasa_runtime import server\n"
        "import rasa_sdk.executor\n"
        "executor = rasa_sdk.executor.ActionExecutor()\n"
        "executor.register_package('bot.actions')\n"
        "assert executor.actions, 'no actions registered'\n"
    )
    assert "rasa_sdk" in loaded
    assert "flask" not in loaded and "werkzeug" not in loaded


def test_the_web_process_does_load_flask():
    """The probe above can tell: the same check sees Flask where it is used."""
    assert "flask" in _modules_after("from bot import create_app\ncreate_app()")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("bot.jobs.handle_inbound", "bot.gateway.inbound.handle_inbound"),
        ("bot.jobs.on_inbound_failure", "bot.gateway.dead_letters.on_inbound_failure"),
    ],
)
def test_jobs_queued_under_the_old_names_still_run(redis_conn, old, new):
    """A job stored by the previous release names its function ``bot.jobs.…``."""
    queue = Queue("inbound", connection=redis_conn)
    job = queue.enqueue_call(old, args=(0,))
    stored = Job.fetch(job.id, connection=redis_conn)
    assert stored.func_name == old
    module, _, name = new.rpartition(".")
    assert stored.func is getattr(__import__(module, fromlist=[name]), name)


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": f"{BIN}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )


@pytest.fixture()
def tree_copy(tmp_path: Path) -> Path:
    for name in ("bot", "notifier"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("bot/importers/report.py", "import bot.gateway.ordering", "do not import each other"),
        ("bot/store.py", "import bot.actions.topics", "core imports no concern"),
        ("bot/gateway/inbound.py", "import bot.dev.embedded_redis", "development tools"),
        ("bot/actions/topics.py", "import flask", "never load it"),
    ],
)
def test_lint_imports_fails_when_a_contract_is_broken(tree_copy: Path, module, line, broken):
    assert _lint_imports(tree_copy).returncode == 0, "the tree as it is must pass"
    path = tree_copy / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = _lint_imports(tree_copy)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and broken in result.stdout


def _environ_reads(path: Path) -> list[str]:
    """``os.environ.get(…)``, ``os.environ[…]`` and ``os.getenv(…)`` in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = ast.unparse(node.func)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            target = ast.unparse(node.value)
        if target in ("os.environ.get", "os.getenv", "os.environ"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_only_settings_reads_environment_variables():
    reads = [
        hit
        for folder in ("bot", "notifier")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != ROOT / "bot" / "settings.py"
        for hit in _environ_reads(path)
    ]
    assert reads == []


def test_every_setting_is_documented_in_env_example():
    settings_source = (ROOT / "bot" / "settings.py").read_text()
    read = {
        node.args[0].value
        for node in ast.walk(ast.parse(settings_source))
        if isinstance(node, ast.Call)
        and ast.unparse(node.func) == "env.get"
        and isinstance(node.args[0], ast.Constant)
    }
    documented = {
        line.split("=", 1)[0].strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert len(read) > 10
    assert read - documented == set()


#: How code makes a Redis client by hand.
_REDIS_CONSTRUCTORS = {
    "redis.Redis",
    "redis.StrictRedis",
    "redis.Redis.from_url",
    "redis.from_url",
    "redis_lib.Redis",
    "redis_lib.Redis.from_url",
    "Redis",
    "StrictRedis",
    "Redis.from_url",
}


def test_every_redis_client_has_a_socket_timeout():
    """A client without one hangs its caller for ever when Redis stops answering."""
    untimed = []
    for folder in ("bot", "notifier"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Call)
                    and ast.unparse(node.func) in _REDIS_CONSTRUCTORS
                    and "socket_timeout" not in {k.arg for k in node.keywords}
                ):
                    untimed.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert untimed == []


def test_the_notifier_is_flask_free_but_for_its_pages():
    """Each notifier module but the pages is in the Flask contract (a new one must be added)."""
    import tomli  # pytest's own TOML reader on Python 3.10

    contracts = tomli.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [flask_free] = [c for c in contracts["contracts"] if c["name"].startswith("Flask is")]
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "notifier").rglob("*.py")
    }
    web_only = {"notifier", "notifier.web", "notifier.web.pages"}
    assert modules - web_only - set(flask_free["source_modules"]) == set()
