"""As root the server runs as an unprivileged user: a server installed under 0700 still runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgkeel.database.binaries import PostgresBinaries, find_pgserver
from pgkeel.database.cluster import PersistentCluster, throwaway_cluster
from pgkeel.errors import DatabaseError

PGKEEL = str(Path(sys.executable).with_name("pgkeel"))

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the server runs as this same user, who can reach its own files"
)


@pytest.fixture(scope="module")
def locked_install() -> Iterator[PostgresBinaries]:
    """The embedded server's wheel as installed in a virtual environment under a 0700 directory.

    That is root's home, or a checkout made by ``mktemp -d``: ``site-packages/pgserver/pginstall``
    next to ``site-packages/pgserver.libs``, the libraries its programs load.
    """
    embedded = find_pgserver([])
    if embedded is None:
        pytest.skip("the pgserver wheel is not installed")
    site_packages = embedded.bindir.parents[2]
    locked = Path(tempfile.mkdtemp(prefix="pgkeel-locked-"))
    try:
        for part in ("pgserver/pginstall", "pgserver.libs"):
            shutil.copytree(site_packages / part, locked / "site" / part, symlinks=True)
        bindir = locked / "site" / "pgserver" / "pginstall" / "bin"
        yield PostgresBinaries(bindir, embedded.major, "a wheel under a 0700 directory")
    finally:
        shutil.rmtree(locked)


def test_a_server_under_a_0700_directory_runs_from_a_shared_copy(
    locked_install: PostgresBinaries,
) -> None:
    assert locked_install.bindir.parents[3].stat().st_mode & 0o777 == 0o700
    with throwaway_cluster(locked_install) as cluster:
        copy = cluster.binaries.bindir.parents[2]
        assert copy.parent == Path(tempfile.gettempdir())
        assert "copied to" in cluster.binaries.origin
        assert copy.stat().st_uid == 0
        assert not copy.stat().st_mode & 0o022
        with psycopg.connect(
            cluster.url().set(drivername="postgresql").render_as_string(hide_password=False)
        ) as connection:
            row = connection.execute("select current_setting('server_version_num')").fetchone()
        assert row is not None
        assert int(row[0]) // 10000 == locked_install.major
    with throwaway_cluster(locked_install) as again:
        assert again.binaries.bindir == cluster.binaries.bindir


def test_a_copy_the_server_user_cannot_reach_either_names_the_fix(
    locked_install: PostgresBinaries, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = Path(tempfile.mkdtemp(prefix="pgkeel-private-tmp-"))
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    try:
        with pytest.raises(DatabaseError) as error, throwaway_cluster(locked_install):
            pass
    finally:
        shutil.rmtree(private)
    message = str(error.value)
    blocked = locked_install.bindir.parents[3]
    assert f"cannot enter {blocked} (mode 0o700)" in message
    assert f"`chmod o+x {blocked}`" in message
    assert "PGKEEL_PG_BINDIR" in message


def test_a_development_cluster_runs_from_the_copy_too(
    locked_install: PostgresBinaries, open_dir: Path
) -> None:
    """``pgkeel db start`` as root, with the embedded server in a 0700 virtualenv."""
    cluster = PersistentCluster(open_dir / "db", locked_install)
    assert "copied to" in cluster.binaries.origin
    try:
        running = cluster.start()
        url = running.url().set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url) as connection:
            assert connection.execute("select 1").fetchone() == (1,)
    finally:
        assert cluster.stop()
    assert cluster.status() is None


def test_a_refused_start_creates_nothing(open_dir: Path) -> None:
    """``pgkeel db start --dir private/db``: the server user cannot enter private/, no db/ made."""
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    result = subprocess.run(
        [PGKEEL, "db", "start", "--dir", str(private / "db")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert f"cannot enter {private} (mode 0o700)" in result.stderr
    assert list(private.iterdir()) == []
