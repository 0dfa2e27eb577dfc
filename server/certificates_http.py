"""Public certificate addresses, where the certificates' QR codes point (no sign-in):

- GET /certificates/{number or code}      the verification as JSON (or a small HTML page for browsers):
  the signed fields, the canonical JSON, signature, key id and public key (everything needed to
  verify offline), whether the signature checks, the retired serials as recorded now, and, if the
  regulator revoked it (art. 19), REVOKED with the reason and when;
- GET /certificates/{code}.pdf            the certificate as a PDF (by verification code only).

Both count against the anonymous per-IP rate limit, like anonymous GraphQL requests."""

from __future__ import annotations

import asyncio
import base64
import html
import logging

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from core.errors import DomainError
from neutrality.retirement import certificates as certs
from neutrality.retirement.certificate_pdf import render_certificate_pdf
from server.auth import anonymous_limit

log = logging.getLogger("tanpuhui.certificates")


def verification_json(result: certs.Verification, base_url: str) -> dict:
    cert = result.certificate
    return {
        "number": cert.number,
        "valid": result.valid,
        "status": result.status,
        "revocation": ({"reason": result.revocation.reason, "revokedAt": result.revocation.revoked_at.isoformat()}
                       if result.revocation else None),
        "signatureValid": result.signature_valid,
        "keyKnown": result.key_known,
        "serialsMatch": result.serials_match,
        "retiredSerials": result.live_serials,
        "flags": result.flags,
        "certificate": result.document,
        "canonical": cert.canonical.decode("utf-8", errors="replace"),
        "signature": base64.b64encode(cert.signature).decode(),
        "algorithm": "Ed25519",
        "keyId": cert.key_id,
        "publicKey": base64.b64encode(result.public_key).decode() if result.public_key else None,
        "pdfUrl": certs.pdf_url(base_url, cert.verification_code),
    }


def _html_page(data: dict) -> str:
    doc = data["certificate"]
    e = lambda v: html.escape(str(v))  # noqa: E731
    verdict = {"VALID": "有效 Valid", "REVOKED": "已撤销 REVOKED", "INVALID": "无效 NOT valid"}[data["status"]]
    if data["revocation"]:
        verdict += f" — {data['revocation']['reason']} ({data['revocation']['revokedAt']})"
    rows = [
        ("证书编号 Certificate No.", data["number"]),
        ("受益方 Beneficiary", doc.get("beneficiary", "")),
        ("中和对象 Subject", (doc.get("subject") or {}).get("description", "")),
        ("核算期 Period", f"{(doc.get('period') or {}).get('start', '')} – {(doc.get('period') or {}).get('end', '')}"),
        ("排放量 Footprint", f"{(doc.get('footprint') or {}).get('t', '')} tCO2e"),
        ("注销 Retired", f"{doc.get('tonnes_retired', '')} t"),
        ("签发日期 Issued", doc.get("issued_on", "")),
        ("签名 Signature", "✓" if data["signatureValid"] else "✗"),
        ("序列号一致 Serials match", "✓" if data["serialsMatch"] else "✗"),
    ]
    rows += [("核查存疑 Flagged (art. 32)", flag) for flag in data["flags"]]
    body = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    serials = "".join(f"<li><code>{e(s)}</code></li>" for s in data["retiredSerials"])
    return (f"<!doctype html><html lang='zh'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width'><title>碳中和证明 {e(data['number'])}</title></head><body>"
            f"<h1>碳中和证明 Carbon Neutrality Certificate</h1><p><strong>{e(verdict)}</strong></p>"
            f"<table>{body}</table><h2>已注销序列号 Retired serials</h2><ul>{serials}</ul>"
            f"<p><a href='{e(data['pdfUrl'])}'>PDF</a></p></body></html>")


def certificate_routes(services) -> list[Route]:
    if services.settings.certificate_signing_key:
        certs.signer_from_settings(services.settings)  # a configured key that cannot be read fails at start-up
    base_url = lambda: services.settings.public_base_url  # noqa: E731

    async def verification(request: Request) -> Response:
        refused = await anonymous_limit(services, request)
        if refused is not None:
            return refused
        async with services.session_factory() as session:
            try:
                result = await certs.verify_certificate(session=session, number_or_code=request.path_params["value"])
            except DomainError:
                return JSONResponse({"error": "not found", "valid": False}, status_code=404)
        data = verification_json(result, base_url())
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(_html_page(data))
        return JSONResponse(data)

    async def pdf(request: Request) -> Response:
        refused = await anonymous_limit(services, request)
        if refused is not None:
            return refused
        code = request.path_params["code"]
        if certs.looks_like_number(code):
            return JSONResponse({"error": "use the verification code"}, status_code=404)
        async with services.session_factory() as session:
            found = await certs.find_certificate(session=session, number_or_code=code)
        if found is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        content = await asyncio.to_thread(render_certificate_pdf, certs.parse_document(found.canonical),
                                          found.signature, found.key_id)
        return Response(content, media_type="application/pdf", headers={
            "Content-Disposition": f'inline; filename="{found.number}.pdf"', "Cache-Control": "public, max-age=300"})

    return [Route("/certificates/{code}.pdf", pdf, methods=["GET"]),
            Route("/certificates/{value}", verification, methods=["GET"])]
