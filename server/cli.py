"""The `tanpuhui` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

from server.settings import Settings, SettingsError, load_settings

log = logging.getLogger("tanpuhui.cli")

DESCRIPTION = """\
Tanpuhui (碳普惠): the carbon-inclusion points and carbon-neutrality platform, as a GraphQL API.

With no DATABASE_URL / REDIS_URL set, every command starts its own PostgreSQL and Redis
under the data dir (TANPUHUI_DATA_DIR, default ./.tanpuhui) and keeps the data there.

Start here:
  tanpuhui serve                 serve GraphiQL at http://127.0.0.1:8000/graphql
  tanpuhui demo                  load demo accounts (prints their logins and an API key)
  tanpuhui create-regulator --email you@example.org
"""


@contextmanager
def servers(settings: Settings, *, redis: bool = True,
            meanwhile: Callable[[], object] | None = None) -> Iterator[tuple[str, str | None]]:
    """Database and Redis URLs: the configured ones, or embedded servers started for the duration
    (Redis only for commands that use it). `meanwhile` runs while they start (the servers start
    in subprocesses, so importing the application at the same time shortens the start)."""
    from server.embedded import start_embedded

    with ThreadPoolExecutor(1, thread_name_prefix="embedded-start") as pool:
        starting = pool.submit(start_embedded, settings.data_dir, settings.database_url, settings.redis_url,
                               need_redis=redis)
        try:
            if meanwhile is not None:
                meanwhile()
            embedded = starting.result()
        except BaseException:
            # e.g. Ctrl-C during the start: let it finish, then stop what it started
            with _signals_ignored():
                try:
                    starting.result().stop()
                except Exception:
                    pass
            raise
    try:
        yield embedded.database_url, embedded.redis_url  # type: ignore[misc]
    finally:
        # a second Ctrl-C must not cut the shutdown of the embedded servers short
        with _signals_ignored():
            embedded.stop()


@contextmanager
def _signals_ignored() -> Iterator[None]:
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _migrate(database_url: str) -> None:
    from server.migrate import upgrade

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    upgrade(database_url)


def _uvicorn_server(config):
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn, except that after its graceful shutdown on Ctrl-C or SIGTERM it returns instead
        of raising the signal again: re-raised, SIGTERM would end the process before the embedded
        PostgreSQL and Redis are stopped, and SIGINT would end it with a KeyboardInterrupt."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            handled = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server(config)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    def load_app_code() -> None:
        import server.app  # noqa: F401  (the schema, resolvers and models: a second or so of imports)
        import server.migrate  # noqa: F401

    from server.stripe_emulator import payments_for_serve

    with servers(settings, meanwhile=load_app_code) as (database_url, redis_url), \
            payments_for_serve(settings, args.host, args.port) as payments:
        import uvicorn

        from server.app import build_services, create_app

        _migrate(database_url)
        app = create_app(build_services(settings, database_url, redis_url, payments=payments))
        log.info("serving", extra={"url": f"http://{args.host}:{args.port}/graphql",
                                   "embedded": settings.embedded})
        config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None, access_log=False,
                                workers=1, lifespan="on", server_header=False)
        server = _uvicorn_server(config)
        server.run()  # returns on Ctrl-C / SIGTERM after a graceful shutdown
        if not server.started:
            return 1  # e.g. the port was taken; uvicorn logged why
    log.info("stopped")
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with servers(settings, redis=False) as (database_url, _):
        _migrate(database_url)
    print("database is at the latest migration")
    return 0


async def _with_session(database_url: str, work) -> object:
    from core.clock import SystemClock
    from server.db import create_engine, create_session_factory

    engine = create_engine(database_url, 2)
    try:
        async with create_session_factory(engine)() as session:
            async with session.begin():
                return await work(session, SystemClock())
    finally:
        await engine.dispose()


def cmd_create_regulator(args: argparse.Namespace, settings: Settings) -> int:
    from accounts import service
    from accounts.security import PasswordHashing
    from core.errors import DomainError

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        generated = False
    else:
        password = secrets.token_urlsafe(15)
        generated = True
    with servers(settings, redis=False) as (database_url, _):
        _migrate(database_url)

        async def work(session, clock):
            return await service.create_regulator(session=session, clock=clock, hashing=PasswordHashing(),
                                                  email=args.email, password=password,
                                                  display_name=args.name)

        try:
            account = asyncio.run(_with_session(database_url, work))
        except DomainError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
    print(f"regulator account {account.id} created for {args.email}")
    if generated:
        print(f"one-time password (shown once, change it after signing in): {password}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from server.demo import DemoRefused, load_demo, refuse_in_production

    try:
        refuse_in_production(settings)
    except DemoRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with servers(settings, redis=False) as (database_url, _):
        _migrate(database_url)
        lines = asyncio.run(load_demo(database_url, settings))
    print("\n".join(lines))
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the job queue's worker: the scheduled expiry sweep and redemption time-outs."""
    from arq.worker import run_worker

    from server.worker import worker_settings

    with servers(settings) as (database_url, redis_url):
        _migrate(database_url)
        run_worker(worker_settings(database_url, redis_url, settings))  # returns on Ctrl-C / SIGTERM
    return 0


def cmd_expire(args: argparse.Namespace, settings: Settings) -> int:
    """One expiry sweep by hand, as of a given time (default now)."""
    from datetime import datetime, timezone

    from core.clock import SystemClock
    from wallets.jobs import expiry_sweep
    from server.db import create_engine, create_session_factory

    as_of = None
    if args.as_of:
        try:
            as_of = datetime.fromisoformat(args.as_of)
        except ValueError:
            print("error: --as-of takes an ISO 8601 time, e.g. 2036-03-02T00:00:00+08:00", file=sys.stderr)
            return 2
        if as_of.tzinfo is None:
            print("error: --as-of needs a time zone (e.g. +08:00 or Z)", file=sys.stderr)
            return 2
        as_of = as_of.astimezone(timezone.utc)

    async def sweep(database_url: str):
        engine = create_engine(database_url, 2)
        try:
            return await expiry_sweep(session_factory=create_session_factory(engine), clock=SystemClock(),
                                      as_of=as_of)
        finally:
            await engine.dispose()

    with servers(settings, redis=False) as (database_url, _):
        _migrate(database_url)
        report = asyncio.run(sweep(database_url))
    print(f"expiry run {report.run_id} as of {report.as_of.isoformat()}: {report.lots_expired} lots, "
          f"{report.points_expired} points expired; {report.notices_issued} expiry notices issued")
    return 0


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError("an anchor is SEQ:HASH, e.g. 1200:<64 hex digits>")
    return int(seq), digest.lower()


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Verify the audit log's hash chain (art. 30-31); exit 1 at the first broken link."""
    from audit_log.service import verify_chain

    async def work(session, clock):
        return await verify_chain(session=session, anchors=dict(args.anchor or []))

    with servers(settings, redis=False) as (database_url, _):
        _migrate(database_url)
        status = asyncio.run(_with_session(database_url, work))
    if status.first_break is not None:
        found = status.first_break
        print(f"audit chain BROKEN at seq {found.seq}: {found.problem} (expected {found.expected}, found "
              f"{found.found}); {status.entries} entries before it are sound", file=sys.stderr)
        return 1
    print(f"audit chain intact: {status.entries} entries; head seq {status.head_seq} hash {status.head_hash}")
    print("record the head outside the database; check it later with --anchor SEQ:HASH")
    return 0


def cmd_schema(args: argparse.Namespace, settings: Settings | None) -> int:
    from frontend_contracts.snapshot import write_snapshot
    from server.graphql_schema import live_schema_sdl

    path = write_snapshot(live_schema_sdl())
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tanpuhui", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the GraphQL API (applies migrations first)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="upgrade the database to the latest migration")
    migrate.set_defaults(run=cmd_migrate)

    regulator = commands.add_parser("create-regulator", help="bootstrap a regulator account")
    regulator.add_argument("--email", required=True, help="the regulator's sign-in email")
    regulator.add_argument("--name", default="深圳市生态环境局", help="display name")
    regulator.add_argument("--password-stdin", action="store_true",
                           help="read the password from standard input instead of generating one")
    regulator.set_defaults(run=cmd_create_regulator)

    demo = commands.add_parser("demo", help="load a small demo data set and print its logins")
    demo.set_defaults(run=cmd_demo)

    worker = commands.add_parser("worker", help="run the job worker (hourly expiry sweep, redemption time-outs)")
    worker.set_defaults(run=cmd_worker)

    expire = commands.add_parser("expire", help="run one expiry sweep now, or as of --as-of TIME")
    expire.add_argument("--as-of", help="ISO 8601 time with zone, e.g. 2036-03-02T00:00:00+08:00 (default: now)")
    expire.set_defaults(run=cmd_expire)

    audit = commands.add_parser("audit-verify", help="verify the audit log's hash chain (exit 1 if broken)")
    audit.add_argument("--anchor", type=_anchor, action="append", metavar="SEQ:HASH",
                       help="a head recorded earlier outside the database: the entry must still have this hash "
                            "(repeatable)")
    audit.set_defaults(run=cmd_audit_verify)

    schema = commands.add_parser("schema", help="rewrite frontend_contracts/schema.graphql from the code")
    schema.set_defaults(run=cmd_schema, needs_settings=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    from server.logs import configure_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    # SIGTERM (docker stop, systemd, kill) unwinds like Ctrl-C, so the embedded servers are stopped
    # whatever the command is doing; `serve` handles both itself while it is serving
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if not getattr(args, "needs_settings", True):
            configure_logging("INFO")
            return args.run(args, None)
        try:
            settings = load_settings()
        except SettingsError as exc:  # a bad or missing setting: say which, no traceback
            print(f"error: {exc}".replace("\n", "\nerror: "), file=sys.stderr)
            return 2
        configure_logging(settings.log_level)
        return args.run(args, settings)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
