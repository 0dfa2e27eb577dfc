"""The public page of a scenario's mark (标识, art. 27, 29), where the mark's QR code points (no sign-in):

- GET /scenarios/{mark number}   a plain HTML page for browsers (no script, nothing loaded: the QR code is
  inline SVG), or JSON otherwise: name, kind, district, the behaviours recorded there, the mark's
  number, validity and status (active, suspended, withdrawn, expired) with the regulator's reason.
  Nothing about the applicant, its address or documents.

Counts against the anonymous per-IP rate limit, like the certificate pages (server/certificates_http.py)."""

from __future__ import annotations

import html

import segno
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from scenarios import service
from scenarios.marks import page_url
from server.auth import anonymous_limit

KIND_NAMES = {"mall": "商场 Mall", "park": "公园 Park", "metro_line": "地铁线路 Metro line",
              "bus_route": "公交线路 Bus route", "campus": "校园 Campus", "office": "办公楼宇 Office",
              "community": "社区 Community", "public_institution": "公共机构 Public institution", "other": "其他 Other"}
DISTRICT_NAMES = {"futian": "福田区", "luohu": "罗湖区", "yantian": "盐田区", "nanshan": "南山区", "baoan": "宝安区",
                  "longgang": "龙岗区", "longhua": "龙华区", "pingshan": "坪山区", "guangming": "光明区",
                  "dapeng": "大鹏新区", "shenshan": "深汕特别合作区", "citywide": "跨区 Citywide"}
STATUS_NAMES = {"active": "有效 Active", "suspended": "已暂停 Suspended", "withdrawn": "已撤销 Withdrawn",
                "expired": "已过期 Expired"}


def scenario_json(found: service.PublicScenario, base_url: str) -> dict:
    return {"markNumber": found.mark_number, "name": found.name, "kind": found.kind, "district": found.district,
            "methodologyCodes": list(found.methodology_codes), "grantedAt": found.granted_at.isoformat(),
            "validUntil": found.valid_until.isoformat(), "status": found.status.upper(),
            "statusReason": found.status_reason, "pageUrl": page_url(base_url, found.mark_number)}


def _html_page(data: dict) -> str:
    e = lambda v: html.escape(str(v))  # noqa: E731
    verdict = STATUS_NAMES[data["status"].lower()]
    if data["statusReason"]:
        verdict += f" — {data['statusReason']}"
    rows = [("标识编号 Mark No.", data["markNumber"]), ("场景 Scenario", data["name"]),
            ("类型 Kind", KIND_NAMES.get(data["kind"], data["kind"])),
            ("所在区 District", DISTRICT_NAMES.get(data["district"], data["district"])),
            ("减碳行为 Behaviours", "、".join(data["methodologyCodes"])),
            ("授予 Granted", data["grantedAt"]), ("有效期至 Valid until", data["validUntil"])]
    body = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    qr = segno.make(data["pageUrl"], error="m").svg_inline(scale=4, title=data["markNumber"])
    return (f"<!doctype html><html lang='zh'><head><meta charset='utf-8'><meta name='viewport' "
            f"content='width=device-width'><title>碳普惠场景 {e(data['markNumber'])}</title></head><body>"
            f"<h1>碳普惠场景标识 Carbon-inclusion scenario mark</h1><p><strong>{e(verdict)}</strong></p>"
            f"<table>{body}</table><figure>{qr}<figcaption>{e(data['pageUrl'])}</figcaption></figure></body></html>")


def scenario_routes(services) -> list[Route]:
    async def page(request: Request) -> Response:
        refused = await anonymous_limit(services, request)
        if refused is not None:
            return refused
        async with services.session_factory() as session:
            found = await service.public_scenario(session=session, clock=services.clock,
                                                  number=request.path_params["number"])
        if found is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        data = scenario_json(found, services.settings.public_base_url)
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(_html_page(data))
        return JSONResponse(data)

    return [Route("/scenarios/{number}", page, methods=["GET"])]
