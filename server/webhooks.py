"""POST /webhooks/stripe: Stripe's signed events for CER purchases.

The signature is checked with the stripe library against the webhook secret (STRIPE_WEBHOOK_SECRET,
or the embedded emulator's generated one) before anything is read. A bad signature gets 400 and
one log line naming only the reason (never the payload, which may carry personal data). A
correctly signed event that is not shaped as Stripe's (not a JSON object, `data.object` or
`metadata` not an object, `amount` not an integer...) gets 400 `{"error": "malformed event"}`
and one warning with its event id only: nothing is recorded or applied. A well-formed verified
event is applied once (neutrality/market/settlement.py records every event id it handled):
- 200 when it was applied, was a duplicate, or is not ours to act on;
- 503 when its order is not visible yet (recorded as deferred: Stripe delivers it again, and the
  reconcile sweep settles it from Stripe's state if no delivery comes);
- 500 (masked) when applying it failed: nothing was recorded, so a redelivery applies it."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse

from neutrality.market import settlement
from neutrality.market.payments import BadSignature, MalformedEvent

log = logging.getLogger("tanpuhui.webhooks")

MAX_WEBHOOK_BYTES = 512 * 1024


def stripe_webhook(services):
    async def endpoint(request: Request) -> JSONResponse:
        payments = getattr(services, "payments", None)
        if payments is None:
            log.warning("stripe webhook received but payments are not configured")
            return JSONResponse({"error": "payments are not configured"}, status_code=503)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BYTES:
            return JSONResponse({"error": "payload too large"}, status_code=413)
        try:
            event = payments.verify_event(body, request.headers.get("stripe-signature"))
        except BadSignature as exc:
            log.warning("stripe webhook refused: bad signature", extra={"reason": str(exc)})
            return JSONResponse({"error": "bad signature"}, status_code=400)
        except MalformedEvent as exc:
            log.warning("stripe webhook refused: malformed event", extra={"event_id": exc.event_id})
            return JSONResponse({"error": "malformed event"}, status_code=400)
        if event.intent is None:
            # verified, but nothing we act on (another kind of object)
            return JSONResponse({"received": True, "outcome": "ignored"})
        result = await settlement.handle_payment_event(
            session_factory=services.session_factory, clock=services.clock, payments=payments,
            event_id=event.id, event_type=event.type, intent=event.intent)
        return JSONResponse({"received": True, "outcome": result.outcome}, status_code=503 if result.retry else 200)

    return endpoint
