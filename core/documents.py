"""Documents named by their sha256: a report's or an application's attachments, pinned by hash.

The bytes stay with their author (and the regulator's file); what the platform records is each
document's name, size and sha256, inside the signed submission, so anyone holding a copy can
show it is the one submitted and nobody can swap it afterwards."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from core.errors import Code, DomainError

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
MAX_DOCUMENTS = 50
MAX_NAME = 200
MAX_BYTES = 2 ** 40
# an attachment whose bytes the platform keeps (an application's documents): small, so tables stay small
MAX_ATTACHMENT_BYTES = 200_000
MAX_MEDIA_TYPE = 100


@dataclass(frozen=True)
class Document:
    name: str
    sha256: str
    byte_size: int

    def as_json(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "byteSize": self.byte_size}


def check_documents(items: list[Document], *, field: str, code: Code, required: bool = True) -> list[Document]:
    """Names 1-200 characters without NUL, distinct; sha256 as 64 lower-case hex digits; sizes 1 B to 1 TiB."""
    if required and not items:
        raise DomainError(code, "Attach at least one document (its name, size and sha256).", field)
    if len(items) > MAX_DOCUMENTS:
        raise DomainError(code, f"At most {MAX_DOCUMENTS} documents.", field)
    checked, names = [], set()
    for item in items:
        name = (item.name or "").strip()
        if not name or len(name) > MAX_NAME or "\x00" in name or name in names:
            raise DomainError(code, f"Each document has a distinct name of 1 to {MAX_NAME} characters.", field)
        sha = (item.sha256 or "").strip().lower()
        if not SHA256_HEX.fullmatch(sha):
            raise DomainError(code, f"The sha256 of {name} is 64 hexadecimal digits.", field)
        if isinstance(item.byte_size, bool) or not isinstance(item.byte_size, int) or not 1 <= item.byte_size <= MAX_BYTES:
            raise DomainError(code, f"The size of {name} is 1 byte to 1 TiB.", field)
        names.add(name)
        checked.append(Document(name=name, sha256=sha, byte_size=item.byte_size))
    return checked


@dataclass(frozen=True)
class Attachment:
    """A document whose bytes the platform keeps (an application's): its name, sha256 and size
    (a Document, computed once from the bytes), its media type and its bytes."""

    document: Document
    media_type: str
    content: bytes

    @classmethod
    def of(cls, name: str, media_type: str, content: bytes) -> "Attachment":
        return cls(Document(name=name, sha256=hashlib.sha256(content).hexdigest(), byte_size=len(content)),
                   media_type, content)


def check_attachment(attachment: Attachment, *, named: list[Document], field: str, too_large: Code,
                     invalid: Code) -> list[Document]:
    """Check a non-empty attachment against the ones `named` before it (names distinct across them):
    at most MAX_ATTACHMENT_BYTES, a short media type, a valid document. Returns the documents named
    so far, this one included."""
    if len(attachment.content) > MAX_ATTACHMENT_BYTES:
        raise DomainError(too_large, f"A document has at most {MAX_ATTACHMENT_BYTES} bytes.", field)
    if len(attachment.media_type) > MAX_MEDIA_TYPE:
        raise DomainError(invalid, f"A media type has at most {MAX_MEDIA_TYPE} characters.", field)
    return check_documents([*named, attachment.document], field=field, code=invalid)


def canonical_bytes(document: dict) -> bytes:
    """The canonical JSON of a signed or hashed document (sorted keys, no spaces, UTF-8): the bytes
    a certificate's signature and a report's sha256 are taken over."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
