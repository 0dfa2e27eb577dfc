"""Small helpers every resolver module uses (a mutation runs through resolvers/runner.py)."""

from __future__ import annotations

import base64
import binascii
import uuid

from core.documents import MAX_ATTACHMENT_BYTES, Attachment
from core.errors import Code, DomainError, NotFound


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    """An id from a client; a malformed one is simply not found."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(message="Nothing has this id.", field=field) from None


def parse_optional_id(value: str | None) -> uuid.UUID | None:
    """An optional id filter from a client; a malformed one matches nothing."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return uuid.UUID(int=0)


def attachment_from_base64(file_name: str, media_type: str, content_base64: str, *, field: str, too_large: Code,
                           invalid: Code) -> Attachment:
    """An uploaded document's bytes: base64 of the largest attachment, and no more, is decoded."""
    if len(content_base64) > (MAX_ATTACHMENT_BYTES + 2) // 3 * 4 + 4:
        raise DomainError(too_large, f"A document has at most {MAX_ATTACHMENT_BYTES} bytes.", field)
    try:
        content = base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise DomainError(invalid, "contentBase64 is not base64.", field) from None
    return Attachment.of(file_name, media_type, content)
