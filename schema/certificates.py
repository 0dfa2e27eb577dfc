"""GraphQL types of carbon neutrality: applications and their review (art. 19), retirements (注销), the auto-approval
policy, and carbon-neutral certificates (碳中和证明) with their revocation."""

from __future__ import annotations

import base64
import enum
from datetime import date, datetime

import strawberry
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.errors import CoreCode
from neutrality.errors import NeutralityCode, RegistryCode
from neutrality.retirement import certificates as certs
from neutrality.retirement import models
from schema.errors import MutationError, error_codes
from schema.scalars import Long

NeutralitySubjectKind = strawberry.enum(
    models.SubjectKind, name="NeutralitySubjectKind",
    description="What is neutralised: an EVENT, a PRODUCT, or the organisation for a year (ORGANISATION_YEAR).")


NeutralityApplicationStatus = strawberry.enum(
    models.RetirementStatus, name="NeutralityApplicationStatus",
    description="PENDING_REVIEW: the tonnes are held for review. APPROVED: retired and certified (by a reviewer, or at "
                "once under the auto-approval policy). REJECTED: the tonnes went back to the holder, same serials.")


@strawberry.enum(description="VALID: the signature and serials check and it is not revoked. REVOKED: the regulator "
                             "revoked it (see revocation). INVALID: the signature or the serials do not check.")
class CertificateStatus(enum.Enum):
    VALID = "VALID"
    REVOKED = "REVOKED"
    INVALID = "INVALID"


@strawberry.type(description="A contiguous range of retired serial numbers of one project and vintage.")
class CertificateSerialRange:
    label: str = strawberry.field(description="SZCER-<project>-<vintage>-<first>-<last>")
    project_code: str
    vintage: int
    first_serial: Long
    last_serial: Long
    quantity: Long

    @classmethod
    def from_signed(cls, item: dict) -> "CertificateSerialRange":
        return cls(label=str(item.get("label", "")), project_code=str(item.get("project_code", "")),
                   vintage=int(item.get("vintage", 0)), first_serial=int(item.get("first", 0)),
                   last_serial=int(item.get("last", 0)), quantity=int(item.get("quantity", 0)))


@strawberry.type(description="A project whose CERs the certificate retired, with the vintages used.")
class CertificateProject:
    code: str
    title: str
    vintages: list[int]


def _date(value) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except (TypeError, ValueError):
        return None


@strawberry.type(description="A carbon-neutral certificate (碳中和证明). Every field below `number` is read from the "
                             "signed canonical JSON (`canonicalJson`), so it shows exactly what was signed.")
class CarbonNeutralCertificate:
    number: str = strawberry.field(description="SZCN-<year>-<sequence>")
    verification_code: str = strawberry.field(description="12 characters of Crockford base32, printed and in the QR.")
    verification_url: str
    pdf_url: str = strawberry.field(description="The certificate as a PDF (Chinese, with the QR code); no sign-in needed.")
    beneficiary_name: str
    subject_kind: NeutralitySubjectKind | None
    subject: str
    period_start: date | None
    period_end: date | None
    footprint_kg: Long
    footprint_tonnes: str = strawberry.field(description="The footprint in tCO2e as an exact decimal, e.g. \"12.345\".")
    tonnes_retired: Long
    serial_ranges: list[CertificateSerialRange]
    projects: list[CertificateProject]
    issued_on: date | None = strawberry.field(description="The date of issue in Asia/Shanghai.")
    issued_at: datetime
    issuer: str
    key_id: str = strawberry.field(description="Which signing key: first 16 hex of sha256 of its raw public key.")
    signature: str = strawberry.field(description="Ed25519 signature of canonicalJson's UTF-8 bytes, base64.")
    canonical_json: str = strawberry.field(
        description="The signed document: JSON with sorted keys, no whitespace, UTF-8, non-ASCII unescaped.")

    @classmethod
    def from_row(cls, row: models.Certificate, base_url: str) -> "CarbonNeutralCertificate":
        doc = certs.parse_document(row.canonical)
        subject = doc.get("subject") or {}
        period = doc.get("period") or {}
        footprint = doc.get("footprint") or {}
        try:
            kind = models.SubjectKind(subject.get("kind"))
        except ValueError:
            kind = None
        return cls(
            number=row.number, verification_code=row.verification_code,
            verification_url=str(doc.get("verification_url") or certs.verification_url(base_url, row.verification_code)),
            pdf_url=certs.pdf_url(base_url, row.verification_code),
            beneficiary_name=str(doc.get("beneficiary", "")), subject_kind=kind,
            subject=str(subject.get("description", "")), period_start=_date(period.get("start")),
            period_end=_date(period.get("end")), footprint_kg=int(footprint.get("kg", 0)),
            footprint_tonnes=str(footprint.get("t", "")), tonnes_retired=int(doc.get("tonnes_retired", 0)),
            serial_ranges=[CertificateSerialRange.from_signed(s) for s in doc.get("serials", []) if isinstance(s, dict)],
            projects=[CertificateProject(code=str(p.get("code", "")), title=str(p.get("title", "")),
                                         vintages=[int(v) for v in p.get("vintages", [])])
                      for p in doc.get("projects", []) if isinstance(p, dict)],
            issued_on=_date(doc.get("issued_on")), issued_at=row.issued_at, issuer=str(doc.get("issuer", "")),
            key_id=row.key_id, signature=base64.b64encode(row.signature).decode(),
            canonical_json=row.canonical.decode("utf-8", errors="replace"))


@strawberry.type(description="An application for carbon neutrality and, once approved, its retirement (注销) of CERs "
                             "(art. 19). Approved: final, the tonnes never move again.")
class CerRetirement:
    id: strawberry.ID
    status: NeutralityApplicationStatus
    beneficiary_name: str
    subject_kind: NeutralitySubjectKind
    subject: str
    footprint_kg: Long
    footprint_tonnes: str
    tonnes: Long = strawberry.field(description="Whole tonnes held and, once approved, retired: at least the footprint "
                                                "rounded up.")
    period_start: date
    period_end: date
    applied_at: datetime
    retired_at: datetime | None = strawberry.field(description="null until approved.")
    decided_at: datetime | None
    decision_reason: str | None = strawberry.field(description="Why it was rejected (or the approver's note).")
    approved_by_policy_version: int | None = strawberry.field(
        description="Approved at once under this version of the regulator's auto-approval policy; null if a reviewer "
                    "decided.")
    certificate: CarbonNeutralCertificate | None

    @classmethod
    def from_row(cls, row: models.Retirement, certificate: models.Certificate | None,
                 base_url: str, policy_version: int | None = None) -> "CerRetirement":
        return cls(id=strawberry.ID(str(row.id)), status=models.RetirementStatus(row.status),
                   beneficiary_name=row.beneficiary_name,
                   subject_kind=models.SubjectKind(row.subject_kind), subject=row.subject,
                   footprint_kg=row.footprint_kg, footprint_tonnes=certs.tonnes_text(row.footprint_kg),
                   tonnes=row.tonnes, period_start=row.period_start, period_end=row.period_end,
                   applied_at=row.applied_at, retired_at=row.retired_at, decided_at=row.decided_at,
                   decision_reason=row.decision_reason, approved_by_policy_version=policy_version,
                   certificate=CarbonNeutralCertificate.from_row(certificate, base_url) if certificate else None)


@strawberry.type(description="A pending application as a neutrality reviewer sees it: who applies and the exact "
                             "serials held for it.")
class NeutralityApplication:
    retirement: CerRetirement
    applicant_name: str
    held_serials: list[str] = strawberry.field(description="The serial ranges held IN_REVIEW for it: approval retires "
                                                           "exactly these, rejection releases exactly these.")


@strawberry.type(description="The regulator's auto-approval policy for neutrality applications, one version of it.")
class NeutralityAutoApprovalPolicy:
    version: int
    max_tonnes: Long | None = strawberry.field(
        description="An application of at most this many tonnes by an organisation in good standing (not suspended, "
                    "no certificate ever revoked) is approved at once. null: off, every application is reviewed.")
    note: str | None
    set_at: datetime

    @classmethod
    def from_row(cls, row: models.NeutralityPolicy) -> "NeutralityAutoApprovalPolicy":
        return cls(version=row.version, max_tonnes=row.max_tonnes, note=row.note, set_at=row.set_at)


@strawberry.type(description="The regulator's revocation of a certificate. The signed certificate is unchanged.")
class CertificateRevocation:
    reason: str
    revoked_at: datetime


@strawberry.type(description="The public check of a certificate: its signed fields, whether the signature verifies "
                             "with the published key of its key id, and the retired serials as recorded now.")
class CertificateVerification:
    certificate: CarbonNeutralCertificate
    status: CertificateStatus
    valid: bool = strawberry.field(description="The signature verifies, the live serials match the signed ones, and "
                                               "the certificate is not revoked.")
    revocation: CertificateRevocation | None = strawberry.field(description="Why and when it was revoked, if it was.")
    signature_valid: bool
    key_known: bool = strawberry.field(description="The key id is one of the published signing keys.")
    serials_match: bool = strawberry.field(
        description="The serial ranges retired for this certificate now are exactly those it signed.")
    retired_serials: list[str] = strawberry.field(description="The serial ranges as the live blocks record them now.")
    flags: list[str] = strawberry.field(description="Art. 32: the retired tonnes rest on a report of a verifier found "
                                                    "to have reported falsely (the recorded reasons). They stay "
                                                    "retired; the certificate is not revoked by this alone.")

    @classmethod
    def from_result(cls, result: certs.Verification, base_url: str) -> "CertificateVerification":
        revoked = result.revocation
        return cls(certificate=CarbonNeutralCertificate.from_row(result.certificate, base_url),
                   status=CertificateStatus(result.status),
                   valid=result.valid,
                   revocation=CertificateRevocation(reason=revoked.reason, revoked_at=revoked.revoked_at)
                   if revoked else None,
                   signature_valid=result.signature_valid, key_known=result.key_known,
                   serials_match=result.serials_match, retired_serials=result.live_serials, flags=list(result.flags))


@strawberry.type(description="A public key that signs (or signed) carbon-neutral certificates.")
class CertificateSigningKey:
    key_id: str
    algorithm: str
    public_key: str = strawberry.field(description="The raw 32-byte Ed25519 public key, base64.")
    public_key_pem: str = strawberry.field(description="The same key as a PEM SubjectPublicKeyInfo.")
    first_used_at: datetime | None = strawberry.field(description="null: the current key has signed nothing yet.")
    retired_at: datetime | None = strawberry.field(description="When a newer key replaced it; it still verifies.")
    current: bool = strawberry.field(description="The key this server signs new certificates with.")

    @classmethod
    def from_key(cls, raw: bytes, *, first_used_at: datetime | None, retired_at: datetime | None,
                 current: bool) -> "CertificateSigningKey":
        pem = Ed25519PublicKey.from_public_bytes(raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        return cls(key_id=certs.key_id_of(raw), algorithm="Ed25519", public_key=base64.b64encode(raw).decode(),
                   public_key_pem=pem, first_used_at=first_used_at, retired_at=retired_at, current=current)


# --- inputs ------------------------------------------------------------------------------------------


@strawberry.input(description="An exact range of serial numbers of one project and vintage.")
class CerSerialRangeInput:
    first: Long
    last: Long


@strawberry.input
class ApplyForNeutralityInput:
    beneficiary_name: str = strawberry.field(description="The public beneficiary, 1 to 200 characters.")
    subject_kind: NeutralitySubjectKind
    subject: str = strawberry.field(description="What is neutralised, e.g. \"2026 深圳低碳论坛\", 1 to 300 characters.")
    footprint_kg: Long = strawberry.field(description="The footprint in kilograms CO2e (12.345 t = 12345).")
    period_start: date
    period_end: date = strawberry.field(description="At most 366 days after periodStart, and within a year from today.")
    idempotency_key: str
    tonnes: Long | None = strawberry.field(
        default=None, description="Retire more than the footprint rounded up to whole tonnes (the default).")
    project_id: strawberry.ID | None = strawberry.field(default=None, description="Only tonnes of this project.")
    vintage: int | None = strawberry.field(default=None, description="Only tonnes of this vintage.")
    serial_range: CerSerialRangeInput | None = strawberry.field(
        default=None, description="Exactly these serials (with projectId and vintage); the tonnes are its size.")


@strawberry.input
class ApproveNeutralityApplicationInput:
    retirement_id: strawberry.ID
    idempotency_key: str


@strawberry.input
class RejectNeutralityApplicationInput:
    retirement_id: strawberry.ID
    reason: str = strawberry.field(description="Why, shown to the applicant; required.")
    idempotency_key: str


@strawberry.input
class SetNeutralityAutoApprovalPolicyInput:
    max_tonnes: Long | None = strawberry.field(
        default=None, description="At most this many tonnes per application are approved at once for organisations in "
                                  "good standing; null switches auto-approval off.")
    note: str | None = None
    idempotency_key: str = strawberry.field(description="A retry with the same key gets the first answer and adds no "
                                                        "second version.")


@strawberry.input
class RevokeCertificateInput:
    number: str = strawberry.field(description="The certificate number (SZCN-...) or verification code.")
    reason: str = strawberry.field(description="Why, e.g. fraud; shown publicly on verification.")
    idempotency_key: str


# --- payloads ----------------------------------------------------------------------------------------

ApplyForNeutralityErrorCode = error_codes(
    "ApplyForNeutralityErrorCode", NeutralityCode.INVALID_BENEFICIARY, NeutralityCode.INVALID_SUBJECT,
    NeutralityCode.INVALID_FOOTPRINT, NeutralityCode.INVALID_PERIOD, NeutralityCode.TONNES_BELOW_FOOTPRINT,
    RegistryCode.INSUFFICIENT_TONNES, CoreCode.IDEMPOTENCY_KEY_REUSED, RegistryCode.PROJECT_FROZEN)


@strawberry.type
class ApplyForNeutralityError(MutationError):
    code: ApplyForNeutralityErrorCode


@strawberry.type(description="The application (PENDING_REVIEW, its tonnes held) and, if the auto-approval policy "
                             "approved it at once, its signed certificate.")
class ApplyForNeutralityPayload:
    retirement: CerRetirement | None = None
    certificate: CarbonNeutralCertificate | None = None
    errors: list[ApplyForNeutralityError] = strawberry.field(default_factory=list)


ApproveNeutralityApplicationErrorCode = error_codes(
    "ApproveNeutralityApplicationErrorCode", NeutralityCode.NOT_PENDING_REVIEW, NeutralityCode.OWN_APPLICATION,
    RegistryCode.INSUFFICIENT_TONNES, CoreCode.IDEMPOTENCY_KEY_REUSED, RegistryCode.PROJECT_FROZEN)


@strawberry.type
class ApproveNeutralityApplicationError(MutationError):
    code: ApproveNeutralityApplicationErrorCode


@strawberry.type(description="The retirement, now approved, and its signed certificate.")
class ApproveNeutralityApplicationPayload:
    retirement: CerRetirement | None = None
    certificate: CarbonNeutralCertificate | None = None
    errors: list[ApproveNeutralityApplicationError] = strawberry.field(default_factory=list)


RejectNeutralityApplicationErrorCode = error_codes(
    "RejectNeutralityApplicationErrorCode", NeutralityCode.NOT_PENDING_REVIEW, NeutralityCode.OWN_APPLICATION,
    NeutralityCode.REASON_REQUIRED, RegistryCode.INSUFFICIENT_TONNES, CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class RejectNeutralityApplicationError(MutationError):
    code: RejectNeutralityApplicationErrorCode


@strawberry.type(description="The application, now rejected; its tonnes are back in the holder's account.")
class RejectNeutralityApplicationPayload:
    retirement: CerRetirement | None = None
    errors: list[RejectNeutralityApplicationError] = strawberry.field(default_factory=list)


SetNeutralityAutoApprovalPolicyErrorCode = error_codes(
    "SetNeutralityAutoApprovalPolicyErrorCode", NeutralityCode.INVALID_POLICY, NeutralityCode.REASON_REQUIRED,
    CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class SetNeutralityAutoApprovalPolicyError(MutationError):
    code: SetNeutralityAutoApprovalPolicyErrorCode


@strawberry.type(description="The new version of the policy, now in force.")
class SetNeutralityAutoApprovalPolicyPayload:
    policy: NeutralityAutoApprovalPolicy | None = None
    errors: list[SetNeutralityAutoApprovalPolicyError] = strawberry.field(default_factory=list)


RevokeCertificateErrorCode = error_codes(
    "RevokeCertificateErrorCode", NeutralityCode.REASON_REQUIRED, NeutralityCode.CERTIFICATE_ALREADY_REVOKED,
    CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class RevokeCertificateError(MutationError):
    code: RevokeCertificateErrorCode


@strawberry.type(description="The certificate as signed (unchanged) and its revocation.")
class RevokeCertificatePayload:
    certificate: CarbonNeutralCertificate | None = None
    revocation: CertificateRevocation | None = None
    errors: list[RevokeCertificateError] = strawberry.field(default_factory=list)
