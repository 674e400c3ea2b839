"""The tests' PostgreSQL server (tests/postgres_server.py): Optuna stores and reads back a study
on it, each test's database is its own, and the server's folder belongs to the server user and
is gone once the server stops."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import optuna
import pytest

from tests.postgres_server import (
    SERVER_USER,
    create_database,
    missing_postgres,
    postgres_binaries,
    postgres_server,
)


def test_binaries_hold_initdb_and_pg_ctl():
    binaries = postgres_binaries()
    if binaries is None:
        pytest.skip("Debian's postgresql package is not installed")
    assert (binaries / "initdb").is_file() and (binaries / "pg_ctl").is_file()


def test_a_study_on_the_server_reads_back_in_a_fresh_storage(postgres_database):
    study = optuna.create_study(storage=postgres_database, study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    written = [t.value for t in study.trials]

    fresh = optuna.storages.RDBStorage(postgres_database)
    try:
        read = optuna.load_study(study_name="s", storage=fresh)
        assert [t.value for t in read.trials] == written
        assert [t.params["x"] for t in read.trials] == written
        assert len(written) == 3 and len(set(written)) == 3
    finally:
        fresh.engine.dispose()


def test_each_database_is_its_own(postgres_url, postgres_database):
    other = create_database(postgres_url, "other_" + os.urandom(4).hex())
    assert other != postgres_database and other.startswith(postgres_url.rsplit("/", 1)[0])
    optuna.create_study(storage=postgres_database, study_name="only_here")

    assert [s.study_name for s in optuna.get_all_study_summaries(postgres_database)] == [
        "only_here"
    ]
    assert optuna.get_all_study_summaries(other) == []
    with pytest.raises(KeyError):
        optuna.load_study(study_name="only_here", storage=other)


def test_the_server_folder_is_the_server_users_and_removed_on_exit():
    """Its own server (not the session's postgres_url), to see the folder go."""
    reason = missing_postgres()
    if reason:
        pytest.skip(f"PostgreSQL tests need a server: {reason}")
    import psycopg

    with postgres_server() as url:
        with psycopg.connect(url) as connection:
            (data,) = connection.execute("SHOW data_directory").fetchone()
        data = Path(data)
        assert data.parent.name.startswith("dlexp-postgres-")
        owner = SERVER_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        for path in (data, data.parent):
            assert pwd.getpwuid(path.stat().st_uid).pw_name == owner, path
        assert (data / "PG_VERSION").is_file()
    assert not data.parent.exists()
    with pytest.raises(psycopg.OperationalError):  # nothing listens there any more
        psycopg.connect(url, connect_timeout=2).close()
