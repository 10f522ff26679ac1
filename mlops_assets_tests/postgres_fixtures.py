"""Throwaway PostgreSQL cluster and PostgreSQL-backed MLflow tracking server for tests.

``postgres`` starts a fresh cluster (``initdb`` into a temporary folder, loopback only, its
unix socket in that folder) with the databases ``dagster`` and ``mlflow`` owned by a user
with a password; ``mlflow_server`` starts ``mlflow server`` on that ``mlflow`` database with
proxied artifacts in a temporary folder. Both are session-scoped and stopped by their own
PID at the end. Without PostgreSQL installed the tests that use them are skipped, unless
``MLOPS_REQUIRE_POSTGRES=1`` (CI sets it), which turns the skip into a failure.

PostgreSQL refuses to run as root: as root, every server command runs as the ``postgres``
system user (``subprocess`` ``user=``, so the PID we hold is the postmaster's own).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mlops_assets.processes import ManagedProcess, free_port, start, wait_http

REQUIRE_ENV = "MLOPS_REQUIRE_POSTGRES"
APP_USER, APP_PASSWORD = "mlops", "mlops-test-secret"
DATABASES = ("dagster", "mlflow")
SUPERUSER = "postgres"


def _unavailable(reason: str) -> None:
    """Skip, or fail when PostgreSQL is required (CI)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``postgres`` (``pg_config --bindir``, else newest)."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(result.stdout.strip())
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(versions, key=lambda path: int(Path(path).parent.name), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


@dataclass(frozen=True)
class PostgresServer:
    """Connection facts of the running test cluster.

    Attributes:
        host: Loopback address it listens on.
        port: TCP port.
        user: Application user (owner of the databases).
        password: That user's password.
        databases: Databases created for the tests.
        data_dir: The cluster's folder.
        socket_dir: Folder of its unix socket.
        pid: The postmaster's PID.
    """

    host: str
    port: int
    user: str
    password: str
    databases: tuple[str, ...]
    data_dir: Path
    socket_dir: Path
    pid: int

    def url(self, database: str, driver: str = "postgresql") -> str:
        """SQLAlchemy URL of ``database`` (``postgresql://user:password@host:port/db``)."""
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def connect(self, database: str):
        """A psycopg2 connection (autocommit) to ``database`` as the application user."""
        import psycopg2

        connection = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            connect_timeout=5,
        )
        connection.autocommit = True
        return connection

    def create_database(self, database: str) -> str:
        """Create ``database`` (owned by the application user) and return its name.

        Tests that need storage of their own (the session cluster is shared) use this.
        """
        if not database.isidentifier():
            raise ValueError(f"database name {database!r} is not a plain identifier")
        self.query("postgres", f"CREATE DATABASE {database}")
        return database

    def query(self, database: str, sql: str, *args: object) -> list[tuple]:
        """Run one statement on ``database`` (autocommit) and return its rows (none: [])."""
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args or None)
                return cursor.fetchall() if cursor.description is not None else []
        finally:
            connection.close()

    def dagster_env(self, database: str = "dagster") -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables ``deploy/production/dagster.yaml`` reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": database,
        }


@dataclass
class _Cluster:
    bindir: Path
    root: Path
    run_as: str | None
    process: subprocess.Popen | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "postgres.log"

    def run(self, *command: str) -> None:
        result = subprocess.run(
            [str(self.bindir / command[0]), *command[1:]],
            capture_output=True,
            text=True,
            user=self.run_as,
            cwd=self.root,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr}")

    def start(self, port: int) -> subprocess.Popen:
        with open(self.log, "ab") as sink:
            self.process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    *("-D", str(self.root / "data"), "-p", str(port)),
                    *("-h", "127.0.0.1", "-k", str(self.root)),
                    # a test cluster: durability is not what is tested here
                    *("-c", "fsync=off", "-c", "synchronous_commit=off"),
                    *("-c", "full_page_writes=off", "-c", "max_connections=200"),
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self.run_as,
                cwd=self.root,
                start_new_session=True,
            )
        return self.process

    def superuser(self, port: int, timeout_s: float = 30.0):
        import psycopg2

        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log.read_text()[-2000:]}")
            try:
                connection = psycopg2.connect(
                    host=str(self.root), port=port, user=SUPERUSER, dbname="postgres"
                )
                connection.autocommit = True
                return connection
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGINT (PostgreSQL's fast shutdown: SIGTERM would wait for clients), then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster on loopback with ``dagster`` and ``mlflow`` databases."""
    bindir = find_bindir()
    if bindir is None:
        _unavailable("PostgreSQL is not installed (no initdb; apt-get install postgresql)")
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            _unavailable("running as root and no `postgres` system user to run PostgreSQL")
        run_as = SUPERUSER
    root = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    if run_as is not None:
        shutil.chown(root, user=run_as, group=pwd.getpwnam(run_as).pw_gid)
    cluster = _Cluster(bindir, root, run_as)
    try:
        cluster.run(
            *("initdb", "-D", str(root / "data"), "-U", SUPERUSER, "-E", "UTF8"),
            *("--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256"),
        )
        for attempt in range(3):  # the free port may be taken before postgres binds it
            port = free_port()
            cluster.start(port)
            try:
                admin = cluster.superuser(port)
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {APP_USER} LOGIN CREATEDB PASSWORD %s", (APP_PASSWORD,))
            for database in DATABASES:
                cursor.execute(f"CREATE DATABASE {database} OWNER {APP_USER}")
        admin.close()
        yield PostgresServer(
            host="127.0.0.1",
            port=port,
            user=APP_USER,
            password=APP_PASSWORD,
            databases=DATABASES,
            data_dir=root / "data",
            socket_dir=root,
            pid=cluster.process.pid,
        )
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class MlflowServer:
    """The running PostgreSQL-backed MLflow tracking server.

    Attributes:
        url: Tracking URI (``http://127.0.0.1:<port>``).
        backend_store_uri: Its backend store (the ``mlflow`` PostgreSQL database).
        artifacts_destination: Folder its proxied artifacts live in.
        process: The server process.
    """

    url: str
    backend_store_uri: str
    artifacts_destination: Path
    process: ManagedProcess


@pytest.fixture(scope="session")
def mlflow_server(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """``mlflow server`` on the ``mlflow`` database, proxied artifacts, loopback, free port."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    # mlflow picks psycopg (3) for a bare postgresql:// URL; psycopg2 is what is pinned
    backend = postgres.url("mlflow", driver="postgresql+psycopg2")
    command = [
        sys.executable,
        *("-m", "mlflow", "server"),
        *("--serve-artifacts", "--artifacts-destination", str(root / "artifacts")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "2"),
    ]
    # the store URI holds the password: through the environment, not the process list
    # no GenAI job runner processes (scorers, trace archival): nothing here uses them
    env = {"MLFLOW_BACKEND_STORE_URI": backend, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = start("mlflow-server", command, root / "mlflow-server.log", env)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process, timeout_s=120)
        yield MlflowServer(f"http://127.0.0.1:{port}", backend, root / "artifacts", process)
    finally:
        process.stop(timeout_s=15)
