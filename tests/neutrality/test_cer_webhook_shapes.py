"""A correctly signed Stripe webhook whose event is not shaped as Stripe's (a JSON array, `data`
or `data.object` not an object, `metadata` a list, `amount` not an integer, ids not strings...)
is refused with 400 `{"error": "malformed event"}`: nothing is recorded or applied, and the log
has one warning with the event id only, never the payload.

The events are signed with the library's own helper and the adapter's webhook secret, over an
order really bought through the API (localstripe holds its PaymentIntent), so a shape check that
let one through would show up as a delivered order or a recorded event."""

from __future__ import annotations

import copy
import json
import logging

import pytest
import stripe

from neutrality.market.payments import EMULATOR_API_KEY, Payments, intent_from
from tests.api._conventions import table_counts
from tests.conftest import organisation
from tests.neutrality.market_fixtures import buy, offer, order_row, seller_with_tonnes, tonnes

SECRET = "whsec_tanpuhui_shapes_test"
# personal data a real payload may carry: it must never reach the log
BUYER_EMAIL = "wang.xiaoming@example.org"
BUYER_NAME = "王小明"


def signed(body: bytes | str) -> tuple[bytes, dict]:
    text = body.decode() if isinstance(body, bytes) else body
    header = stripe.WebhookSignature.generate_signature_header(text, SECRET)
    return text.encode(), {"Content-Type": "application/json", "Stripe-Signature": header}


def good_event(intent, order_id: str, event_id: str = "evt_shapes_good") -> dict:
    return {
        "id": event_id, "object": "event", "type": "payment_intent.succeeded", "created": 1,
        "data": {"object": {
            "id": intent.id, "object": "payment_intent", "status": "succeeded", "amount": intent.amount,
            "currency": intent.currency, "client_secret": None, "receipt_email": BUYER_EMAIL,
            "shipping": {"name": BUYER_NAME}, "last_payment_error": None,
            "metadata": dict(intent.metadata),
        }},
    }


def changed(event: dict, path: str, value) -> dict:
    event = copy.deepcopy(event)
    *parents, last = path.split(".")
    target = event
    for part in parents:
        target = target[part]
    target[last] = value
    return event


def malformed_cases(event: dict) -> list[tuple[str, bytes | str, str | None]]:
    """(description, body, the event id the log may name)."""
    intent = event["data"]["object"]
    return [
        ("body a JSON array", json.dumps([event]), None),
        ("body a JSON string", json.dumps(BUYER_EMAIL), None),
        ("body not JSON", f"{{id: evt_x, email: {BUYER_EMAIL}", None),
        ("data a string", json.dumps(changed(event, "data", BUYER_EMAIL)), "evt_shapes_good"),
        ("data missing", json.dumps({k: v for k, v in event.items() if k != "data"}), "evt_shapes_good"),
        ("data.object a string", json.dumps(changed(event, "data.object", json.dumps(intent))), "evt_shapes_good"),
        ("data.object a list", json.dumps(changed(event, "data.object", [intent])), "evt_shapes_good"),
        ("metadata a list", json.dumps(changed(event, "data.object.metadata", list(intent["metadata"].items()))),
         "evt_shapes_good"),
        ("metadata value an object", json.dumps(changed(event, "data.object.metadata.order_id",
                                                        {"id": intent["metadata"]["order_id"]})), "evt_shapes_good"),
        ("amount a string", json.dumps(changed(event, "data.object.amount", str(intent["amount"]))),
         "evt_shapes_good"),
        ("amount a fraction", json.dumps(changed(event, "data.object.amount", intent["amount"] + 0.5)),
         "evt_shapes_good"),
        ("amount true", json.dumps(changed(event, "data.object.amount", True)), "evt_shapes_good"),
        ("amount missing", json.dumps(changed(event, "data.object.amount", None)), "evt_shapes_good"),
        ("intent id a number", json.dumps(changed(event, "data.object.id", 42)), "evt_shapes_good"),
        ("status an object", json.dumps(changed(event, "data.object.status", {"s": "succeeded"})), "evt_shapes_good"),
        ("last_payment_error a string", json.dumps(changed(event, "data.object.last_payment_error", BUYER_EMAIL)),
         "evt_shapes_good"),
        ("event id a number", json.dumps(changed(event, "id", 7)), None),
        ("event id not an id", json.dumps(changed(event, "id", BUYER_EMAIL)), None),
        ("type a list", json.dumps(changed(event, "type", ["payment_intent.succeeded"])), "evt_shapes_good"),
    ]


@pytest.fixture
async def bought(api, services, localstripe):
    """An order awaiting payment, its PaymentIntent at localstripe; the adapter verifies with SECRET."""
    payments = Payments(api_key=EMULATOR_API_KEY, webhook_secret=SECRET, api_base=localstripe.url, emulated=True)
    services.payments = payments
    seller = await seller_with_tonnes(api, services, 10)
    sale = await offer(api, seller, 10, price=1_000)
    buyer = await organisation(api, "王氏贸易")
    order = (await buy(api, buyer, sale["id"], 10))["order"]
    intent = await payments.retrieve_intent(order["paymentIntentId"])
    try:
        yield order, intent, buyer
    finally:
        services.payments = None
        await payments.aclose()


async def test_malformed_signed_events_are_refused_and_apply_nothing(api, services, bought, caplog):
    order, intent, buyer = bought
    event = good_event(intent, order["id"])
    before = await table_counts(services)
    caplog.set_level(logging.DEBUG)
    for name, body, logged_id in malformed_cases(event):
        caplog.clear()
        content, headers = signed(body)
        response = await api.client.post("/webhooks/stripe", content=content, headers=headers)
        try:
            assert response.status_code == 400, (response.status_code, response.text)
            assert response.json() == {"error": "malformed event"}
            warnings = [r for r in caplog.records if r.name == "tanpuhui.webhooks" and r.levelno >= logging.WARNING]
            assert [r.getMessage() for r in warnings] == ["stripe webhook refused: malformed event"]
            assert warnings[0].event_id == logged_id
            for record in caplog.records:
                text = str(record.__dict__)
                assert BUYER_EMAIL not in text and "wang.xiaoming" not in text and BUYER_NAME not in text, text
                assert record.exc_info is None, record
        except AssertionError as failure:
            raise AssertionError(f"case {name!r}: {failure}") from None
    assert await table_counts(services) == before
    row = await order_row(services, order["id"])
    assert row.status == "awaiting_payment" and await tonnes(services, buyer.account_id) == 0

    # the same signing with the well-formed event is applied: the refusals were about the shape alone
    content, headers = signed(json.dumps(event))
    response = await api.client.post("/webhooks/stripe", content=content, headers=headers)
    assert response.status_code == 200 and response.json()["outcome"] == "delivered", response.text
    assert await tonnes(services, buyer.account_id) == 10


async def test_an_event_about_another_kind_of_object_is_ignored(api, services, bought):
    """Not malformed, only not ours: 200 and nothing recorded."""
    order, intent, _ = bought
    event = changed(good_event(intent, order["id"]), "data.object", {"id": "cus_1", "object": "customer"})
    before = await table_counts(services)
    content, headers = signed(json.dumps(event))
    response = await api.client.post("/webhooks/stripe", content=content, headers=headers)
    assert response.status_code == 200 and response.json() == {"received": True, "outcome": "ignored"}
    assert await table_counts(services) == before


def test_intent_from_refuses_wrong_types():
    good = {"id": "pi_1", "status": "succeeded", "amount": 100, "currency": "cny", "client_secret": None,
            "metadata": {"platform": "tanpuhui-cer", "order_id": "x"}, "last_payment_error": None}
    assert intent_from(good).amount == 100
    from neutrality.market.payments import MalformedEvent

    for field, value in [("amount", "100"), ("amount", 1.5), ("amount", False), ("metadata", ["a"]),
                         ("id", None), ("id", "pi 1; drop"), ("status", 3), ("currency", ["cny"]), ("last_payment_error", "x")]:
        with pytest.raises(MalformedEvent):
            intent_from({**good, field: value})
