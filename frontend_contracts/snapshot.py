"""The schema snapshot the front-ends are checked against.

`schema.graphql` next to this file is the SDL of the API as last released to the front-ends.
tests/test_frontend_contracts.py fails when the live schema drifts from it: loudly for breaking
changes, and also for additions, so every change to the API shows up in review as a diff of this
file. After a deliberate change, `make schema` (`tanpuhui schema`) rewrites it."""

from __future__ import annotations

from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent
SNAPSHOT_PATH = CONTRACTS_DIR / "schema.graphql"


def live_schema_sdl() -> str:
    """The SDL of the schema the code serves now."""
    from schema.root import schema

    return schema.as_str()


def snapshot_text(sdl: str | None = None) -> str:
    """What schema.graphql holds for a given SDL (the live one by default): the SDL and a final newline."""
    return (live_schema_sdl() if sdl is None else sdl).rstrip("\n") + "\n"


def write_snapshot() -> Path:
    SNAPSHOT_PATH.write_text(snapshot_text(), encoding="utf-8")
    return SNAPSHOT_PATH


def operation_files() -> list[Path]:
    """Every operation document the front-ends use (all .graphql files but the snapshot)."""
    return sorted(path for path in CONTRACTS_DIR.rglob("*.graphql") if path != SNAPSHOT_PATH)
