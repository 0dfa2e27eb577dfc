"""The embedded default's Stripe: localstripe, in TEST mode, in a child process on 127.0.0.1.

localstripe's own command binds every interface and pickles its whole store to
/tmp/localstripe.pickle on every write; here its aiohttp app (`localstripe.server.app`) runs on a
free port of 127.0.0.1 with the disk dump switched off, so its data lives only as long as the
process (test mode: no money ever moves). The child runs in its own session (Ctrl-C reaches only
the `tanpuhui` process, which then stops it) and exits by itself if its parent dies.

Webhooks: `register_webhook` points localstripe's `POST /_config/webhooks/<id>` at the service's
`/webhooks/stripe` with a secret generated for this run; localstripe signs each delivery with
Stripe's scheme, about a second after the event, once, without retries (the market's reconcile
sweep covers what a missed delivery would leave behind).

`python -m server.stripe_emulator --parent-pid N` is the child's entry point."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

log = logging.getLogger("tanpuhui.stripe_emulator")

START_TIMEOUT_SECONDS = 20
# Where a running `serve` tells other processes of the same data dir (the worker) its emulator.
EMULATOR_FILE = "stripe-emulator.json"


@dataclass
class StripeEmulator:
    url: str
    webhook_secret: str
    process: subprocess.Popen | None = None

    def register_webhook(self, url: str, *, hook_id: str = "tanpuhui", events: tuple[str, ...] | None = None) -> None:
        """Ask localstripe to deliver (signed with our secret) the events we handle to `url`."""
        from neutrality.market.payments import HANDLED_EVENTS

        fields = [("url", url), ("secret", self.webhook_secret)]
        fields += [("events[]", event) for event in (events or HANDLED_EVENTS)]
        request = urllib.request.Request(f"{self.url}/_config/webhooks/{hook_id}",
                                         data=urllib.parse.urlencode(fields).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise RuntimeError(f"localstripe refused the webhook ({response.status})")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def start_emulator() -> StripeEmulator:
    """Start localstripe on a free port of 127.0.0.1; returns once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "server.stripe_emulator", "--parent-pid", str(os.getpid())],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
        cwd=str(Path(__file__).resolve().parent.parent))
    try:
        line = _read_line(process, START_TIMEOUT_SECONDS)
        port = int(line)
    except BaseException:
        process.kill()
        process.wait()
        raise
    assert process.stdout is not None
    process.stdout.close()
    emulator = StripeEmulator(url=f"http://127.0.0.1:{port}", webhook_secret="whsec_" + secrets.token_hex(24),
                              process=process)
    log.info("stripe emulator (localstripe, test mode) ready", extra={"url": emulator.url})
    return emulator


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    import selectors

    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError("the Stripe emulator did not start in time")
    line = process.stdout.readline().decode().strip()
    if not line:
        raise RuntimeError(f"the Stripe emulator exited (code {process.wait()})")
    return line


def write_emulator_file(data_dir: Path, emulator: StripeEmulator) -> Path:
    """Tell the worker of this data dir where the emulator is (it cancels and refunds through it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / EMULATOR_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": emulator.url, "pid": emulator.process.pid if emulator.process else None}))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def read_emulator_url(data_dir: Path) -> str | None:
    """The URL of the emulator a running `serve` of this data dir started, if it is still up."""
    try:
        recorded = json.loads((data_dir / EMULATOR_FILE).read_text())
        pid = int(recorded["pid"])
        os.kill(pid, 0)
        return str(recorded["url"])
    except (FileNotFoundError, ValueError, KeyError, TypeError, ProcessLookupError, PermissionError):
        return None


@contextlib.contextmanager
def payments_for_serve(settings, host: str, port: int) -> Iterator[object | None]:
    """The process's payments adapter for `tanpuhui serve`: real Stripe when STRIPE_API_KEY is set;
    otherwise (outside production) the emulator, started here, delivering webhooks to this server."""
    from neutrality.market.payments import from_settings

    if settings.stripe_api_key:
        yield from_settings(settings)
        return
    if settings.environment == "production":
        log.error("STRIPE_API_KEY is not set: CER purchases answer PAYMENT_PROVIDER_UNAVAILABLE")
        yield None
        return
    emulator = start_emulator()
    path = None
    try:
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        emulator.register_webhook(f"http://{reachable}:{port}/webhooks/stripe")
        path = write_emulator_file(settings.data_dir, emulator)
        yield from_settings(settings, emulator_url=emulator.url, emulator_secret=emulator.webhook_secret)
    finally:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        emulator.stop()


def payments_for_worker(settings):
    """The worker's payments adapter (it cancels lapsed intents and retries refunds): Stripe when
    STRIPE_API_KEY is set, else the emulator a running `serve` of the same data dir started, else
    None (the sweeps then only release tonnes and leave the provider alone)."""
    from neutrality.market.payments import EMULATOR_API_KEY, Payments

    if settings.stripe_api_key:
        return Payments(api_key=settings.stripe_api_key, webhook_secret=settings.stripe_webhook_secret,
                        api_base=settings.stripe_api_base)
    url = read_emulator_url(Path(settings.data_dir))
    return Payments(api_key=EMULATOR_API_KEY, webhook_secret=None, api_base=url, emulated=True) if url else None


# --- the child process ---------------------------------------------------------------------------


def _serve(parent_pid: int) -> None:
    import asyncio

    from aiohttp import web
    from localstripe import resources

    # no pickling of the store to /tmp on every write, and nothing loaded from a previous run
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]
    from localstripe.server import app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))

    async def watch_parent(app_: web.Application) -> None:
        async def watch() -> None:
            while True:
                await asyncio.sleep(1)
                if os.getppid() != parent_pid:
                    os.kill(os.getpid(), signal.SIGTERM)
                    return

        app_["parent_watch"] = asyncio.ensure_future(watch())

    app.on_startup.append(watch_parent)
    # listening before the port is announced: the first requests wait in the backlog
    sock.listen(128)
    print(sock.getsockname()[1], flush=True)
    web.run_app(app, sock=sock, access_log=None, print=None, handle_signals=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="localstripe on 127.0.0.1 for Tanpuhui's embedded default")
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    _serve(args.parent_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
