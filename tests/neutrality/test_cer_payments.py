"""CER purchases paid through Stripe: the real `stripe` library against localstripe (the embedded
default's emulator), with the signed webhooks localstripe itself delivers over HTTP to the service
running on a real uvicorn port. Where a test needs a delivery localstripe does not make (a
duplicate, a redelivery, an out-of-order event), it posts the event localstripe recorded,
signed with Stripe's scheme (t=<time>,v1=<HMAC-SHA256 of "<time>.<body>">) and the same secret."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest
import stripe

from neutrality.market.jobs import cer_reservation_sweep
from neutrality.cers.models import BlockState, Move, MoveKind
from neutrality.market import offers, purchases, settlement
from neutrality.market.models import Offer, PaymentEvent
from neutrality.market.payments import EMULATOR_API_KEY, Payments, intent_from
from sqlalchemy import func, select
from tests.conftest import organisation, person, sign_in
from tests.neutrality.fixtures import accounts
from tests.neutrality.market_fixtures import (  # noqa: F401  (stripe_world is a fixture)
    DECLINED,
    ORDER,
    assert_conserved,
    buy,
    events_for,
    offer,
    order_row,
    seller_with_tonnes,
    stripe_world,
    tonnes,
    wait_for_event,
    wait_for_status,
)


async def available(services, offer_id) -> int:
    async with services.session_factory() as session:
        return (await session.get(Offer, uuid.UUID(offer_id))).quantity_available


async def moves(services, order_id, kind: MoveKind) -> int:
    async with services.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Move).where(
            Move.reference_id == uuid.UUID(str(order_id)), Move.kind == kind.value)))


async def wait_for_log(caplog, logger: str, message: str, timeout: float = 10.0, **fields) -> logging.LogRecord:
    """Until `logger` has logged `message` with these extra fields (say the webhook's follow-up,
    which runs after its transaction committed)."""
    deadline = time.monotonic() + timeout
    while True:
        for record in caplog.records:
            if record.name == logger and record.getMessage() == message and all(
                    getattr(record, k, None) == v for k, v in fields.items()):
                return record
        if time.monotonic() > deadline:
            raise AssertionError(f"{logger} did not log {message!r} with {fields}")
        await asyncio.sleep(0.02)


async def test_a_paid_order_delivers_its_tonnes(api, services, stripe_world):
    seller = await seller_with_tonnes(api, services, 100)
    sale = await offer(api, seller, 100, price=8_800)  # 88 yuan a tonne
    buyer = await organisation(api, "深圳湾会展有限公司")
    bought = await buy(api, buyer, sale["id"], 30)
    assert bought["errors"] == [] and bought["paymentMode"] == "TEST_EMULATOR"
    order = bought["order"]
    assert (order["status"], order["quantity"], order["amountFen"], order["currency"]) == (
        "AWAITING_PAYMENT", 30, 264_000, "CNY")
    secret = bought["clientSecret"]
    assert secret.startswith(order["paymentIntentId"] + "_secret_")
    intent = await stripe_world.intent(order["paymentIntentId"])
    assert (intent.amount, intent.currency, intent.metadata["order_id"]) == (264_000, "cny", order["id"])
    # reserved, not yet the buyer's
    assert await tonnes(services, seller.id, BlockState.RESERVED) == 30
    assert await available(services, sale["id"]) == 70
    await assert_conserved(services, reserved=30)

    assert await stripe_world.pay(secret) == "succeeded"
    row = await wait_for_status(services, order["id"], "delivered")
    assert row.paid_at is not None and row.holds_reservation is False
    assert await tonnes(services, buyer.account_id) == 30
    assert await tonnes(services, seller.id) == 70
    assert await tonnes(services, seller.id, BlockState.RESERVED) == 0
    await assert_conserved(services, reserved=0)
    [event] = await events_for(services, order["id"])
    assert (event.type, event.outcome, event.payment_intent_id) == (
        "payment_intent.succeeded", "delivered", order["paymentIntentId"])

    seen = (await api.data(ORDER, {"id": order["id"]}, token=buyer.token))["purchaseOrder"]
    code = seller.registry.project_code
    assert seen["status"] == "DELIVERED" and seen["deliveredSerials"] == [
        f"SZCER-{code}-2025-000000001-000000030"]
    # nobody else sees the order
    other = await organisation(api, "另一家公司")
    assert (await api.data(ORDER, {"id": order["id"]}, token=other.token))["purchaseOrder"] is None


async def test_a_declined_card_releases_the_tonnes(api, services, stripe_world):
    seller = await seller_with_tonnes(api, services, 50)
    sale = await offer(api, seller, 50, price=10_000)
    buyer = await person(api, "李小红")
    bought = await buy(api, buyer, sale["id"], 20)
    assert bought["errors"] == []
    with pytest.raises(stripe.CardError):
        await stripe_world.pay(bought["clientSecret"], card=DECLINED)
    row = await wait_for_status(services, bought["order"]["id"], "canceled")
    assert row.status_reason == "payment failed (card_declined)" and row.holds_reservation is False
    assert await tonnes(services, seller.id) == 50 and await tonnes(services, buyer.account_id) == 0
    assert await available(services, sale["id"]) == 50
    await assert_conserved(services, reserved=0)
    # the intent is cancelled at Stripe, so the buyer cannot pay it later by mistake
    for _ in range(50):
        if (await stripe_world.intent(row.payment_intent_id)).status == "canceled":
            break
        await asyncio.sleep(0.05)
    assert (await stripe_world.intent(row.payment_intent_id)).status == "canceled"
    assert await moves(services, row.id, MoveKind.RELEASE) == 1


async def test_a_duplicate_delivery_changes_nothing(api, services, stripe_world):
    seller = await seller_with_tonnes(api, services, 40)
    sale = await offer(api, seller, 40, price=5_000)
    buyer = await organisation(api)
    bought = await buy(api, buyer, sale["id"], 10)
    await stripe_world.pay(bought["clientSecret"])
    await wait_for_status(services, bought["order"]["id"], "delivered")
    event = await wait_for_event(services, order_id=bought["order"]["id"], outcome="delivered")

    # Stripe delivers again (a lost 2xx, a retry): twice, at the same time
    answers = await asyncio.gather(stripe_world.redeliver(event.event_id), stripe_world.redeliver(event.event_id))
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.json()["outcome"] for a in answers) == ["duplicate", "duplicate"]
    assert await moves(services, bought["order"]["id"], MoveKind.DELIVER) == 1
    assert await tonnes(services, buyer.account_id) == 10
    assert [e.outcome for e in await events_for(services, bought["order"]["id"])] == ["delivered"]
    await assert_conserved(services, reserved=0)


async def test_out_of_order_deliveries_change_nothing_twice(api, services, stripe_world):
    seller = await seller_with_tonnes(api, services, 40)
    sale = await offer(api, seller, 40, price=5_000)
    buyer = await organisation(api)
    bought = await buy(api, buyer, sale["id"], 10)
    await stripe_world.pay(bought["clientSecret"])
    await wait_for_status(services, bought["order"]["id"], "delivered")
    succeeded = await stripe_world.event_payload(
        (await wait_for_event(services, order_id=bought["order"]["id"])).event_id)
    # a failure and a cancellation reported after the success (new event ids, properly signed)
    for late_type in ("payment_intent.payment_failed", "payment_intent.canceled"):
        late = dict(succeeded, id="evt_late_" + uuid.uuid4().hex[:12], type=late_type)
        answer = await stripe_world.post_event(late)
        assert (answer.status_code, answer.json()["outcome"]) == (200, "no_change")
    row = await order_row(services, bought["order"]["id"])
    assert row.status == "delivered" and await tonnes(services, buyer.account_id) == 10
    assert await moves(services, row.id, MoveKind.RELEASE) == 0
    assert [e.outcome for e in await events_for(services, row.id)] == ["delivered", "no_change", "no_change"]
    await assert_conserved(services, reserved=0)


async def test_a_delivery_before_the_order_row_commits_is_settled_later(api, services, stripe_world):
    """The webhook overtakes the order's commit (as it would if the intent were created inside the
    purchase's transaction): it is recorded as deferred and answered 503 (Stripe redelivers); as
    localstripe never redelivers, the reconcile sweep settles it from the intent's state."""
    seller = await seller_with_tonnes(api, services, 30)
    sale = await offer(api, seller, 30, price=9_000)
    buyer = await organisation(api)
    buyer_id = uuid.UUID(buyer.account_id)
    async with services.session_factory() as session:
        async with session.begin():
            order = await purchases.reserve_purchase(session=session, clock=services.clock, buyer_id=buyer_id,
                                                     offer_id=uuid.UUID(sale["id"]), quantity=12)
            await session.flush()
            # inside the still-open transaction: the intent, its payment, and localstripe's delivery
            intent = await stripe_world.payments.create_intent(order_id=order.id, amount_fen=order.amount_fen,
                                                               currency="cny", description="12 t CER")
            await stripe_world.pay(intent.client_secret)
            deferred = await wait_for_event(services, intent_id=intent.id)
            assert (deferred.outcome, deferred.order_id) == ("deferred", order.id)
    # committed now; a Stripe-style redelivery would settle it, but localstripe sends nothing more
    assert (await order_row(services, order.id)).status == "awaiting_payment"
    report = await cer_reservation_sweep(session_factory=services.session_factory, clock=services.clock,
                                         payments=stripe_world.payments)
    assert report["events_settled"] == 1
    row = await order_row(services, order.id)
    assert row.status == "delivered" and row.payment_intent_id == intent.id
    assert await tonnes(services, buyer_id) == 12
    [event] = await events_for(services, order.id)
    assert (event.event_id, event.outcome) == (deferred.event_id, "delivered")
    # Stripe's own redelivery of the deferred event, after the sweep: nothing more happens
    answer = await stripe_world.redeliver(deferred.event_id)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "duplicate")
    await assert_conserved(services, reserved=0)


async def test_a_deferred_delivery_is_answered_503_and_settled_by_the_redelivery(api, services, stripe_world):
    seller = await seller_with_tonnes(api, services, 30)
    sale = await offer(api, seller, 30, price=9_000)
    buyer = await organisation(api)
    buyer_id = uuid.UUID(buyer.account_id)
    async with services.session_factory() as session:
        async with session.begin():
            order = await purchases.reserve_purchase(session=session, clock=services.clock, buyer_id=buyer_id,
                                                     offer_id=uuid.UUID(sale["id"]), quantity=5)
            intent = await stripe_world.payments.create_intent(order_id=order.id, amount_fen=order.amount_fen,
                                                               currency="cny", description="5 t CER")
            await stripe_world.pay(intent.client_secret)
            event = await wait_for_event(services, intent_id=intent.id)
            answer = await stripe_world.redeliver(event.event_id)  # still not committed
            assert (answer.status_code, answer.json()["outcome"]) == (503, "deferred")
    answer = await stripe_world.redeliver(event.event_id)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "delivered")
    assert (await order_row(services, order.id)).status == "delivered"
    assert await tonnes(services, buyer_id) == 5


async def test_an_event_whose_order_never_appears_is_set_aside_without_a_refund(api, services, stripe_world, clock):
    """A payment for an order this database does not know (another deployment on the same Stripe
    account, a restored backup) is not refunded blindly: after an hour it waits for a person."""
    ghost = uuid.uuid4()
    intent = await stripe_world.payments.create_intent(order_id=ghost, amount_fen=1_000, currency="cny",
                                                       description="ghost")
    await stripe_world.pay(intent.client_secret)
    event = await wait_for_event(services, intent_id=intent.id, outcome="deferred")
    clock.advance(hours=2)
    report = await cer_reservation_sweep(session_factory=services.session_factory, clock=clock,
                                         payments=stripe_world.payments)
    assert report["events_unknown"] == 1
    async with services.session_factory() as session:
        assert (await session.get(PaymentEvent, event.event_id)).outcome == "unknown_order"
    assert await stripe_world.refunds(intent.id) == []
    answer = await stripe_world.redeliver(event.event_id)
    assert (answer.status_code, answer.json()["outcome"]) == (200, "duplicate")


async def test_a_payment_after_the_reservation_lapsed_reserves_again(api, services, stripe_world, clock):
    seller = await seller_with_tonnes(api, services, 60)
    sale = await offer(api, seller, 60, price=7_000)
    buyer = await organisation(api)
    bought = await buy(api, buyer, sale["id"], 25)
    clock.advance(minutes=31)
    # the sweep expires the order; Stripe is out of reach for its cancellation (best effort)
    assert await settlement.expire_lapsed_orders(session_factory=services.session_factory, clock=clock,
                                                 payments=None) == 1
    row = await order_row(services, bought["order"]["id"])
    assert row.status == "expired" and row.holds_reservation is False
    assert await available(services, sale["id"]) == 60 and await tonnes(services, seller.id) == 60
    await assert_conserved(services, reserved=0)

    await stripe_world.pay(bought["clientSecret"])  # the buyer pays anyway
    row = await wait_for_status(services, row.id, "delivered")
    assert row.status_reason == "paid after the reservation lapsed; the tonnes were reserved again"
    assert await tonnes(services, buyer.account_id) == 25 and await available(services, sale["id"]) == 35
    assert await moves(services, row.id, MoveKind.RESERVE) == 2
    assert [e.outcome for e in await events_for(services, row.id)] == ["delivered_late"]
    assert await stripe_world.refunds(row.payment_intent_id) == []
    await assert_conserved(services, reserved=0)


async def test_a_payment_after_the_lapse_with_nothing_left_is_refunded(api, services, stripe_world, clock):
    seller = await seller_with_tonnes(api, services, 10)
    sale = await offer(api, seller, 10, price=12_000)
    late, quick = await organisation(api, "迟到公司"), await organisation(api, "及时公司")
    slow = await buy(api, late, sale["id"], 10)
    clock.advance(minutes=31)
    await settlement.expire_lapsed_orders(session_factory=services.session_factory, clock=clock, payments=None)
    quick, late = await sign_in(api, quick.login), await sign_in(api, late.login)  # tokens last 15 minutes
    fast = await buy(api, quick, sale["id"], 10)  # the released tonnes sell again
    await stripe_world.pay(fast["clientSecret"])
    await wait_for_status(services, fast["order"]["id"], "delivered")

    await stripe_world.pay(slow["clientSecret"])
    row = await wait_for_status(services, slow["order"]["id"], "refunded")
    assert row.refund_id and row.paid_at is not None and row.closed_at is not None
    assert "refunded" in row.status_reason
    [refund] = await stripe_world.refunds(row.payment_intent_id)
    assert (refund.id, refund.amount, refund.metadata["order_id"]) == (row.refund_id, 120_000, str(row.id))
    assert await tonnes(services, late.account_id) == 0 and await tonnes(services, quick.account_id) == 10
    assert [e.outcome for e in await events_for(services, row.id)] == ["refund_due"]
    seen = (await api.data(ORDER, {"id": str(row.id)}, token=late.token))["purchaseOrder"]
    assert (seen["status"], seen["refundId"]) == ("REFUNDED", row.refund_id)
    await assert_conserved(services, reserved=0)


async def test_a_late_payment_is_refunded_when_the_seller_no_longer_holds_the_tonnes(api, services, stripe_world,
                                                                                   clock):
    """The offer still shows the tonnes, but the seller retired them meanwhile: the second
    reservation fails inside a savepoint, nothing of it remains, and the payment is refunded."""
    seller = await seller_with_tonnes(api, services, 15)
    sale = await offer(api, seller, 15, price=2_000)
    buyer = await organisation(api)
    bought = await buy(api, buyer, sale["id"], 15)
    clock.advance(minutes=31)
    await settlement.expire_lapsed_orders(session_factory=services.session_factory, clock=clock, payments=None)
    async with services.session_factory() as session, session.begin():
        from neutrality.cers import blocks
        await blocks.move(session=session, clock=clock, kind=MoveKind.RETIRE, holder_id=seller.id,
                          from_state=BlockState.HELD, to_state=BlockState.RETIRED, quantity=10,
                          reference_kind="retirement", reference_id=uuid.uuid4())
    assert await available(services, sale["id"]) == 15  # the offer does not know
    await stripe_world.pay(bought["clientSecret"])
    row = await wait_for_status(services, bought["order"]["id"], "refunded")
    assert row.holds_reservation is False and len(await stripe_world.refunds(row.payment_intent_id)) == 1
    assert await available(services, sale["id"]) == 15
    assert await moves(services, row.id, MoveKind.RESERVE) == 1  # only the first, lapsed one
    assert await tonnes(services, seller.id) == 5 and await tonnes(services, buyer.account_id) == 0
    await assert_conserved(services, reserved=0)


async def test_a_refund_that_failed_is_retried_by_the_sweep_once(api, services, stripe_world, clock, caplog):
    """The refund call fails (provider down) after the payment was recorded: the order stays
    `paid` (refund due) and the sweep refunds it; running the sweep again refunds nothing more."""
    seller = await seller_with_tonnes(api, services, 8)
    sale = await offer(api, seller, 8, price=3_000)
    buyer = await organisation(api)
    bought = await buy(api, buyer, sale["id"], 8)
    async with services.session_factory() as session, session.begin():
        await session.execute(Offer.__table__.update().values(status="withdrawn"))
    clock.advance(minutes=31)
    await settlement.expire_lapsed_orders(session_factory=services.session_factory, clock=clock, payments=None)
    intent_id = bought["order"]["paymentIntentId"]
    # the payment goes through at Stripe; its webhook is handled while the refund cannot be made
    down = Payments(api_key=EMULATOR_API_KEY, webhook_secret=stripe_world.emulator.webhook_secret,
                    api_base="http://127.0.0.1:9",
                    emulated=True, max_network_retries=0)
    services.payments = down
    caplog.set_level(logging.WARNING, logger="tanpuhui.market")
    try:
        await stripe_world.pay(bought["clientSecret"])
        row = await wait_for_status(services, bought["order"]["id"], "paid")
        # the webhook's own refund attempt (after its commit) has failed and left it to the sweep
        await wait_for_log(caplog, "tanpuhui.market", "refund not possible now; the sweep retries it",
                           order_id=str(row.id))
    finally:
        services.payments = stripe_world.payments
        await down.aclose()
    assert (await order_row(services, row.id)).status == "paid" and await stripe_world.refunds(intent_id) == []
    first = await cer_reservation_sweep(session_factory=services.session_factory, clock=clock,
                                        payments=stripe_world.payments)
    second = await cer_reservation_sweep(session_factory=services.session_factory, clock=clock,
                                         payments=stripe_world.payments)
    assert (first["refunds"], second["refunds"]) == (1, 0)
    row = await order_row(services, row.id)
    assert row.status == "refunded" and len(await stripe_world.refunds(intent_id)) == 1
    # a refund found again after a crash between Stripe's answer and our commit: not made twice
    assert await stripe_world.payments.refund(intent_id, order_id=row.id, reason="again") == row.refund_id
    assert len(await stripe_world.refunds(intent_id)) == 1
    await assert_conserved(services, reserved=0)


async def reserve_and_pay(services, stripe_world, buyer_id, offer_id: str, quantity: int, *, paid_fen: int,
                          currency: str = "cny", lapse_first: bool = False):
    """A reserved order whose PaymentIntent (made here, at localstripe) asks for `paid_fen`, paid
    with a test card; localstripe delivers the signed `payment_intent.succeeded` for that amount.
    The intent is written on the order by the webhook (the delivery overtakes step 3).
    `lapse_first`: the reservation lapses (and is swept) before the buyer pays."""
    async with services.session_factory() as session, session.begin():
        order = await purchases.reserve_purchase(session=session, clock=services.clock, buyer_id=buyer_id,
                                                 offer_id=uuid.UUID(offer_id), quantity=quantity)
    intent = await stripe_world.payments.create_intent(order_id=order.id, amount_fen=paid_fen, currency=currency,
                                                       description=f"{quantity} t CER")
    assert (intent.amount, intent.currency) == (paid_fen, currency)
    if lapse_first:
        services.clock.advance(minutes=31)
        assert await settlement.expire_lapsed_orders(session_factory=services.session_factory, clock=services.clock,
                                                     payments=None) == 1
    assert await stripe_world.pay(intent.client_secret) == "succeeded"
    return order, intent


async def assert_refunded_without_tonnes(services, stripe_world, seller, buyer_id, offer_id: str, order, intent,
                                         paid_fen: int):
    row = await wait_for_status(services, order.id, "refunded", "delivered")
    assert row.status == "refunded", (row.status, row.status_reason)
    assert row.status_reason.startswith("refunded") and row.payment_intent_id == intent.id
    assert row.paid_at is not None and row.holds_reservation is False
    # no tonne moved to the buyer; the reserved ones are the seller's again, on offer again
    assert await tonnes(services, buyer_id) == 0
    assert await tonnes(services, seller.id) == 20 and await tonnes(services, seller.id, BlockState.RESERVED) == 0
    assert await available(services, offer_id) == 20
    assert await moves(services, row.id, MoveKind.DELIVER) == 0
    # the whole payment goes back, whatever was paid
    [refund] = await stripe_world.refunds(intent.id)
    assert (refund.id, refund.amount, refund.metadata["order_id"]) == (row.refund_id, paid_fen, str(row.id))
    assert [e.outcome for e in await events_for(services, row.id)] == ["refund_due"]
    await assert_conserved(services, reserved=0)
    return row


# the order is 8 t at 5,000 fen a tonne: 40,000 fen
PAID_OTHERWISE = [
    pytest.param(39_999, "cny", id="underpaid-by-one-fen"),
    pytest.param(40_001, "cny", id="overpaid-by-one-fen"),
    pytest.param(40_000, "usd", id="the-amount-in-another-currency"),
]


@pytest.mark.parametrize("paid_fen, currency", PAID_OTHERWISE)
async def test_a_payment_of_another_amount_than_the_order_delivers_nothing_and_is_refunded(
        api, services, stripe_world, paid_fen, currency):
    """Tonnes are never delivered for less money than the order's amount, nor for a payment that
    is not the order's (more, or in another currency): the tonnes are released and the whole
    payment is refunded; the buyer buys again."""
    seller = await seller_with_tonnes(api, services, 20)
    sale = await offer(api, seller, 20, price=5_000)
    [buyer_id] = await accounts(services, 1)
    order, intent = await reserve_and_pay(services, stripe_world, buyer_id, sale["id"], 8, paid_fen=paid_fen,
                                          currency=currency)
    assert order.amount_fen == 40_000
    row = await assert_refunded_without_tonnes(services, stripe_world, seller, buyer_id, sale["id"], order, intent,
                                               paid_fen)
    assert row.status_reason == "refunded: the amount paid differs"


async def test_the_exact_amount_delivers(api, services, stripe_world):
    """The same path as above with the order's own amount: delivered, nothing refunded."""
    seller = await seller_with_tonnes(api, services, 20)
    sale = await offer(api, seller, 20, price=5_000)
    [buyer_id] = await accounts(services, 1)
    order, intent = await reserve_and_pay(services, stripe_world, buyer_id, sale["id"], 8, paid_fen=40_000)
    row = await wait_for_status(services, order.id, "delivered", "refunded")
    assert row.status == "delivered" and row.payment_intent_id == intent.id
    assert await tonnes(services, buyer_id) == 8 and await stripe_world.refunds(intent.id) == []
    await assert_conserved(services, reserved=0)


@pytest.mark.parametrize("paid_fen", [pytest.param(39_999, id="underpaid"), pytest.param(40_001, id="overpaid")])
async def test_a_late_payment_of_another_amount_delivers_nothing_and_is_refunded(api, services, stripe_world,
                                                                                 paid_fen):
    """Paid after the reservation lapsed, with the offer still holding the tonnes: the amount is
    checked there too, so the tonnes are not reserved again for less money."""
    seller = await seller_with_tonnes(api, services, 20)
    sale = await offer(api, seller, 20, price=5_000)
    [buyer_id] = await accounts(services, 1)
    order, intent = await reserve_and_pay(services, stripe_world, buyer_id, sale["id"], 8, paid_fen=paid_fen,
                                          lapse_first=True)
    await assert_refunded_without_tonnes(services, stripe_world, seller, buyer_id, sale["id"], order, intent,
                                         paid_fen)


async def test_the_sweep_expires_lapsed_reservations_and_cancels_their_intents(api, services, stripe_world, clock):
    seller = await seller_with_tonnes(api, services, 20)
    sale = await offer(api, seller, 20, price=1_000)
    buyers = [await organisation(api, f"买家{n}") for n in range(3)]
    orders = [await buy(api, b, sale["id"], 5) for b in buyers]
    clock.advance(minutes=20)
    fresh = await buy(api, await organisation(api, "后来者"), sale["id"], 5)
    clock.advance(minutes=11)  # the first three lapsed, the fourth has 19 minutes left
    report = await cer_reservation_sweep(session_factory=services.session_factory, clock=clock,
                                         payments=stripe_world.payments)
    assert report["expired"] == 3
    for bought in orders:
        row = await order_row(services, bought["order"]["id"])
        assert row.status == "expired" and row.status_reason == "the reservation lapsed before payment"
        assert (await stripe_world.intent(row.payment_intent_id)).status == "canceled"
    assert (await order_row(services, fresh["order"]["id"])).status == "awaiting_payment"
    assert await available(services, sale["id"]) == 15
    await assert_conserved(services, reserved=5)
    assert (await cer_reservation_sweep(session_factory=services.session_factory, clock=clock,
                                        payments=stripe_world.payments))["expired"] == 0


async def test_a_bad_signature_is_refused_and_logged_without_the_payload(api, services, stripe_world, caplog):
    seller = await seller_with_tonnes(api, services, 10)
    sale = await offer(api, seller, 10, price=1_000)
    buyer = await organisation(api, "王氏贸易")
    bought = await buy(api, buyer, sale["id"], 10)
    intent = await stripe_world.intent(bought["order"]["paymentIntentId"])
    forged = {"id": "evt_forged_1", "object": "event", "type": "payment_intent.succeeded", "created": 1,
              "data": {"object": dict(intent_from(intent).__dict__, object="payment_intent", status="succeeded",
                                      metadata=intent.metadata.to_dict(), email="buyer@example.org")}}
    caplog.set_level(logging.WARNING, logger="tanpuhui.webhooks")
    wrong_secret = await stripe_world.post_event(forged, secret="whsec_not_ours")
    no_header = await stripe_world.post_event(forged, signature="")
    garbage = await stripe_world.post_event(forged, signature="t=1,v1=deadbeef")
    assert [r.status_code for r in (wrong_secret, no_header, garbage)] == [400, 400, 400]
    refusals = [r for r in caplog.records if "bad signature" in r.getMessage()]
    assert len(refusals) == 3
    assert all("example.org" not in str(r.__dict__) and "evt_forged" not in str(r.__dict__) for r in refusals)
    assert await events_for(services, bought["order"]["id"]) == []
    row = await order_row(services, bought["order"]["id"])
    assert row.status == "awaiting_payment" and await tonnes(services, buyer.account_id) == 0


async def test_parallel_purchases_never_oversell(api, services, stripe_world):
    """Twelve buyers race for one offer through the API on their own connections; the winners pay
    at once and localstripe's webhooks settle them in parallel."""
    seller = await seller_with_tonnes(api, services, 40)
    sale = await offer(api, seller, 30, price=2_500)  # 10 of the 40 tonnes stay off the market
    buyers = [await organisation(api, f"并发买家{n}") for n in range(12)]
    results = await asyncio.gather(*(buy(api, b, sale["id"], 3) for b in buyers))
    won = [(b, r) for b, r in zip(buyers, results) if r["errors"] == []]
    lost = [r for r in results if r["errors"]]
    assert len(won) == 10 and all(r["errors"][0]["code"] == "INSUFFICIENT_TONNES" for r in lost)
    assert await available(services, sale["id"]) == 0
    await assert_conserved(services, reserved=30)
    await asyncio.gather(*(stripe_world.pay(r["clientSecret"]) for _, r in won))
    await asyncio.gather(*(wait_for_status(services, r["order"]["id"], "delivered") for _, r in won))
    for b, _ in won:
        assert await tonnes(services, b.account_id) == 3
    assert await tonnes(services, seller.id) == 10
    totals = await assert_conserved(services, reserved=0)
    assert [(t.issued, t.held) for t in totals] == [(40, 40)]


async def test_parallel_reservations_on_real_connections_keep_every_tonne_in_one_place(services):
    """Forty reservations at once straight through the domain (each on its own connection and
    transaction), with expiries and new reservations racing them."""
    from tests.neutrality.fixtures import accounts, filed_project
    from tests.neutrality.market_fixtures import issue

    registry = await filed_project(services, buyers=40)
    [seller] = await accounts(services, 1)
    await issue(services, registry, seller, 1, 100)
    async with services.session_factory() as session, session.begin():
        sale = await offers.create_offer(session=session, clock=services.clock, seller_id=seller,
                                         project_id=registry.project_id, vintage=2025, quantity=100,
                                         price_per_tonne_fen=100)

    async def reserve(buyer, quantity):
        try:
            async with services.session_factory() as session, session.begin():
                order = await purchases.reserve_purchase(session=session, clock=services.clock, buyer_id=buyer,
                                                         offer_id=sale.id, quantity=quantity)
            return order.id
        except Exception as refused:  # noqa: BLE001 (a DomainError: its code is checked)
            return refused.code

    outcomes = await asyncio.gather(*(reserve(b, 1 + n % 5) for n, b in enumerate(registry.buyers)))
    won = [o for o in outcomes if isinstance(o, uuid.UUID)]
    assert all(o == "INSUFFICIENT_TONNES" for o in outcomes if not isinstance(o, uuid.UUID))
    async with services.session_factory() as session:
        left = (await session.get(Offer, sale.id)).quantity_available
    taken = 0
    for order_id in won:
        taken += (await order_row(services, order_id)).quantity
    assert taken + left == 100 and taken <= 100
    await assert_conserved(services, reserved=taken)
    # expiry of all of them races a second wave of reservations
    services.clock.advance(minutes=31)
    second = asyncio.gather(*(reserve(b, 2) for b in registry.buyers[:20]))
    expired = settlement.expire_lapsed_orders(session_factory=services.session_factory, clock=services.clock,
                                              batch_size=7)
    again, count = await asyncio.gather(second, expired)
    assert count == len(won)
    reserved_again = sum(2 for o in again if isinstance(o, uuid.UUID))
    async with services.session_factory() as session:
        left = (await session.get(Offer, sale.id)).quantity_available
    assert left == 100 - reserved_again
    await assert_conserved(services, reserved=reserved_again)
