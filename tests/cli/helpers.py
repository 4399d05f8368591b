"""Running the installed ``rostra`` command as a user would: a subprocess with env vars."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import TEST_SECRET

ROSTRA = str(Path(sys.executable).with_name("rostra"))
COMMAND_TIMEOUT_SECONDS = 120
# What a shell passes down; every ROSTRA_* variable comes from the test alone.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"rostra {' '.join(self.args)} -> {self.returncode}\n{self.stdout}{self.stderr}"


def rostra_env(
    database_url: str | None, *, secret_key: str | None = TEST_SECRET, **settings: str
) -> dict[str, str]:
    """A clean environment: the database, the secret key (None: left to be generated) and
    ``settings``, as ROSTRA_* variables."""
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    values = dict(settings)
    if database_url is not None:
        values["database_url"] = database_url
    if secret_key is not None:
        values["secret_key"] = secret_key
    env.update({f"ROSTRA_{name.upper()}": value for name, value in values.items()})
    return env


def run_rostra(args: Sequence[str], env: Mapping[str, str], cwd: Path) -> Run:
    process = subprocess.run(
        [ROSTRA, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )
    return Run(tuple(args), process.returncode, process.stdout, process.stderr)


def run_many(commands: Sequence[Sequence[str]], env: Mapping[str, str], cwd: Path) -> list[Run]:
    """Independent commands at once (each one pays the interpreter's start-up)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: run_rostra(args, env, cwd), commands))


def assert_one_line_failure(run: Run, *fragments: str) -> str:
    """A failure told in one ``rostra: ...`` line on stderr, nothing on stdout, no trace."""
    assert run.returncode != 0, run
    assert run.stdout == "", run
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run
    assert lines[0].startswith("rostra: "), run
    assert "Traceback" not in run.stderr, run
    for fragment in fragments:
        assert fragment in lines[0], run
    return lines[0]


def closed_port() -> int:
    """A local TCP port with nothing listening on it (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
