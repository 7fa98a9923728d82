"""Each bad input gives one paragraph naming the problem and the fix: no traceback."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pgkeel.database import PersistentCluster, find_binaries
from pgkeel.database.process import free_port
from pgkeel.errors import DatabaseError

PGKEEL = str(Path(sys.executable).with_name("pgkeel"))
TRIVIAL_TEST = "def test_db(postgres_url):\n    pass\n"


def inner_pytest(
    tmp_path: Path, env: dict[str, str], prefix: tuple[str, ...] = (), *args: str
) -> str:
    """Run a one-test pytest session needing a database; return its combined output."""
    (tmp_path / "test_needs_db.py").write_text(TRIVIAL_TEST)
    pytest_args = ["-q", "-p", "no:cacheprovider", *args, str(tmp_path)]
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "pytest", *pytest_args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode != 0
    return result.stdout + result.stderr


def assert_no_internal_traceback(output: str) -> None:
    assert "Traceback" not in output
    assert "pgkeel/database/" not in output
    assert "pgkeel/testing/" not in output


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(extra)
    return env


def test_unparsable_database_url(tmp_path: Path) -> None:
    output = inner_pytest(tmp_path, clean_env(DATABASE_URL="not a url at all"))
    assert "DATABASE_URL is not a database URL: 'not a url at all'" in output
    assert "postgresql+psycopg://user:password@localhost:5432/dbname" in output
    assert_no_internal_traceback(output)


def test_database_url_with_a_port_that_is_not_a_number(tmp_path: Path) -> None:
    output = inner_pytest(tmp_path, clean_env(DATABASE_URL="postgresql://x@localhost:notaport/app"))
    assert "DATABASE_URL is not a database URL: 'postgresql://x@localhost:notaport/app'" in output
    assert "the port a number" in output
    assert_no_internal_traceback(output)


def test_database_url_of_another_database_kind(tmp_path: Path) -> None:
    output = inner_pytest(tmp_path, clean_env(DATABASE_URL="sqlite:///x.db"))
    assert "DATABASE_URL points at 'sqlite', but pgkeel needs PostgreSQL" in output
    assert_no_internal_traceback(output)


def test_unreachable_database_url(tmp_path: Path) -> None:
    url = f"postgresql://someone:secret@127.0.0.1:{free_port()}/app"
    output = inner_pytest(tmp_path, clean_env(DATABASE_URL=url))
    assert "Cannot connect to the server in DATABASE_URL" in output
    assert "someone:***@127.0.0.1" in output
    assert "secret" not in output
    assert "unset it to let pgkeel start a throwaway PostgreSQL" in output
    assert_no_internal_traceback(output)


def test_unknown_source(tmp_path: Path) -> None:
    output = inner_pytest(tmp_path, clean_env(), (), "--pgkeel-source=docker")
    assert "pgkeel_source = 'docker' is not a source pgkeel knows" in output
    assert "one of auto, testcontainers" in output
    assert_no_internal_traceback(output)


def docker_may_answer() -> bool:
    return "DOCKER_HOST" in os.environ or Path("/var/run/docker.sock").exists()


def test_testcontainers_source_without_docker(tmp_path: Path) -> None:
    if docker_may_answer():
        pytest.skip("a Docker engine may answer here, and the container would start")
    output = inner_pytest(tmp_path, clean_env(), (), "--pgkeel-source=testcontainers")
    assert "No PostgreSQL server could be found or started. Tried, in order:" in output
    assert "- testcontainers: " in output
    assert "- DATABASE_URL" not in output
    assert_no_internal_traceback(output)


def _hidden_dirs() -> list[str]:
    hidden = ["/usr/lib/postgresql"]
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        hidden.extend(spec.submodule_search_locations)
    return [d for d in hidden if Path(d).is_dir()]


@pytest.fixture
def without_postgres(tmp_path: Path) -> tuple[str, ...]:
    """A command prefix running in a mount namespace where no PostgreSQL is installed."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("hiding the installed PostgreSQL needs root and unshare(1)")
    empty = tmp_path / "empty"
    empty.mkdir()
    mounts = " && ".join(f"mount --bind {empty} {shlex.quote(d)}" for d in _hidden_dirs())
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", mounts], check=False)
    if probe.returncode != 0:
        pytest.skip("this machine does not allow mount namespaces")
    return ("unshare", "--mount", "sh", "-c", f'{mounts} && exec "$@"', "sh")


def test_no_postgresql_anywhere_lists_what_was_tried(
    tmp_path: Path, without_postgres: tuple[str, ...]
) -> None:
    env = clean_env(PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin")
    output = inner_pytest(tmp_path, env, without_postgres)
    assert "No PostgreSQL server could be found or started. Tried, in order:" in output
    for source, fix in [
        ("- DATABASE_URL: not set", "export DATABASE_URL="),
        ("- PostgreSQL binaries on this machine", "apt-get install postgresql"),
        ("- the pgserver wheel", "pip install 'pgkeel[embedded]'"),
        ("- testcontainers", "Docker"),
    ]:
        assert source in output
        assert fix in output
    assert_no_internal_traceback(output)


def test_cli_without_postgresql(tmp_path: Path, without_postgres: tuple[str, ...]) -> None:
    env = clean_env(PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin")
    result = subprocess.run(
        [*without_postgres, PGKEEL, "db", "start", "--dir", str(tmp_path / "db")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("pgkeel: error: No PostgreSQL server could be found")
    assert_no_internal_traceback(result.stderr)
    assert not (tmp_path / "db").exists()


def test_forced_bindir_that_holds_no_server(tmp_path: Path) -> None:
    env = clean_env(PGKEEL_PG_BINDIR=str(tmp_path))
    result = subprocess.run(
        [PGKEEL, "db", "start", "--dir", str(tmp_path / "db")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"PGKEEL_PG_BINDIR={tmp_path}: this directory holds no runnable" in result.stderr


@pytest.fixture
def root_cluster() -> Callable[[Path], PersistentCluster]:
    binaries = find_binaries([])
    assert binaries is not None
    if os.geteuid() != 0:
        pytest.skip("the server runs as this same user; there is no other owner to clash with")
    return lambda directory: PersistentCluster(directory, binaries)


def test_data_directory_owned_by_someone_else(
    open_dir: Path, root_cluster: Callable[[Path], PersistentCluster]
) -> None:
    cluster = root_cluster(open_dir / "db")
    data = open_dir / "db" / "data"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    with pytest.raises(DatabaseError) as error:
        cluster.start()
    message = str(error.value)
    assert f"The data directory {data} belongs to uid 0 (root)" in message
    assert f"PostgreSQL would run as {cluster.user.name!r}" in message
    assert "chown -R" in message


def test_cluster_directory_the_server_user_cannot_reach(
    open_dir: Path, root_cluster: Callable[[Path], PersistentCluster]
) -> None:
    locked = open_dir / "locked"
    locked.mkdir(mode=0o700)
    with pytest.raises(DatabaseError) as error:
        root_cluster(locked / "db").start()
    assert f"which cannot enter {locked} (mode 0o700)" in str(error.value)
    assert f"`chmod o+x {locked}`" in str(error.value)
    assert not (locked / "db").exists()


def test_directory_that_holds_a_project(open_dir: Path) -> None:
    binaries = find_binaries([])
    assert binaries is not None
    project = open_dir / "service"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\n")
    owner = project.stat().st_uid
    with pytest.raises(DatabaseError) as error:
        PersistentCluster(project, binaries).start()
    message = str(error.value)
    listed = "(pyproject.toml, src)"
    assert f"{project} already holds files that are not a pgkeel cluster's {listed}" in message
    assert f"--dir {project / '.pgkeel'}" in message
    assert project.stat().st_uid == owner
    assert sorted(entry.name for entry in project.iterdir()) == ["pyproject.toml", "src"]


def test_data_directory_of_another_major_version(open_dir: Path) -> None:
    binaries = find_binaries([])
    assert binaries is not None
    cluster = PersistentCluster(open_dir / "db", binaries)
    data = open_dir / "db" / "data"
    data.mkdir(parents=True)
    cluster.user.give(open_dir / "db")
    cluster.user.give(data)
    (data / "PG_VERSION").write_text("9\n")
    with pytest.raises(DatabaseError) as error:
        cluster.start()
    message = str(error.value)
    assert f"was created by PostgreSQL 9, but the server found is PostgreSQL {binaries.major}" in (
        message
    )
    assert "PGKEEL_PG_BINDIR to a PostgreSQL 9 bin directory" in message
