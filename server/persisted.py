"""Persisted operations: the documents in frontend_contracts/, addressable by their sha256.

A client may send `{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<hex>"}}}`
(or `"documentId": "sha256:<hex>"`) instead of the query text. With
TANPUHUI_PERSISTED_QUERIES_ONLY=true, nothing else is accepted."""

from __future__ import annotations

import hashlib
from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "frontend_contracts"


def document_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_documents(root: Path = CONTRACTS_DIR) -> dict[str, str]:
    """sha256 -> document text, for every operation file (the schema snapshot excluded)."""
    documents = {}
    for path in sorted(root.rglob("*.graphql")):
        if path.name == "schema.graphql":
            continue
        text = path.read_text(encoding="utf-8")
        documents[document_hash(text)] = text
    return documents
