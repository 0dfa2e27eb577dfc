"""The payments adapter: Stripe through the official `stripe` library, and nothing else.

One `Payments` object per process wraps a `stripe.StripeClient` (no global `stripe.api_key`), with
async calls over httpx, network retries and an idempotency key on every call that creates or
moves money (PaymentIntent creation, cancellation, refunds). Three modes, always shown to clients:

- LIVE: STRIPE_API_KEY is a live key (sk_live_/rk_live_): real money.
- TEST: STRIPE_API_KEY is a test key: Stripe's test mode, no money moves.
- TEST_EMULATOR: the embedded default without STRIPE_API_KEY (or STRIPE_API_BASE pointing away
  from api.stripe.com): localstripe on 127.0.0.1 (server/stripe_emulator.py), no money moves.

Webhooks are verified with the library's signature check (`StripeClient.construct_event`) against
STRIPE_WEBHOOK_SECRET (or the emulator's generated secret). Failures Stripe may recover from
(network, rate limit, 5xx, auth) raise PaymentProviderUnavailable; requests Stripe refuses for good
raise PaymentRefused. Client secrets are never stored or logged: they are fetched when needed."""

from __future__ import annotations

import enum
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import stripe

from core.errors import DomainError
from neutrality.errors import MarketCode

log = logging.getLogger("tanpuhui.payments")

# The webhook events the market acts on (and the only ones the emulator is asked to deliver).
HANDLED_EVENTS = ("payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled")
STRIPE_API_HOST = "api.stripe.com"
EMULATOR_API_KEY = "sk_test_tanpuhui_emulator"
# Marks our PaymentIntents, so events for other uses of the same Stripe account are left alone.
METADATA_PLATFORM = "tanpuhui-cer"


class PaymentMode(str, enum.Enum):
    TEST_EMULATOR = "test_emulator"
    TEST = "test"
    LIVE = "live"


class PaymentProviderUnavailable(DomainError):
    code = MarketCode.PAYMENT_PROVIDER_UNAVAILABLE.value


class PaymentRefused(DomainError):
    code = MarketCode.PAYMENT_REFUSED.value


class BadSignature(Exception):
    """The webhook's Stripe-Signature does not verify (or the payload is not an event)."""


class MalformedEvent(ValueError):
    """A correctly signed webhook event (or a PaymentIntent) that is not shaped as Stripe's are.
    The message names the part that is wrong, never its value; `event_id` is the event's id when it
    has a sane one (safe to log)."""

    def __init__(self, problem: str, event_id: str | None = None) -> None:
        super().__init__(problem)
        self.event_id = event_id


@dataclass(frozen=True)
class Intent:
    id: str
    status: str
    amount: int
    currency: str
    client_secret: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    failure_code: str | None = None

    @property
    def order_id(self) -> uuid.UUID | None:
        return order_id_of(self.metadata)


def order_id_of(metadata: Any) -> uuid.UUID | None:
    """The order a PaymentIntent was created for, if it is one of ours."""
    if not metadata or metadata.get("platform") != METADATA_PLATFORM:
        return None
    try:
        return uuid.UUID(str(metadata.get("order_id")))
    except ValueError:
        return None


_KIND_NAMES = {str: "a string", int: "an integer", dict: "an object", (int, str): "a string or an integer"}


def _checked(value: Any, kinds: type | tuple[type, ...], what: str, *, optional: bool = False) -> Any:
    """`value` if it is of `kinds` (true and false are not integers here), else MalformedEvent naming `what`."""
    if value is None and optional:
        return None
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise MalformedEvent(f"{what} is not {_KIND_NAMES[kinds]}")
    return value


def _sane_id(value: Any) -> str | None:
    """An id as Stripe makes them (evt_1Nv0..., pi_3Ab...): fit to store and to log."""
    if isinstance(value, str) and 0 < len(value) <= 100 and value.replace("_", "").isalnum() and value.isascii():
        return value
    return None


def intent_from(obj: Any) -> Intent:
    """An Intent from a StripeObject or a plain dict (e.g. the `data.object` of an event). Raises
    MalformedEvent when a field is not of the type Stripe sends (ids and status strings, the amount
    an integer, metadata an object of strings...)."""
    if isinstance(obj, stripe.StripeObject):
        obj = obj.to_dict()
    _checked(obj, dict, "the payment intent")
    get = obj.get
    error = _checked(get("last_payment_error"), dict, "last_payment_error", optional=True) or {}
    metadata = _checked(get("metadata"), dict, "metadata", optional=True) or {}
    for key, value in metadata.items():
        _checked(key, str, "a metadata key")
        _checked(value, (int, str), "a metadata value")
    failure_code = (_checked(error.get("code"), str, "last_payment_error.code", optional=True)
                    or _checked(error.get("decline_code"), str, "last_payment_error.decline_code", optional=True))
    if _sane_id(_checked(get("id"), str, "id")) is None:
        raise MalformedEvent("id is not an object id")
    return Intent(id=get("id"), status=_checked(get("status"), str, "status"),
                  amount=_checked(get("amount"), int, "amount"),
                  currency=_checked(get("currency"), str, "currency", optional=True) or "",
                  client_secret=_checked(get("client_secret"), str, "client_secret", optional=True),
                  metadata={key: str(value) for key, value in metadata.items()},
                  failure_code=failure_code or None)


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    intent: Intent | None  # None: the event is about another kind of object (not ours to act on)


def webhook_event_from(event: Any) -> WebhookEvent:
    """The parts of a verified event the market acts on, checked for shape: a JSON object with
    string `id` and `type`, whose `data.object` is an object; a payment intent's fields as in
    `intent_from`. Raises MalformedEvent (with the event id when it has one) otherwise."""
    event_id = _sane_id(event.get("id")) if isinstance(event, dict) else None
    try:
        _checked(event, dict, "the event")
        if _sane_id(_checked(event.get("id"), str, "id")) is None:
            raise MalformedEvent("id is not an event id")
        event_type = _checked(event.get("type"), str, "type")
        data = _checked(event.get("data"), dict, "data")
        obj = _checked(data.get("object"), dict, "data.object")
        if obj.get("object") != "payment_intent":
            return WebhookEvent(id=event["id"], type=event_type, intent=None)
        return WebhookEvent(id=event["id"], type=event_type, intent=intent_from(obj))
    except MalformedEvent as exc:
        raise MalformedEvent(str(exc), event_id) from None


def idempotency_key(purpose: str, order_id: uuid.UUID, extra: str = "") -> str:
    """Stable per order and purpose: a retried call (ours or the library's) creates nothing twice."""
    return f"tanpuhui:{purpose}:{order_id}" + (f":{extra}" if extra else "")


def _mode_for(api_key: str, api_base: str | None, emulated: bool) -> PaymentMode:
    if emulated or (api_base and STRIPE_API_HOST not in api_base):
        return PaymentMode.TEST_EMULATOR
    if api_key.startswith(("sk_live_", "rk_live_")):
        return PaymentMode.LIVE
    return PaymentMode.TEST


class Payments:
    def __init__(self, *, api_key: str, webhook_secret: str | None, api_base: str | None = None,
                 emulated: bool = False, timeout_seconds: float = 20.0, max_network_retries: int = 2) -> None:
        """`webhook_secret` may be None only for a process that never receives webhooks (the worker)."""
        if not api_key:
            raise ValueError("Stripe needs an API key")
        self.mode = _mode_for(api_key, api_base, emulated)
        self.webhook_secret = webhook_secret
        self.api_base = api_base
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        self._client = stripe.StripeClient(
            api_key, base_addresses={"api": api_base} if api_base else None, http_client=self._http,
            max_network_retries=max_network_retries)

    # --- calls -------------------------------------------------------------------------------------

    async def create_intent(self, *, order_id: uuid.UUID, amount_fen: int, currency: str, description: str,
                            attempt: str = "") -> Intent:
        """A PaymentIntent for one order: the order id is in its metadata (the webhook finds the
        order by it) and in its idempotency key (a retry returns the same intent)."""
        params = {"amount": amount_fen, "currency": currency,
                  "metadata": {"platform": METADATA_PLATFORM, "order_id": str(order_id)}}
        if self.mode is not PaymentMode.TEST_EMULATOR:
            params["description"] = description  # localstripe refuses the field
        return intent_from(await self._call(
            self._client.v1.payment_intents.create_async, params,
            options={"idempotency_key": idempotency_key("intent", order_id, attempt)}))

    async def retrieve_intent(self, intent_id: str) -> Intent:
        return intent_from(await self._call(self._client.v1.payment_intents.retrieve_async, intent_id))

    async def cancel_intent(self, intent_id: str, *, order_id: uuid.UUID) -> bool:
        """Cancel an intent nobody paid. False when it can no longer be cancelled (say it just
        succeeded: its webhook then takes the late-payment path) or is gone."""
        try:
            await self._call(self._client.v1.payment_intents.cancel_async, intent_id,
                             options={"idempotency_key": idempotency_key("cancel", order_id, intent_id)})
            return True
        except PaymentRefused:
            return False

    async def refund(self, intent_id: str, *, order_id: uuid.UUID, reason: str) -> str:
        """Refund the whole payment of an intent, once: an earlier refund for the same order is
        found and returned (so a retry after a crash refunds nothing twice, even on an emulator
        without idempotency keys), else one is created with the order's idempotency key."""
        existing = await self._call(self._client.v1.refunds.list_async,
                                    {"payment_intent": intent_id, "limit": 100})
        for refund in (r.to_dict() for r in existing.data):
            if (refund.get("metadata") or {}).get("order_id") == str(order_id) and refund.get("status") != "failed":
                return str(refund["id"])
        created = await self._call(
            self._client.v1.refunds.create_async,
            {"payment_intent": intent_id,
             "metadata": {"platform": METADATA_PLATFORM, "order_id": str(order_id), "reason": reason[:200]}},
            options={"idempotency_key": idempotency_key("refund", order_id, intent_id)})
        return str(created.id)

    def verify_event(self, payload: bytes, signature: str | None) -> WebhookEvent:
        """The event, if the payload is signed with our webhook secret (within Stripe's tolerance
        for the signature's age) and shaped as Stripe's events are (else MalformedEvent)."""
        if not signature:
            raise BadSignature("no Stripe-Signature header")
        if not self.webhook_secret:
            raise BadSignature("no webhook secret is configured in this process")
        try:
            stripe.WebhookSignature.verify_header(payload, signature, self.webhook_secret,
                                                  stripe.Webhook.DEFAULT_TOLERANCE)
        except stripe.SignatureVerificationError as exc:
            raise BadSignature("signature does not verify") from exc
        except UnicodeDecodeError as exc:
            raise BadSignature("payload is not UTF-8") from exc
        try:
            event = json.loads(payload)
        except ValueError:
            raise MalformedEvent("the payload is not JSON") from None
        return webhook_event_from(event)

    async def aclose(self) -> None:
        await self._http.close_async()

    # --- errors ------------------------------------------------------------------------------------

    async def _call(self, method, *args, **kwargs):
        try:
            return await method(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.AuthenticationError,
                stripe.PermissionError) as exc:
            log.warning("payment provider unavailable", extra={"error": type(exc).__name__})
            raise PaymentProviderUnavailable(
                message="The payment provider cannot be reached just now; try again with the same idempotency key."
            ) from exc
        except stripe.StripeError as exc:
            status = exc.http_status or 0
            if status >= 500 or status in (409, 429) or not status:
                log.warning("payment provider error", extra={"error": type(exc).__name__, "status": status})
                raise PaymentProviderUnavailable(
                    message="The payment provider failed; try again with the same idempotency key.") from exc
            log.info("payment provider refused", extra={"error": type(exc).__name__, "status": status,
                                                        "code": exc.code})
            raise PaymentRefused(message="The payment provider refused the request.") from exc


def from_settings(settings, *, emulator_url: str | None = None, emulator_secret: str | None = None) -> Payments | None:
    """Stripe when STRIPE_API_KEY is set; else the emulator the caller started (or None)."""
    if settings.stripe_api_key:
        if not settings.stripe_webhook_secret:
            raise RuntimeError("STRIPE_WEBHOOK_SECRET must be set with STRIPE_API_KEY (webhooks are verified)")
        return Payments(api_key=settings.stripe_api_key, webhook_secret=settings.stripe_webhook_secret,
                        api_base=settings.stripe_api_base)
    if emulator_url and emulator_secret:
        return Payments(api_key=EMULATOR_API_KEY, webhook_secret=emulator_secret, api_base=emulator_url,
                        emulated=True)
    return None
