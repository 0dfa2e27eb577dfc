"""The schema snapshot the front-ends are checked against.

`schema.graphql` next to this file is the SDL of the API as last released to the front-ends.
tests/api/test_frontend_contracts.py fails when the live schema drifts from it: loudly for breaking
changes, and also for additions, so every change to the API shows up in review as a diff of this
file. After a deliberate change, `make schema` (`tanpuhui schema`) rewrites it."""

from __future__ import annotations

from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent
SNAPSHOT_PATH = CONTRACTS_DIR / "schema.graphql"


def snapshot_text(sdl: str) -> str:
    """What schema.graphql holds for a given SDL (server.graphql_schema.live_schema_sdl()): the SDL and a
    final newline."""
    return sdl.rstrip("\n") + "\n"


def write_snapshot(sdl: str) -> Path:
    SNAPSHOT_PATH.write_text(snapshot_text(sdl), encoding="utf-8")
    return SNAPSHOT_PATH


def operation_files() -> list[Path]:
    """Every operation document the front-ends use (all .graphql files but the snapshot)."""
    return sorted(path for path in CONTRACTS_DIR.rglob("*.graphql") if path != SNAPSHOT_PATH)
