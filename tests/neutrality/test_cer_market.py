"""The CER market through the public GraphQL API: offers, browsing, buying and its refusals, the
payment mode label, idempotent retries, each side's view of the orders, and every market
front-end contract run by its persisted hash. Payments go to localstripe (tests/neutrality/market_fixtures)."""

from __future__ import annotations

import uuid

from graphql import build_schema
from sqlalchemy import func, select

from server import worker as worker_module
from neutrality.market.models import Offer, PurchaseOrder
from neutrality.market.payments import EMULATOR_API_KEY, PaymentRefused, Payments
from server.graphql_schema import live_schema_sdl
from tests.conftest import organisation, person, regulator
from tests.neutrality.market_fixtures import (  # noqa: F401  (stripe_world is a fixture)
    BUY,
    CREATE_OFFER,
    MARKET_CONTRACTS,
    WITHDRAW_OFFER,
    assert_conserved,
    buy,
    issue,
    offer,
    seller_with_tonnes,
    stripe_world,
    tonnes,
    wait_for_status,
)
from tests.api.test_frontend_contracts import PersistedClient

BROWSE = """
query Browse($filter: CerOfferFilter, $sort: CerOfferSort!, $first: Int, $after: String) {
  cerOffers(filter: $filter, sort: $sort, first: $first, after: $after) {
    edges { cursor node { id pricePerTonneFen quantityAvailable vintage mine project { code title } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
INFO = "{ cerMarketInfo { paymentMode testMode currency reservationMinutes } }"
SELLER_ORDERS = """
query { sellerOrders(first: 10) { edges { node { id status quantity amountFen project { code } } } } }"""
MY_OFFERS = """
query { myCerOffers(first: 10) { edges { node { id status quantityAvailable mine } } } }"""


def codes(payload: dict) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def create(api, seller, **fields) -> dict:
    values = {"projectId": str(seller.registry.project_id), "vintage": 2025, "quantity": 10,
              "pricePerTonneFen": 5_000, "idempotencyKey": uuid.uuid4().hex, **fields}
    return (await api.data(CREATE_OFFER, {"input": values}, token=seller.actor.token))["createCerOffer"]


async def order_count(services) -> int:
    async with services.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(PurchaseOrder)))


# --- offers ------------------------------------------------------------------------------------------


async def test_offers_are_browsed_by_anyone_cheapest_first_in_keyset_pages(api, services):
    seller = await seller_with_tonnes(api, services, 100)
    await issue(services, seller.registry, seller.id, 1, 50, vintage=2024)
    prices = [9_000, 7_500, 12_000, 7_500, 8_000]
    made = [await offer(api, seller, 10, price=p) for p in prices]
    old = await offer(api, seller, 20, price=6_000, vintage=2024)
    assert all(o["mine"] and o["status"] == "ACTIVE" and o["project"]["code"] == seller.registry.project_code
               for o in made)

    seen, after = [], None
    while True:  # anonymous, two at a time
        page = (await api.data(BROWSE, {"sort": "PRICE_ASC", "first": 2, "after": after}))["cerOffers"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert [o["pricePerTonneFen"] for o in seen] == [6_000, 7_500, 7_500, 8_000, 9_000, 12_000]
    assert len({o["id"] for o in seen}) == 6 and not any(o["mine"] for o in seen)
    desc = (await api.data(BROWSE, {"sort": "PRICE_DESC", "first": 10}))["cerOffers"]["edges"]
    assert [e["node"]["pricePerTonneFen"] for e in desc] == [12_000, 9_000, 8_000, 7_500, 7_500, 6_000]
    only_2024 = (await api.data(BROWSE, {"sort": "NEWEST", "first": 10, "filter": {"vintage": 2024}}))["cerOffers"]
    assert [e["node"]["id"] for e in only_2024["edges"]] == [old["id"]]
    cheap = (await api.data(BROWSE, {"sort": "PRICE_ASC", "first": 10, "filter": {
        "projectId": str(seller.registry.project_id), "maxPricePerTonneFen": 7_500}}))["cerOffers"]["edges"]
    assert len(cheap) == 3
    nothing = (await api.data(BROWSE, {"sort": "PRICE_ASC", "first": 10, "filter": {"projectId": "nonsense"}}))
    assert nothing["cerOffers"]["edges"] == []
    bad = await api.gql(BROWSE, {"sort": "PRICE_ASC", "first": 101})
    assert [e["extensions"]["code"] for e in bad["errors"]] == ["INVALID_PAGE_SIZE"]
    forged = await api.gql(BROWSE, {"sort": "PRICE_ASC", "first": 2, "after": "bm90IGEgY3Vyc29y"})
    assert [e["extensions"]["code"] for e in forged["errors"]] == ["INVALID_CURSOR"]


async def test_an_offer_needs_tonnes_the_seller_holds_and_has_not_offered(api, services):
    seller = await seller_with_tonnes(api, services, 30)
    first = await create(api, seller, quantity=20)
    assert first["errors"] == [] and first["offer"]["quantityAvailable"] == 20
    over = await create(api, seller, quantity=11)  # only 10 are not on offer yet
    assert codes(over) == ["INSUFFICIENT_TONNES"] and over["errors"][0]["field"] == "quantity"
    assert (await create(api, seller, quantity=10))["errors"] == []
    assert codes(await create(api, seller, quantity=1, vintage=2024)) == ["INSUFFICIENT_TONNES"]
    assert codes(await create(api, seller, pricePerTonneFen=0)) == ["INVALID_PRICE"]
    assert codes(await create(api, seller, quantity=0)) == ["INVALID"]
    assert codes(await create(api, seller, quantity=5, minPurchase=6)) == ["INVALID"]
    assert codes(await create(api, seller, projectId=str(uuid.uuid4()))) == ["NOT_FOUND"]
    # a retry with the same key replays; the same key for another offer is refused
    key = uuid.uuid4().hex
    await api.data(WITHDRAW_OFFER, {"input": {"id": first["offer"]["id"]}}, token=seller.actor.token)
    made = await create(api, seller, quantity=4, idempotencyKey=key)
    again = await create(api, seller, quantity=4, idempotencyKey=key)
    assert again["offer"]["id"] == made["offer"]["id"]
    assert codes(await create(api, seller, quantity=5, idempotencyKey=key)) == ["IDEMPOTENCY_KEY_REUSED"]
    # who may offer: CER holders; a regulator may not, nor anyone signed out
    reg = await regulator(api)
    assert codes((await api.data(CREATE_OFFER, {"input": {
        "projectId": str(seller.registry.project_id), "vintage": 2025, "quantity": 1, "pricePerTonneFen": 1,
        "idempotencyKey": "k"}}, token=reg.token))["createCerOffer"]) == ["FORBIDDEN"]
    assert codes((await api.data(CREATE_OFFER, {"input": {
        "projectId": str(seller.registry.project_id), "vintage": 2025, "quantity": 1, "pricePerTonneFen": 1,
        "idempotencyKey": "k"}}))["createCerOffer"]) == ["UNAUTHENTICATED"]
    async with services.session_factory() as session:
        assert int(await session.scalar(select(func.count()).select_from(Offer))) == 3


async def test_a_withdrawn_offer_leaves_the_market(api, services, stripe_world):
    seller = await seller_with_tonnes(api, services, 30)
    sale = await offer(api, seller, 30, price=5_000)
    stranger = await seller_with_tonnes(api, services, 5, name="别家光伏")
    theirs = await api.data(WITHDRAW_OFFER, {"input": {"id": sale["id"]}}, token=stranger.actor.token)
    assert codes(theirs["withdrawCerOffer"]) == ["NOT_FOUND"]
    done = await api.data(WITHDRAW_OFFER, {"input": {"id": sale["id"]}}, token=seller.actor.token)
    assert done["withdrawCerOffer"]["offer"]["status"] == "WITHDRAWN"
    twice = await api.data(WITHDRAW_OFFER, {"input": {"id": sale["id"]}}, token=seller.actor.token)
    assert codes(twice["withdrawCerOffer"]) == ["OFFER_NOT_ACTIVE"]
    assert (await api.data(BROWSE, {"sort": "PRICE_ASC", "first": 10}))["cerOffers"]["edges"] == []
    detail = "query($id: ID!) { cerOffer(id: $id) { id status } }"
    assert (await api.data(detail, {"id": sale["id"]}))["cerOffer"] is None
    assert (await api.data(detail, {"id": sale["id"]}, token=seller.actor.token))["cerOffer"]["status"] == "WITHDRAWN"
    mine = (await api.data(MY_OFFERS, token=seller.actor.token))["myCerOffers"]["edges"]
    assert [(e["node"]["status"], e["node"]["mine"]) for e in mine] == [("WITHDRAWN", True)]
    buyer = await organisation(api)
    assert codes(await buy(api, buyer, sale["id"], 1)) == ["OFFER_NOT_ACTIVE"]
    # the withdrawn tonnes are free to offer again
    assert (await create(api, seller, quantity=30))["errors"] == []


# --- buying ------------------------------------------------------------------------------------------


async def test_buying_is_refused_with_a_code_and_reserves_nothing(api, services, stripe_world):
    seller = await seller_with_tonnes(api, services, 40)
    sale = await offer(api, seller, 20, price=3_000, min_purchase=5)
    buyer = await organisation(api)
    assert codes(await buy(api, buyer, sale["id"], 4)) == ["BELOW_MINIMUM"]
    assert codes(await buy(api, buyer, sale["id"], 21)) == ["INSUFFICIENT_TONNES"]
    assert codes(await buy(api, buyer, sale["id"], 0)) == ["INVALID"]
    assert codes(await buy(api, buyer, str(uuid.uuid4()), 5)) == ["NOT_FOUND"]
    assert codes(await buy(api, buyer, "not-an-id", 5)) == ["NOT_FOUND"]
    assert codes(await buy(api, seller.actor, sale["id"], 5)) == ["CANNOT_BUY_OWN_OFFER"]
    reg = await regulator(api)
    assert codes(await buy(api, reg, sale["id"], 5)) == ["FORBIDDEN"]
    anonymous = await api.data(BUY, {"input": {"offerId": sale["id"], "quantity": 5, "idempotencyKey": "k"}})
    assert codes(anonymous["buyCers"]) == ["UNAUTHENTICATED"]
    # the seller retired tonnes meanwhile: the offer says 20, the seller holds only 15 free
    async with services.session_factory() as session, session.begin():
        from neutrality.cers import blocks
        from neutrality.cers.models import BlockState, MoveKind
        await blocks.move(session=session, clock=services.clock, kind=MoveKind.RETIRE, holder_id=seller.id,
                          from_state=BlockState.HELD, to_state=BlockState.RETIRED, quantity=25,
                          reference_kind="retirement", reference_id=uuid.uuid4())
    assert codes(await buy(api, buyer, sale["id"], 20)) == ["INSUFFICIENT_TONNES"]
    assert await order_count(services) == 0
    async with services.session_factory() as session:
        assert (await session.get(Offer, uuid.UUID(sale["id"]))).quantity_available == 20
    await assert_conserved(services, reserved=0)
    # an individual may buy too (art. 19)
    someone = await person(api, "张三")
    bought = await buy(api, someone, sale["id"], 15)
    assert bought["errors"] == [] and bought["order"]["status"] == "AWAITING_PAYMENT"


async def test_without_a_payment_provider_nothing_is_reserved(api, services):
    seller = await seller_with_tonnes(api, services, 10)
    sale = await offer(api, seller, 10, price=3_000)
    buyer = await organisation(api)
    assert services.payments is None
    refused = await buy(api, buyer, sale["id"], 5)
    assert codes(refused) == ["PAYMENT_PROVIDER_UNAVAILABLE"] and refused["order"] is None
    assert await order_count(services) == 0
    info = (await api.data(INFO))["cerMarketInfo"]
    assert info == {"paymentMode": None, "testMode": True, "currency": "CNY", "reservationMinutes": 30}


async def test_the_api_says_payments_are_in_test_mode(api, services, stripe_world):
    info = (await api.data(INFO))["cerMarketInfo"]
    assert info == {"paymentMode": "TEST_EMULATOR", "testMode": True, "currency": "CNY", "reservationMinutes": 30}
    assert stripe_world.payments.mode.value == "test_emulator"
    assert Payments(api_key="sk_live_x", webhook_secret="whsec_x").mode.value == "live"
    assert Payments(api_key="sk_test_x", webhook_secret="whsec_x").mode.value == "test"
    assert Payments(api_key="sk_test_x", webhook_secret="whsec_x", api_base="http://localhost:12111").mode.value \
        == "test_emulator"


async def test_a_retry_with_the_same_key_returns_the_same_order_and_intent(api, services, stripe_world):
    seller = await seller_with_tonnes(api, services, 20)
    sale = await offer(api, seller, 20, price=4_000)
    buyer = await organisation(api)
    first = await buy(api, buyer, sale["id"], 6, key="buy-1")
    again = await buy(api, buyer, sale["id"], 6, key="buy-1")
    assert again["order"]["id"] == first["order"]["id"]
    assert again["clientSecret"] == first["clientSecret"]
    assert again["order"]["paymentIntentId"] == first["order"]["paymentIntentId"]
    assert codes(await buy(api, buyer, sale["id"], 7, key="buy-1")) == ["IDEMPOTENCY_KEY_REUSED"]
    assert await order_count(services) == 1
    await assert_conserved(services, reserved=6)
    # once paid and delivered, a replay shows the settled order and no secret
    await stripe_world.pay(first["clientSecret"])
    await wait_for_status(services, first["order"]["id"], "delivered")
    settled = await buy(api, buyer, sale["id"], 6, key="buy-1")
    assert settled["order"]["status"] == "DELIVERED" and settled["clientSecret"] is None
    assert len(settled["order"]["deliveredSerials"]) == 1


async def test_an_unreachable_provider_keeps_the_reservation_until_a_retry(api, services, stripe_world):
    """Stripe cannot be reached after the reservation committed: the buyer gets the order and
    PAYMENT_PROVIDER_UNAVAILABLE; the retry with the same key creates the intent."""
    seller = await seller_with_tonnes(api, services, 20)
    sale = await offer(api, seller, 20, price=4_000)
    buyer = await organisation(api)
    down = Payments(api_key=EMULATOR_API_KEY, webhook_secret=stripe_world.emulator.webhook_secret,
                    api_base="http://127.0.0.1:9", emulated=True, max_network_retries=0)
    services.payments = down
    try:
        failed = await buy(api, buyer, sale["id"], 8, key="retry-me")
    finally:
        services.payments = stripe_world.payments
        await down.aclose()
    assert codes(failed) == ["PAYMENT_PROVIDER_UNAVAILABLE"]
    assert failed["order"]["status"] == "AWAITING_PAYMENT" and failed["order"]["paymentIntentId"] is None
    assert failed["clientSecret"] is None
    await assert_conserved(services, reserved=8)
    retried = await buy(api, buyer, sale["id"], 8, key="retry-me")
    assert retried["errors"] == [] and retried["order"]["id"] == failed["order"]["id"]
    assert retried["clientSecret"].startswith(retried["order"]["paymentIntentId"])
    await stripe_world.pay(retried["clientSecret"])
    await wait_for_status(services, retried["order"]["id"], "delivered")
    assert await tonnes(services, buyer.account_id) == 8


async def test_a_payment_the_provider_refuses_releases_the_tonnes(api, services, stripe_world, monkeypatch):
    seller = await seller_with_tonnes(api, services, 20)
    sale = await offer(api, seller, 20, price=4_000)
    buyer = await organisation(api)

    async def refuse(**_):
        raise PaymentRefused(message="The payment provider refused the request.")

    monkeypatch.setattr(stripe_world.payments, "create_intent", refuse)
    refused = await buy(api, buyer, sale["id"], 8)
    assert codes(refused) == ["PAYMENT_REFUSED"] and refused["order"]["status"] == "CANCELED"
    async with services.session_factory() as session:
        assert (await session.get(Offer, uuid.UUID(sale["id"]))).quantity_available == 20
    await assert_conserved(services, reserved=0)


async def test_each_side_sees_its_own_orders_and_buyers_may_resell(api, services, stripe_world):
    seller = await seller_with_tonnes(api, services, 50)
    sale = await offer(api, seller, 50, price=6_000)
    buyer = await organisation(api, "深圳绿色会展有限公司")
    bought = await buy(api, buyer, sale["id"], 30)
    await stripe_world.pay(bought["clientSecret"])
    await wait_for_status(services, bought["order"]["id"], "delivered")
    other = await organisation(api, "旁观者")
    services.clock.advance(minutes=1)  # newest first
    pending = await buy(api, other, sale["id"], 5)

    mine = (await api.data("query { myPurchaseOrders(first: 10) { edges { node { id status } } } }",
                           token=buyer.token))["myPurchaseOrders"]["edges"]
    assert [e["node"]["id"] for e in mine] == [bought["order"]["id"]]
    delivered_only = await api.data(
        "query($s: CerOrderStatus) { myPurchaseOrders(status: $s, first: 10) { edges { node { id } } } }",
        {"s": "AWAITING_PAYMENT"}, token=buyer.token)
    assert delivered_only["myPurchaseOrders"]["edges"] == []
    sold = (await api.data(SELLER_ORDERS, token=seller.actor.token))["sellerOrders"]["edges"]
    assert [(e["node"]["id"], e["node"]["status"]) for e in sold] == [
        (pending["order"]["id"], "AWAITING_PAYMENT"), (bought["order"]["id"], "DELIVERED")]
    assert (await api.data(SELLER_ORDERS, token=buyer.token))["sellerOrders"]["edges"] == []
    # the seller's view names no buyer, by construction of its type
    seller_fields = set(build_schema(live_schema_sdl()).type_map["CerSellerOrder"].fields)
    assert not {f for f in seller_fields if "buyer" in f.lower() or "email" in f.lower() or "intent" in f.lower()}
    # the buyer resells part of what it bought
    resale = await api.data(CREATE_OFFER, {"input": {
        "projectId": str(seller.registry.project_id), "vintage": 2025, "quantity": 10, "pricePerTonneFen": 6_500,
        "idempotencyKey": "resale"}}, token=buyer.token)
    assert resale["createCerOffer"]["errors"] == [] and resale["createCerOffer"]["offer"]["mine"] is True
    assert codes((await api.data(CREATE_OFFER, {"input": {
        "projectId": str(seller.registry.project_id), "vintage": 2025, "quantity": 21, "pricePerTonneFen": 6_500,
        "idempotencyKey": "too-much"}}, token=buyer.token))["createCerOffer"]) == ["INSUFFICIENT_TONNES"]


def test_the_worker_runs_the_cer_reservation_sweep_every_minute():
    settings = worker_module.worker_settings("postgresql+asyncpg://x@/y", "redis://localhost:6379/0")
    [function] = [f for f in settings.functions if f.name == "run_cer_reservation_timeouts"]
    [job] = [j for j in settings.cron_jobs if j.coroutine is function.coroutine]
    assert job.unique and job.minute is None


# --- the front-end contracts, by hash ------------------------------------------------------------


async def test_market_contracts_run_as_persisted_queries(api, services, stripe_world):
    c = PersistedClient(api)
    seller = await seller_with_tonnes(api, services, 40)
    info = (await c.run("CerMarketInfo"))["cerMarketInfo"]
    assert info["paymentMode"] == "TEST_EMULATOR" and info["testMode"] is True
    made = (await c.run("CreateCerOffer", {"input": {
        "projectId": str(seller.registry.project_id), "vintage": 2025, "quantity": 30, "pricePerTonneFen": 8_800,
        "minPurchase": 2, "idempotencyKey": "offer-1"}}, token=seller.actor.token))["createCerOffer"]["offer"]
    spare = (await c.run("CreateCerOffer", {"input": {
        "projectId": str(seller.registry.project_id), "vintage": 2025, "quantity": 10, "pricePerTonneFen": 9_900,
        "idempotencyKey": "offer-2"}}, token=seller.actor.token))["createCerOffer"]["offer"]
    await c.run("WithdrawCerOffer", {"input": {"id": spare["id"]}}, token=seller.actor.token)
    assert len((await c.run("MyCerOffers", {"first": 10}, token=seller.actor.token))["myCerOffers"]["edges"]) == 2

    buyer = await organisation(api, "深圳湾会展有限公司")
    listed = (await c.run("CerOffers", {"sort": "PRICE_ASC", "first": 10}))["cerOffers"]["edges"]
    assert [e["node"]["id"] for e in listed] == [made["id"]]
    assert (await c.run("CerOfferDetail", {"id": made["id"]}))["cerOffer"]["quantityAvailable"] == 30
    bought = (await c.run("BuyCers", {"input": {"offerId": made["id"], "quantity": 12, "idempotencyKey": "buy-1"}},
                          token=buyer.token))["buyCers"]
    assert bought["paymentMode"] == "TEST_EMULATOR" and bought["order"]["amountFen"] == 105_600
    await stripe_world.pay(bought["clientSecret"])
    await wait_for_status(services, bought["order"]["id"], "delivered")
    order = (await c.run("PurchaseOrder", {"id": bought["order"]["id"]}, token=buyer.token))["purchaseOrder"]
    assert order["status"] == "DELIVERED" and len(order["deliveredSerials"]) == 1
    mine = (await c.run("MyPurchaseOrders", {"first": 10}, token=buyer.token))["myPurchaseOrders"]["edges"]
    assert [e["node"]["status"] for e in mine] == ["DELIVERED"]
    sold = (await c.run("SellerOrders", {"first": 10}, token=seller.actor.token))["sellerOrders"]["edges"]
    assert [e["node"]["quantity"] for e in sold] == [12]
    assert c.ran == MARKET_CONTRACTS, f"not exercised: {sorted(MARKET_CONTRACTS - c.ran)}"
