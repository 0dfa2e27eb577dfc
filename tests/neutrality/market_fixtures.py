"""Set-up for the CER market and payment tests: a seller holding tonnes, the service on a real
uvicorn port (so localstripe can deliver its signed webhooks over HTTP), a buyer's "front-end"
confirming PaymentIntents with test cards, and checks of CER conservation."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest
import stripe
import uvicorn
from sqlalchemy import func, select

from neutrality.cers import blocks
from neutrality.cers.models import Block, BlockState
from neutrality.market.models import PaymentEvent, PurchaseOrder
from neutrality.market.payments import EMULATOR_API_KEY, Payments
from server.app import create_app
from tests.conftest import Actor, organisation, sign_in
from tests.neutrality.fixtures import Registry, filed_project

# the market's front-end contracts, walked by hash in tests/neutrality/test_cer_market.py
MARKET_CONTRACTS = {
    "CerMarketInfo", "CerOffers", "CerOfferDetail", "BuyCers", "PurchaseOrder", "MyPurchaseOrders",
    "CreateCerOffer", "WithdrawCerOffer", "MyCerOffers", "SellerOrders",
}

VISA = "pm_card_visa"
DECLINED = "pm_card_chargeCustomerFail"  # localstripe declines this one when charging

CREATE_OFFER = """
mutation CreateCerOffer($input: CreateCerOfferInput!) {
  createCerOffer(input: $input) {
    offer { id vintage pricePerTonneFen quantityOffered quantityAvailable minPurchase status mine project { id code } }
    errors { code field message }
  }
}"""
WITHDRAW_OFFER = """
mutation WithdrawCerOffer($input: WithdrawCerOfferInput!) {
  withdrawCerOffer(input: $input) { offer { id status quantityAvailable } errors { code field message } }
}"""
BUY = """
mutation BuyCers($input: BuyCersInput!) {
  buyCers(input: $input) {
    order { id status quantity unitPriceFen amountFen currency reservedUntil paymentIntentId statusReason
            deliveredSerials project { code } }
    clientSecret paymentMode
    errors { code field message }
  }
}"""
ORDER = """
query PurchaseOrder($id: ID!) {
  purchaseOrder(id: $id) { id status statusReason quantity amountFen paymentIntentId refundId deliveredSerials paidAt }
}"""


@dataclass
class Seller:
    actor: Actor
    registry: Registry

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(self.actor.account_id)


async def issue(services, registry: Registry, holder_id, first: int, last: int, vintage: int = 2025):
    async with services.session_factory() as session, session.begin():
        return await blocks.issue_block(session=session, clock=services.clock, project_id=registry.project_id,
                                        vintage=vintage, first_serial=first, last_serial=last, holder_id=holder_id,
                                        issuance_id=uuid.uuid4())


async def seller_with_tonnes(api, services, tonnes: int = 100, vintage: int = 2025,
                             name: str = "深圳光明光伏发电有限公司") -> Seller:
    """A project owner signed in through the API, holding `tonnes` of a filed project's vintage."""
    org = await organisation(api, name, apply_for=["PROJECT_OWNER"])
    actor = await sign_in(api, org.login)  # the new role is in a fresh token
    registry = await filed_project(services)
    await issue(services, registry, uuid.UUID(actor.account_id), 1, tonnes, vintage)
    return Seller(actor=actor, registry=registry)


async def offer(api, seller: Seller, quantity: int, price: int, min_purchase: int = 1, vintage: int = 2025) -> dict:
    data = await api.data(CREATE_OFFER, {"input": {
        "projectId": str(seller.registry.project_id), "vintage": vintage, "quantity": quantity,
        "pricePerTonneFen": price, "minPurchase": min_purchase, "idempotencyKey": uuid.uuid4().hex}},
        token=seller.actor.token)
    assert data["createCerOffer"]["errors"] == [], data
    return data["createCerOffer"]["offer"]


async def buy(api, buyer: Actor, offer_id: str, quantity: int, key: str | None = None) -> dict:
    data = await api.data(BUY, {"input": {"offerId": offer_id, "quantity": quantity,
                                          "idempotencyKey": key or uuid.uuid4().hex}}, token=buyer.token)
    return data["buyCers"]


# --- the service on a real port, with localstripe delivering to it ------------------------------


@dataclass
class StripeWorld:
    services: object
    payments: Payments
    emulator: object
    url: str  # the service's base URL
    stripe: stripe.StripeClient  # what the buyer's front-end does with Stripe.js, through the emulator

    async def pay(self, client_secret: str, card: str = VISA) -> str:
        """Confirm the PaymentIntent of a client secret with a test card, as Stripe.js would.
        Returns the intent's status (a declined card raises stripe.CardError, like Stripe)."""
        intent_id = client_secret.split("_secret_")[0]
        await self.stripe.v1.payment_intents.update_async(intent_id, params={"payment_method": card})
        confirmed = await self.stripe.v1.payment_intents.confirm_async(intent_id)
        return confirmed.status

    async def intent(self, intent_id: str):
        return await self.stripe.v1.payment_intents.retrieve_async(intent_id)

    async def refunds(self, intent_id: str) -> list:
        return list((await self.stripe.v1.refunds.list_async(params={"payment_intent": intent_id})).data)

    async def event_payload(self, event_id: str) -> dict:
        """An event as localstripe delivered it (GET /v1/events/<id> gives the same JSON)."""
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.emulator.url}/v1/events/{event_id}",
                                        headers={"Authorization": f"Bearer {EMULATOR_API_KEY}"})
        response.raise_for_status()
        return response.json()

    async def post_event(self, event: dict, *, secret: str | None = None, signature: str | None = None
                         ) -> httpx.Response:
        """Deliver an event as Stripe does: the JSON body signed `t=<time>,v1=<HMAC-SHA256>` with the
        webhook secret (localstripe's own scheme, the same as Stripe's)."""
        body = json.dumps(event, indent=2, sort_keys=True).encode()
        if signature is None:
            stamp = int(time.time())
            mac = hmac.new((secret or self.emulator.webhook_secret).encode(), b"%d.%s" % (stamp, body),
                           hashlib.sha256).hexdigest()
            signature = f"t={stamp},v1={mac}"
        async with httpx.AsyncClient() as client:
            return await client.post(f"{self.url}/webhooks/stripe", content=body,
                                     headers={"Content-Type": "application/json", "Stripe-Signature": signature})

    async def redeliver(self, event_id: str) -> httpx.Response:
        return await self.post_event(await self.event_payload(event_id))


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
async def stripe_world(services, localstripe):
    """`services` with the emulator's payments adapter, served by uvicorn on a free 127.0.0.1 port
    that localstripe delivers `payment_intent.*` webhooks to (real HTTP, real signatures)."""
    payments = Payments(api_key=EMULATOR_API_KEY, webhook_secret=localstripe.webhook_secret,
                        api_base=localstripe.url, emulated=True)
    services.payments = payments
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(services, dispose_on_shutdown=False), log_config=None,
                                           access_log=False, lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        assert not serving.done(), serving
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    localstripe.register_webhook(f"{url}/webhooks/stripe", hook_id="tanpuhui-tests")
    front_end = stripe.StripeClient(EMULATOR_API_KEY, base_addresses={"api": localstripe.url},
                                    http_client=stripe.HTTPXClient(), max_network_retries=0)
    try:
        yield StripeWorld(services=services, payments=payments, emulator=localstripe, url=url, stripe=front_end)
    finally:
        # later tests' events must not reach this (closed) port's successor
        localstripe.register_webhook("http://127.0.0.1:9/closed", hook_id="tanpuhui-tests")
        server.should_exit = True
        await serving
        sock.close()
        services.payments = None
        await payments.aclose()


# --- waiting and checking ------------------------------------------------------------------------


async def order_row(services, order_id) -> PurchaseOrder:
    async with services.session_factory() as session:
        return await session.get(PurchaseOrder, uuid.UUID(str(order_id)))


async def wait_for_status(services, order_id, *statuses: str, timeout: float = 10.0) -> PurchaseOrder:
    """Until the webhook has moved the order to one of `statuses` (localstripe delivers after ~1 s)."""
    deadline = time.monotonic() + timeout
    while True:
        row = await order_row(services, order_id)
        if row.status in statuses:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} is {row.status}, not {statuses}")
        await asyncio.sleep(0.1)


async def wait_for_event(services, *, order_id=None, intent_id=None, outcome: str | None = None,
                         timeout: float = 10.0) -> PaymentEvent:
    deadline = time.monotonic() + timeout
    while True:
        async with services.session_factory() as session:
            stmt = select(PaymentEvent).order_by(PaymentEvent.received_at)
            if order_id is not None:
                stmt = stmt.where(PaymentEvent.order_id == uuid.UUID(str(order_id)))
            if intent_id is not None:
                stmt = stmt.where(PaymentEvent.payment_intent_id == intent_id)
            if outcome is not None:
                stmt = stmt.where(PaymentEvent.outcome == outcome)
            found = (await session.scalars(stmt)).first()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no payment event for {order_id or intent_id} ({outcome})")
        await asyncio.sleep(0.1)


async def events_for(services, order_id) -> list[PaymentEvent]:
    async with services.session_factory() as session:
        return list((await session.scalars(select(PaymentEvent).where(
            PaymentEvent.order_id == uuid.UUID(str(order_id))).order_by(PaymentEvent.received_at))).all())


async def tonnes(services, holder_id, state: BlockState = BlockState.HELD, project_id=None) -> int:
    size = Block.last_serial - Block.first_serial + 1
    stmt = select(func.coalesce(func.sum(size), 0)).where(
        Block.holder_id == uuid.UUID(str(holder_id)), Block.state == state.value, Block.ended_at.is_(None))
    if project_id is not None:
        stmt = stmt.where(Block.project_id == project_id)
    async with services.session_factory() as session:
        return int(await session.scalar(stmt))


async def assert_conserved(services, *, reserved: int | None = None) -> list:
    """issued = held + reserved + retired + cancelled per project and vintage, no tonne in two
    live blocks, and (optionally) exactly `reserved` tonnes reserved overall."""
    async with services.session_factory() as session:
        totals = await blocks.state_totals(session=session)
        overlaps = await blocks.overlapping_live_blocks(session=session)
    assert totals and all(t.balanced for t in totals), totals
    assert overlaps == 0
    if reserved is not None:
        assert sum(t.reserved for t in totals) == reserved, totals
    return totals
