"""Section 12: a bad setting stops start-up in one line; the generated secret key is kept."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from rostra.core.config import Settings, kept_secret_path
from tests.cli.helpers import assert_one_line_failure, closed_port, rostra_env, run_many

BAD_SETTINGS = [
    ("DATABASE_URL", "mysql://x"),
    ("SECRET_KEY", "short"),
    ("TRUSTED_PROXIES", "10.0.0.0/8,notanip"),
    ("MAX_BODY_BYTES", "lots"),
    ("REDIS_URL", "localhost:6379"),
]


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_a_bad_setting_stops_serve_and_migrate_in_one_line(
    tmp_path: Path, name: str, value: str
) -> None:
    env = rostra_env(f"sqlite+aiosqlite:///{tmp_path}/rostra.db")
    env[f"ROSTRA_{name}"] = value
    serve, migrate = run_many(
        [["serve", "--port", str(closed_port())], ["migrate"]], env=env, cwd=tmp_path
    )
    for run in (serve, migrate):
        line = assert_one_line_failure(run, f"ROSTRA_{name}")
        assert run.returncode == 2
        if name == "SECRET_KEY":
            assert value not in line, "a secret is never echoed"
    assert not (tmp_path / "rostra.db").exists()


def test_production_needs_a_secret_key(tmp_path: Path) -> None:
    env = rostra_env(
        f"sqlite+aiosqlite:///{tmp_path}/rostra.db", secret_key=None, environment="production"
    )
    (serve,) = run_many([["serve", "--port", str(closed_port())]], env=env, cwd=tmp_path)
    assert_one_line_failure(serve, "ROSTRA_SECRET_KEY", "production")


def test_an_unusable_generated_key_stops_serve_in_one_line(tmp_path: Path) -> None:
    database = tmp_path / "rostra.db"
    kept_secret_path(database).mkdir()  # a directory where the key file should be
    env = rostra_env(f"sqlite+aiosqlite:///{database}", secret_key=None)
    (serve,) = run_many([["serve", "--port", str(closed_port())]], env=env, cwd=tmp_path)
    assert_one_line_failure(serve, "ROSTRA_SECRET_KEY", str(kept_secret_path(database)))


def test_plain_database_urls_get_the_async_drivers() -> None:
    def url(value: str) -> str:
        return Settings(_env_file=None, database_url=value).database_url  # type: ignore[call-arg]

    assert url("sqlite:///./data/rostra.db") == "sqlite+aiosqlite:///./data/rostra.db"
    assert url("postgres://u:p@db/rostra") == "postgresql+asyncpg://u:p@db/rostra"
    assert url("postgresql://u@db/rostra") == "postgresql+asyncpg://u@db/rostra"
    assert url("postgresql+asyncpg://u@db/rostra") == "postgresql+asyncpg://u@db/rostra"


@pytest.mark.parametrize(
    "value",
    ["postgresql+asyncpg://u@db:port/rostra", "postgres://u@db:70000/rostra", "sqlite:/x.db"],
)
def test_malformed_database_urls_are_refused(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, database_url=value)  # type: ignore[call-arg]
    assert refused.value.errors()[0]["loc"] == ("database_url",)


def _signing_key_in_a_new_process(database: Path) -> str:
    code = (
        "import sys; from rostra.core.config import Settings; "
        "print(Settings(_env_file=None, database_url=sys.argv[1]).signing_key())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, f"sqlite+aiosqlite:///{database}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=rostra_env(None, secret_key=None),
    )
    return result.stdout.splitlines()[-1]  # after the warning that a key was made


def test_the_generated_secret_key_is_kept_beside_the_database_and_reused(
    tmp_path: Path,
) -> None:
    database = tmp_path / "data" / "rostra.db"
    first = _signing_key_in_a_new_process(database)
    kept = database.with_name("rostra.db.secret")
    assert kept_secret_path(database) == kept
    assert kept.read_text().strip() == first
    assert len(first) >= 32
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # Another process (a restart) signs with the same key.
    assert _signing_key_in_a_new_process(database) == first
    # A different database gets its own.
    assert _signing_key_in_a_new_process(tmp_path / "other.db") != first
