"""Carbon-neutral certificates: numbers and codes, the Ed25519 signature over the canonical JSON,
tampering, key rotation, the signing key's home, the PDF (Chinese font, QR code), public
verification by number and by code over GraphQL and plain HTTP, and the front-end contracts."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update

from neutrality.cers import blocks
from neutrality.cers.models import BlockState, MoveKind
from neutrality.retirement import certificates as certs
from neutrality.retirement.certificate_pdf import render_certificate_pdf
from neutrality.retirement.models import Certificate, SigningKey
from tests.neutrality.certificate_fixtures import (
    APPLY,
    BASE_URL,
    CERTIFICATE_CONTRACTS,
    KEYS,
    VERIFY,
    application,
    approve_through_api,
    holding,
    retire,
    reviewer_actor,
)
from tests.conftest import organisation, person, regulator, sign_in
from tests.neutrality.fixtures import accounts
from tests.api.test_frontend_contracts import PersistedClient

NUMBER = re.compile(r"^SZCN-2026-\d{6}$")
CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{12}$")


async def _apply(api, services, *, tonnes: int = 30, **overrides) -> tuple[object, dict]:
    org = await organisation(api)
    await holding(services, uuid.UUID(org.account_id), tonnes)
    data = (await api.data(APPLY, {"input": application(**overrides)}, token=org.token))["applyForNeutrality"]
    assert data["errors"] == [] and data["retirement"]["status"] == "PENDING_REVIEW", data
    # a reviewer approves it: retired and certified in one transaction (art. 19)
    checker = await reviewer_actor(api)
    approved = await approve_through_api(api, checker.token, data["retirement"]["id"])
    assert approved["errors"] == [], approved
    return org, approved["certificate"]


def _verify_offline(canonical: bytes, signature_b64: str, public_key_b64: str) -> bool:
    """What anyone can do with the published key, without the platform's code."""
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64))
    try:
        key.verify(base64.b64decode(signature_b64), canonical)
        return True
    except Exception:
        return False


async def test_the_certificate_is_signed_over_its_canonical_json(api, services):
    _, cert = await _apply(api, services)
    assert NUMBER.match(cert["number"]) and CODE.match(cert["verificationCode"])
    assert cert["verificationUrl"] == f"http://127.0.0.1:8000/certificates/{cert['verificationCode']}"
    assert cert["pdfUrl"] == cert["verificationUrl"] + ".pdf"
    canonical = cert["canonicalJson"].encode("utf-8")
    document = json.loads(canonical)
    # sorted keys, no whitespace, UTF-8 with the Chinese as it is
    assert canonical == json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert "深圳湾零碳科技有限公司".encode() in canonical
    assert document["number"] == cert["number"] and document["verification_code"] == cert["verificationCode"]
    assert document["footprint"] == {"kg": 12_345, "t": "12.345"} and document["tonnes_retired"] == 13
    assert document["subject"] == {"kind": "event", "description": "2026 深圳低碳发展论坛"}
    assert document["period"] == {"start": "2026-02-27", "end": "2026-02-28"}
    assert document["issued_on"] == "2026-03-02" and document["key_id"] == cert["keyId"]
    assert [s["label"] for s in document["serials"]] == [s["label"] for s in cert["serialRanges"]]
    assert document["verification_url"] == cert["verificationUrl"]

    [key] = (await api.data(KEYS))["certificateSigningKeys"]
    assert key["current"] and key["algorithm"] == "Ed25519" and key["retiredAt"] is None
    raw = base64.b64decode(key["publicKey"])
    assert key["keyId"] == cert["keyId"] == hashlib.sha256(raw).hexdigest()[:16]
    pem_key = serialization.load_pem_public_key(key["publicKeyPem"].encode())
    assert pem_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
    assert _verify_offline(canonical, cert["signature"], key["publicKey"])
    assert not _verify_offline(canonical.replace(b"12.345", b"1.345"), cert["signature"], key["publicKey"])


async def test_a_tampered_certificate_fails_verification(api, services):
    _, cert = await _apply(api, services)
    ok = (await api.data(VERIFY, {"v": cert["number"]}))["verifyCertificate"]
    assert ok["valid"] and ok["signatureValid"] and ok["keyKnown"] and ok["serialsMatch"]
    async with services.session_factory() as session, session.begin():
        row = (await session.scalars(select(Certificate).where(Certificate.number == cert["number"]))).one()
        tampered = row.canonical.replace("深圳湾零碳科技有限公司".encode(), "另一家公司".encode())
        await session.execute(update(Certificate).where(Certificate.id == row.id).values(canonical=tampered))
    bad = (await api.data(VERIFY, {"v": cert["number"]}))["verifyCertificate"]
    assert bad["certificate"]["beneficiaryName"] == "另一家公司"
    assert (bad["valid"], bad["signatureValid"], bad["keyKnown"]) == (False, False, True)
    async with services.session_factory() as session, session.begin():
        await session.execute(update(Certificate).where(Certificate.number == cert["number"])
                              .values(canonical=row.canonical, signature=bytes(64)))
    assert (await api.data(VERIFY, {"v": cert["number"]}))["verifyCertificate"]["signatureValid"] is False
    async with services.session_factory() as session, session.begin():
        await session.execute(update(Certificate).where(Certificate.number == cert["number"])
                              .values(signature=row.signature, key_id="0" * 16))
    unknown_key = (await api.data(VERIFY, {"v": cert["number"]}))["verifyCertificate"]
    assert (unknown_key["signatureValid"], unknown_key["keyKnown"]) == (False, False)


async def test_serials_that_no_longer_match_are_flagged(api, services):
    org, cert = await _apply(api, services)
    # a (hypothetical) later act moves part of the retired range: the live blocks no longer match
    async with services.session_factory() as session, session.begin():
        await blocks.move(session=session, clock=services.clock, kind=MoveKind.CANCEL,
                          holder_id=uuid.UUID(org.account_id), from_state=BlockState.RETIRED,
                          to_state=BlockState.CANCELLED, quantity=3, serials=(11, 13), reference_kind="cancellation",
                          reference_id=uuid.uuid4())
    result = (await api.data(VERIFY, {"v": cert["verificationCode"]}))["verifyCertificate"]
    assert result["signatureValid"] and not result["serialsMatch"] and not result["valid"]
    assert result["retiredSerials"] == [cert["serialRanges"][0]["label"].replace("000000013", "000000010")]
    assert result["certificate"]["serialRanges"] == [{"label": cert["serialRanges"][0]["label"]}]


async def test_a_rotated_key_still_verifies_old_certificates_and_new_ones_use_the_new_key(api, services):
    old_key, new_key = certs.Signer.generate(), certs.Signer.generate()
    services.settings = dataclasses.replace(
        services.settings, certificate_signing_key=certs.private_key_pem(old_key.private_key).decode())
    _, old = await _apply(api, services)
    assert old["keyId"] == old_key.key_id
    # rotation: a new key (here base64 of the raw seed, the other accepted form)
    seed = new_key.private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                             serialization.NoEncryption())
    services.clock.advance(days=1)
    services.settings = dataclasses.replace(services.settings, certificate_signing_key=base64.b64encode(seed).decode())
    _, new = await _apply(api, services)
    assert new["keyId"] == new_key.key_id != old["keyId"]
    for cert in (old, new):
        result = (await api.data(VERIFY, {"v": cert["number"]}))["verifyCertificate"]
        assert result["valid"] and result["certificate"]["keyId"] == cert["keyId"]
    keys = (await api.data(KEYS))["certificateSigningKeys"]
    assert [(k["keyId"], k["current"], k["retiredAt"] is not None) for k in keys] == [
        (old_key.key_id, False, True), (new_key.key_id, True, False)]
    # and offline, each with its own published key
    by_id = {k["keyId"]: k["publicKey"] for k in keys}
    for cert in (old, new):
        assert _verify_offline(cert["canonicalJson"].encode(), cert["signature"], by_id[cert["keyId"]])
    assert not _verify_offline(old["canonicalJson"].encode(), old["signature"], by_id[new["keyId"]])


async def test_the_signing_key_is_generated_once_into_the_data_dir(services, tmp_path):
    settings = dataclasses.replace(services.settings, data_dir=tmp_path / "data", certificate_signing_key=None)
    signer = certs.signer_from_settings(settings)
    path = tmp_path / "data" / certs.KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert certs.parse_private_key(path.read_bytes()).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw) == signer.public_key
    assert certs.signer_from_settings(settings) is signer
    certs._signers.clear()  # a restart reads the same file
    assert certs.signer_from_settings(settings).key_id == signer.key_id
    for bad in ("not a key", base64.b64encode(b"short").decode(),
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"):
        with pytest.raises(certs.InvalidSigningKey):
            certs.parse_private_key(bad)


async def test_the_domain_signs_with_the_key_it_is_given(services):
    [holder] = await accounts(services, 1)
    await holding(services, holder, 20)
    signer = certs.Signer.generate()
    outcome = await retire(services, signer, holder)
    assert outcome.certificate.key_id == signer.key_id
    assert certs.signature_valid(signer.public_key, outcome.certificate.canonical, outcome.certificate.signature)
    document = json.loads(outcome.certificate.canonical)
    assert document["verification_url"] == f"{BASE_URL}/certificates/{outcome.certificate.verification_code}"
    async with services.session_factory() as session:
        assert (await session.get(SigningKey, signer.key_id)).public_key == signer.public_key
        result = await certs.verify_certificate(session=session, number_or_code=outcome.certificate.number)
    assert result.valid
    # codes as people type them: lower case, grouped, O for 0 and I or L for 1
    code = outcome.certificate.verification_code
    typed = "-".join(code[i:i + 4] for i in range(0, 12, 4)).lower().replace("0", "o").replace("1", "l")
    async with services.session_factory() as session:
        assert (await certs.verify_certificate(session=session, number_or_code=typed)).certificate.number == \
            outcome.certificate.number


async def test_the_pdf_has_the_chinese_font_the_fields_and_a_qr_code_of_the_verification_url(api, services, tmp_path):
    _, cert = await _apply(api, services)
    response = await api.client.get(f"/certificates/{cert['verificationCode']}.pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    pdf = response.content
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/STSong-Light" in pdf and b"/UniGB-UCS2-H" in pdf
    assert f"/URI ({cert['verificationUrl']})".encode() in pdf  # the QR code's link
    assert (await api.client.get(f"/certificates/{cert['number']}.pdf")).status_code == 404
    assert (await api.client.get("/certificates/ZZZZZZZZZZZZ.pdf")).status_code == 404
    path = tmp_path / "certificate.pdf"
    path.write_bytes(pdf)
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True,
                              text=True).stdout
        for expected in ("碳中和证明", "Carbon Neutrality Certificate", cert["number"], "深圳湾零碳科技有限公司",
                         "2026 深圳低碳发展论坛", "12.345", cert["serialRanges"][0]["label"], cert["keyId"],
                         cert["signature"][:40]):
            assert expected in text, expected
    if shutil.which("pdftoppm") and shutil.which("zbarimg"):
        subprocess.run(["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
                       check=True)
        [png] = list(tmp_path.glob("page*.png"))
        decoded = subprocess.run(["zbarimg", "-q", "--raw", str(png)], capture_output=True, text=True).stdout
        assert decoded.strip() == cert["verificationUrl"]


def test_long_serial_lists_flow_onto_more_pages():
    document = {"number": "SZCN-2026-000001", "verification_url": "https://x.example/certificates/ABC",
                "serials": [{"label": f"SZCER-P000001-2025-{i:09d}-{i:09d}", "quantity": 1} for i in range(1, 400, 2)]}
    pdf = render_certificate_pdf(document, bytes(64), "0" * 16)
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) >= 3


async def test_anyone_verifies_by_number_or_code_without_signing_in(api, services):
    _, cert = await _apply(api, services)
    by_number = (await api.data(VERIFY, {"v": cert["number"]}))["verifyCertificate"]
    by_code = (await api.data(VERIFY, {"v": cert["verificationCode"].lower()}))["verifyCertificate"]
    assert by_number == by_code and by_number["valid"]
    assert by_number["retiredSerials"] == [s["label"] for s in cert["serialRanges"]]
    for unknown in ("SZCN-2026-999999", "ZZZZZZZZZZZZ", "", "x" * 500, "SZCN-'; DROP TABLE x; --"):
        assert (await api.data(VERIFY, {"v": unknown}))["verifyCertificate"] is None, unknown
    # the plain HTTP address in the QR code: JSON with everything needed to verify offline
    response = await api.client.get(f"/certificates/{cert['verificationCode']}")
    assert response.status_code == 200
    data = response.json()
    assert data["valid"] and data["number"] == cert["number"] and data["keyId"] == cert["keyId"]
    assert _verify_offline(data["canonical"].encode(), data["signature"], data["publicKey"])
    assert data["certificate"]["beneficiary"] == "深圳湾零碳科技有限公司"
    assert (await api.client.get(f"/certificates/{cert['number']}")).json()["number"] == cert["number"]
    page = await api.client.get(f"/certificates/{cert['verificationCode']}", headers={"Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html") and "深圳湾零碳科技有限公司" in page.text
    assert (await api.client.get("/certificates/ZZZZZZZZZZZZ")).status_code == 404


async def test_html_escapes_what_the_holder_wrote(api, services):
    _, cert = await _apply(api, services, beneficiaryName="<script>alert(1)</script> 公司")
    page = await api.client.get(f"/certificates/{cert['verificationCode']}", headers={"Accept": "text/html"})
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


# --- the front-end contracts, by hash ------------------------------------------------------------


async def test_certificate_contracts_run_as_persisted_queries(api, services):
    c = PersistedClient(api)
    org = await organisation(api)
    reg = await holding(services, uuid.UUID(org.account_id), 50)
    regulator_actor = await regulator(api)
    someone = await person(api, "审核员 李审")
    granted = (await c.run("GrantRole", {"input": {"accountId": someone.account_id, "role": "NEUTRALITY_REVIEWER"}},
                           token=regulator_actor.token))["grantRole"]["grant"]
    assert granted["status"] == "ACTIVE" and granted["role"] == "NEUTRALITY_REVIEWER"
    checker = await sign_in(api, someone.login)
    assert (await c.run("ReviewerAutoApprovalPolicy", token=checker.token))["neutralityAutoApprovalPolicy"] is None

    # one application rejected (its tonnes come back), one approved by the reviewer
    rejected = (await c.run("ApplyForNeutrality", {"input": application(tonnes=15)}, token=org.token))["applyForNeutrality"]
    assert rejected["retirement"]["status"] == "PENDING_REVIEW" and rejected["certificate"] is None
    services.clock.advance(seconds=1)  # the queue is oldest first
    applied = (await c.run("ApplyForNeutrality", {"input": application(
        tonnes=20, projectId=str(reg.project_id), vintage=2025)}, token=org.token))["applyForNeutrality"]
    queue = (await c.run("NeutralityReviewQueue", {"first": 10}, token=checker.token))["neutralityReviewQueue"]["edges"]
    assert [e["node"]["retirement"]["id"] for e in queue] == [rejected["retirement"]["id"], applied["retirement"]["id"]]
    assert queue[1]["node"]["heldSerials"] == [f"SZCER-{reg.project_code}-2025-000000016-000000035"]
    no = (await c.run("RejectNeutralityApplication", {"input": {
        "retirementId": rejected["retirement"]["id"], "reason": "受益方名称与营业执照不符", "idempotencyKey": "r1"}},
        token=checker.token))["rejectNeutralityApplication"]["retirement"]
    assert no["status"] == "REJECTED" and no["decisionReason"] == "受益方名称与营业执照不符"
    yes = (await c.run("ApproveNeutralityApplication", {"input": {
        "retirementId": applied["retirement"]["id"], "idempotencyKey": "a1"}},
        token=checker.token))["approveNeutralityApplication"]
    cert = yes["certificate"]
    assert yes["retirement"]["status"] == "APPROVED" and cert["serialRanges"][0]["label"] == queue[1]["node"]["heldSerials"][0]
    assert applied["retirement"]["tonnes"] == 20 and cert["tonnesRetired"] == 20

    policy_input = {"input": {"maxTonnes": 5, "note": "小额自动核准", "idempotencyKey": "policy-1"}}
    policy = (await c.run("SetNeutralityAutoApprovalPolicy", policy_input,
                          token=regulator_actor.token))["setNeutralityAutoApprovalPolicy"]["policy"]
    assert policy["version"] == 1 and policy["maxTonnes"] == 5
    # a retry after a lost answer gets the first answer, not a second version
    again = (await c.run("SetNeutralityAutoApprovalPolicy", policy_input,
                         token=regulator_actor.token))["setNeutralityAutoApprovalPolicy"]["policy"]
    assert again == policy
    assert (await c.run("NeutralityAutoApprovalPolicy", token=regulator_actor.token))["neutralityAutoApprovalPolicy"] == policy
    mine = (await c.run("MyCertificates", {"first": 10}, token=org.token))["myCertificates"]["edges"]
    assert [e["node"]["number"] for e in mine] == [cert["number"]]
    retired = (await c.run("MyRetirements", {"first": 10}, token=org.token))["myRetirements"]["edges"]
    assert retired[0]["node"]["certificate"]["number"] == cert["number"]
    download = (await c.run("CertificateDownload", {"number": cert["number"]}, token=org.token))["certificate"]
    assert (await api.client.get(download["pdfUrl"].removeprefix("http://127.0.0.1:8000"))).status_code == 200
    verified = (await c.run("VerifyCertificate", {"numberOrCode": cert["verificationCode"]}))["verifyCertificate"]
    assert verified["valid"] and verified["certificate"]["number"] == cert["number"]
    keys = (await c.run("CertificateSigningKeys"))["certificateSigningKeys"]
    assert [k["keyId"] for k in keys] == [cert["keyId"]]
    revoked = (await c.run("RevokeCertificate", {"input": {"number": cert["number"], "reason": "虚假申报 (fraud)",
                                                           "idempotencyKey": "v1"}},
                           token=regulator_actor.token))["revokeCertificate"]
    assert revoked["revocation"]["reason"] == "虚假申报 (fraud)"
    verified = (await c.run("VerifyCertificate", {"numberOrCode": cert["number"]}))["verifyCertificate"]
    assert verified["status"] == "REVOKED" and verified["revocation"]["reason"] == "虚假申报 (fraud)"
    assert c.ran == CERTIFICATE_CONTRACTS, f"not exercised: {sorted(CERTIFICATE_CONTRACTS - c.ran)}"
