"""Carbon-neutral certificates (碳中和证明, art. 19): numbered, signed, publicly verifiable, revocable.

A certificate is issued in the transaction that retires its tonnes (the approval of the application,
review.py). The regulator may later revoke it with a reason (review.py); the signed bytes never
change, and verification then says REVOKED and why. What it says is one canonical JSON
document (sorted keys, no whitespace, UTF-8, no ASCII escaping, integers and strings only):

    number, verification_code, verification_url, retirement_id, beneficiary, subject {kind,
    description}, period {start, end}, footprint {kg, t}, tonnes_retired, serials [{label,
    project_code, vintage, first, last, quantity}], projects [{code, title, vintages}],
    issued_at, issued_on (Asia/Shanghai), issuer, key_id, type, version

The platform signs exactly those bytes with Ed25519 and stores bytes, signature and key id. The
public key of every key that ever signed is kept in `cer_signing_keys` under its key id (the first
16 hex digits of the sha256 of the raw 32-byte public key), so certificates signed before a key
rotation still verify. Anyone can check a certificate offline with the published public key.

The signing key comes from TANPUHUI_CERTIFICATE_SIGNING_KEY (PEM, or base64 of the raw 32-byte
seed or of PKCS#8 DER) or, on the embedded default, from `<data dir>/certificate-signing.key`,
generated once with mode 0600."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import BUSINESS_TZ, Clock
from core.documents import canonical_bytes
from core.errors import NotFound
from core.keyset import Page, keyset_page
from neutrality.cers import blocks, verification
from neutrality.cers.models import Block, BlockState, Project
from neutrality.retirement.models import Certificate, CertificateRevocation, Retirement, SigningKey

NUMBER_PREFIX = "SZCN"
ISSUER = "Tanpuhui 碳普惠平台 (Shenzhen Carbon Inclusion)"
DOCUMENT_TYPE = "tanpuhui.carbon_neutral_certificate"
DOCUMENT_VERSION = 1
KEY_FILE = "certificate-signing.key"
# Crockford's base32: no I, L, O or U, so nothing is misread when typed from paper
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12  # 60 bits
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


class InvalidSigningKey(ValueError):
    """TANPUHUI_CERTIFICATE_SIGNING_KEY (or the key file) is not an Ed25519 private key."""


# --- the signing key -----------------------------------------------------------------------------------


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(raw_public: bytes) -> str:
    """The first 16 hex digits of the sha256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return raw_public_key(self.private_key.public_key())

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    @classmethod
    def generate(cls) -> "Signer":
        return cls(Ed25519PrivateKey.generate())


def parse_private_key(value: str | bytes) -> Ed25519PrivateKey:
    """PEM (PKCS#8), or base64 of the raw 32-byte seed or of PKCS#8 DER."""
    data = value.encode() if isinstance(value, str) else value
    data = data.strip()
    try:
        if data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            raw = base64.b64decode(data, validate=True)
            key = (Ed25519PrivateKey.from_private_bytes(raw) if len(raw) == 32
                   else serialization.load_der_private_key(raw, password=None))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidSigningKey(f"not a readable private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidSigningKey("the certificate signing key must be an Ed25519 key")
    return key


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _key_from_file(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        return parse_private_key(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return parse_private_key(path.read_bytes())
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_pem(key))
    return key


_signers: dict[tuple, Signer] = {}
_signers_lock = threading.Lock()


def signer_from_settings(settings) -> Signer:
    """The key this process signs with (read once per key source)."""
    configured = getattr(settings, "certificate_signing_key", None)
    source = ("env", configured) if configured else ("file", str(Path(settings.data_dir) / KEY_FILE))
    with _signers_lock:
        signer = _signers.get(source)
        if signer is None:
            key = parse_private_key(configured) if configured else _key_from_file(Path(source[1]))
            signer = _signers[source] = Signer(key)
        return signer


async def register_key(*, session: AsyncSession, clock: Clock, signer: Signer) -> None:
    """Publish the signer's public key (once); a new key marks the keys before it as rotated out."""
    now = clock.now()
    inserted = (await session.execute(
        insert(SigningKey).values(key_id=signer.key_id, public_key=signer.public_key, first_used_at=now)
        .on_conflict_do_nothing().returning(SigningKey.key_id))).scalar_one_or_none()
    if inserted is not None:
        await session.execute(update(SigningKey).where(SigningKey.key_id != signer.key_id,
                                                       SigningKey.retired_at.is_(None)).values(retired_at=now))


async def signing_keys(*, session: AsyncSession) -> list[SigningKey]:
    return list((await session.scalars(select(SigningKey).order_by(SigningKey.first_used_at, SigningKey.key_id))).all())


# --- the canonical document ----------------------------------------------------------------------------


def tonnes_text(kg: int) -> str:
    """Kilograms as exact tonnes, e.g. 12345 -> "12.345", 13000 -> "13"."""
    whole, rest = divmod(kg, 1000)
    return f"{whole}.{rest:03d}".rstrip("0").rstrip(".") if rest else str(whole)


def new_verification_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(value: str) -> str:
    """As a person may type it: any case, with spaces or dashes, O for 0 and I or L for 1."""
    return "".join(ch for ch in value.upper() if ch not in " -").translate(_READ_AS)


def verification_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/certificates/{code}"


def pdf_url(base_url: str, code: str) -> str:
    return verification_url(base_url, code) + ".pdf"


@dataclass(frozen=True)
class SerialRange:
    project_id: uuid.UUID
    project_code: str
    vintage: int
    first: int
    last: int

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1

    @property
    def label(self) -> str:
        return blocks.serial_label(self.project_code, self.vintage, self.first, self.last)


def merge_ranges(ranges: list[SerialRange]) -> list[SerialRange]:
    """Sorted, with touching ranges of one project and vintage joined (a split block reads as one)."""
    merged: list[SerialRange] = []
    for r in sorted(ranges, key=lambda r: (r.project_code, r.vintage, r.first)):
        last = merged[-1] if merged else None
        if last and (last.project_id, last.vintage) == (r.project_id, r.vintage) and r.first == last.last + 1:
            merged[-1] = SerialRange(last.project_id, last.project_code, last.vintage, last.first, r.last)
        else:
            merged.append(r)
    return merged


def build_document(*, number: str, code: str, base_url: str, retirement: Retirement, ranges: list[SerialRange],
                   projects: dict[uuid.UUID, Project], issued_at: datetime, key_id: str) -> dict:
    vintages: dict[uuid.UUID, set[int]] = {}
    for r in ranges:
        vintages.setdefault(r.project_id, set()).add(r.vintage)
    return {
        "type": DOCUMENT_TYPE,
        "version": DOCUMENT_VERSION,
        "number": number,
        "verification_code": code,
        "verification_url": verification_url(base_url, code),
        "retirement_id": str(retirement.id),
        "beneficiary": retirement.beneficiary_name,
        "subject": {"kind": retirement.subject_kind, "description": retirement.subject},
        "period": {"start": retirement.period_start.isoformat(), "end": retirement.period_end.isoformat()},
        "footprint": {"kg": retirement.footprint_kg, "t": tonnes_text(retirement.footprint_kg)},
        "tonnes_retired": retirement.tonnes,
        "serials": [{"label": r.label, "project_code": r.project_code, "vintage": r.vintage, "first": r.first,
                     "last": r.last, "quantity": r.quantity} for r in ranges],
        "projects": [{"code": projects[pid].code, "title": projects[pid].title, "vintages": sorted(vs)}
                     for pid, vs in sorted(vintages.items(), key=lambda kv: projects[kv[0]].code)],
        "issued_at": issued_at.isoformat(),
        "issued_on": issued_at.astimezone(BUSINESS_TZ).date().isoformat(),
        "issuer": ISSUER,
        "key_id": key_id,
    }


async def issue_certificate(*, session: AsyncSession, clock: Clock, signer: Signer, public_base_url: str,
                            retirement: Retirement, ranges: list[SerialRange]) -> Certificate:
    """Number, sign and store the certificate of a retirement, in the retirement's transaction."""
    now = clock.now()
    sequence = int(await session.scalar(text("SELECT nextval('cer_certificate_number_seq')")))
    number = f"{NUMBER_PREFIX}-{now.astimezone(BUSINESS_TZ).year}-{sequence:06d}"
    code = new_verification_code()
    projects = {p.id: p for p in (await session.scalars(
        select(Project).where(Project.id.in_({r.project_id for r in ranges})))).all()}
    document = build_document(number=number, code=code, base_url=public_base_url, retirement=retirement,
                              ranges=merge_ranges(ranges), projects=projects, issued_at=now, key_id=signer.key_id)
    data = canonical_bytes(document)
    await register_key(session=session, clock=clock, signer=signer)
    certificate = Certificate(number=number, verification_code=code, retirement_id=retirement.id,
                              holder_id=retirement.holder_id, canonical=data, signature=signer.sign(data),
                              key_id=signer.key_id, issued_at=now)
    session.add(certificate)
    await session.flush()
    return certificate


# --- verification --------------------------------------------------------------------------------------


def signature_valid(public_key: bytes | None, data: bytes, signature: bytes) -> bool:
    if public_key is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
        return True
    except (InvalidSignature, ValueError):
        return False


@dataclass(frozen=True)
class Verification:
    certificate: Certificate
    document: dict  # the signed fields, as signed (read back from the canonical bytes)
    signature_valid: bool
    key_known: bool
    public_key: bytes | None  # the published key of the certificate's key id
    live_serials: list[str]  # the retirement's serial ranges as the live blocks record them now
    serials_match: bool
    revocation: CertificateRevocation | None  # the regulator revoked it (why, when)
    # art. 32: the retired tonnes rest on a report of a verifier found to have reported falsely;
    # they stay retired, and the certificate says so
    flags: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.signature_valid and self.serials_match and self.revocation is None

    @property
    def status(self) -> str:
        """REVOKED (the regulator revoked it), VALID (signature and serials check) or INVALID."""
        return "REVOKED" if self.revocation else ("VALID" if self.valid else "INVALID")


def looks_like_number(value: str) -> bool:
    return value.strip().upper().startswith(NUMBER_PREFIX + "-")


async def find_certificate(*, session: AsyncSession, number_or_code: str) -> Certificate | None:
    value = (number_or_code or "").strip()
    if not value or len(value) > 60:
        return None
    if looks_like_number(value):
        condition = Certificate.number == value.upper()
    else:
        code = normalise_code(value)
        if len(code) != CODE_LENGTH or set(code) - set(CODE_ALPHABET):
            return None
        condition = Certificate.verification_code == code
    return (await session.scalars(select(Certificate).where(condition))).one_or_none()


async def live_ranges(*, session: AsyncSession, retirement_ids, state: BlockState) -> dict[uuid.UUID, list[SerialRange]]:
    """The serial ranges the live blocks of `state` record for each retirement (IN_REVIEW: held for its review;
    RETIRED: retired for it)."""
    ids = list(set(retirement_ids))
    found: dict[uuid.UUID, list[SerialRange]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await session.execute(
        select(Block.retirement_id, Block.project_id, Project.code, Block.vintage, Block.first_serial,
               Block.last_serial)
        .join(Project, Project.id == Block.project_id)
        .where(Block.retirement_id.in_(ids), Block.state == state.value, Block.ended_at.is_(None)))
    for retirement_id, *rest in rows:
        found[retirement_id].append(SerialRange(*rest))
    return {i: merge_ranges(r) for i, r in found.items()}


async def live_retired_ranges(*, session: AsyncSession, retirement_id: uuid.UUID) -> list[SerialRange]:
    return (await live_ranges(session=session, retirement_ids=[retirement_id], state=BlockState.RETIRED))[retirement_id]


def parse_document(data: bytes) -> dict:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


async def verify_certificate(*, session: AsyncSession, number_or_code: str) -> Verification:
    """The public fields, whether the signature checks against the stored public key of its key id,
    and the retired serials as the live blocks record them. Unknown: NotFound."""
    certificate = await find_certificate(session=session, number_or_code=number_or_code)
    if certificate is None:
        raise NotFound(message="No certificate has this number or verification code.", field="numberOrCode")
    key = await session.get(SigningKey, certificate.key_id)
    document = parse_document(certificate.canonical)
    valid = signature_valid(key.public_key if key else None, certificate.canonical, certificate.signature)
    ranges = await live_retired_ranges(session=session, retirement_id=certificate.retirement_id)
    live = [r.label for r in ranges]
    by_project = await verification.flags(session=session, project_ids=sorted({r.project_id for r in ranges}, key=str))
    flags = list(dict.fromkeys(reason for reasons in by_project.values() for reason in reasons))
    signed = [s.get("label") for s in document.get("serials", []) if isinstance(s, dict)]
    revocation = await session.get(CertificateRevocation, certificate.id)
    return Verification(certificate=certificate, document=document, signature_valid=valid, key_known=key is not None,
                        public_key=key.public_key if key else None, live_serials=live,
                        serials_match=signed == live and bool(live), revocation=revocation, flags=flags)


# --- the holder's certificates -------------------------------------------------------------------------


async def holder_certificates(*, session: AsyncSession, holder_id: uuid.UUID, first: int | None,
                              after: str | None) -> Page:
    stmt = select(Certificate).where(Certificate.holder_id == holder_id)
    return await keyset_page(session, stmt, keys=[Certificate.issued_at, Certificate.number], first=first, after=after,
                             descending=True)


async def holder_certificate(*, session: AsyncSession, holder_id: uuid.UUID, number: str) -> Certificate:
    found = await find_certificate(session=session, number_or_code=number)
    if found is None or found.holder_id != holder_id:
        raise NotFound(message="No certificate of yours has this number.", field="number")
    return found


async def certificates_for_retirements(*, session: AsyncSession, retirement_ids) -> dict[uuid.UUID, Certificate]:
    ids = list(set(retirement_ids))
    if not ids:
        return {}
    rows = await session.scalars(select(Certificate).where(Certificate.retirement_id.in_(ids)))
    return {c.retirement_id: c for c in rows}


