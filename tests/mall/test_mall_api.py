"""The points mall through the public API: merchants list, anyone browses, people redeem with
idempotency keys, merchants fulfil or decline, reservations time out, and the figures add up."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from mall.jobs import redemption_timeout_sweep
from tests.api._conventions import table_counts
from tests.conftest import Actor, approved, person, regulator, sign_in

CREATE_RULE = """
mutation CreateRule($input: CreateExchangeRuleInput!) {
  createExchangeRule(input: $input) { rule { id } errors { code field message } }
}"""
PUBLISH_RULE = """
mutation PublishRule($input: PublishExchangeRuleInput!) {
  publishExchangeRule(input: $input) { rule { id status } errors { code field message } }
}"""
REPORT = """
mutation Report($input: ReportBehaviourInput!) {
  reportBehaviour(input: $input) { results { reportId status rejectCode points } errors { code field message } }
}"""
LISTING_FIELDS = """id merchantId kind title description category pricePoints stockAvailable perPersonLimit
  availableFrom availableUntil channel appOperatorId status revision publishedAt"""
CREATE_LISTING = """
mutation Create($input: CreateListingInput!) {
  createListing(input: $input) { listing { %s } errors { code field message } }
}""" % LISTING_FIELDS
UPDATE_LISTING = """
mutation Update($input: UpdateListingInput!) {
  updateListing(input: $input) { listing { %s } errors { code field message } }
}""" % LISTING_FIELDS
SET_STATUS = """
mutation SetStatus($input: SetListingStatusInput!) {
  setListingStatus(input: $input) { listing { id status revision publishedAt } errors { code field message } }
}"""
RESTOCK = """
mutation Restock($input: RestockListingInput!) {
  restockListing(input: $input) { listing { id stockAvailable } errors { code field message } }
}"""
MALL = """
query Mall($filter: MallFilter, $sort: ListingSort! = NEWEST, $first: Int, $after: String) {
  mall(filter: $filter, sort: $sort, first: $first, after: $after) {
    edges { cursor node { id title pricePoints stockAvailable status channel merchantId } }
    pageInfo { hasNextPage endCursor }
  }
}"""
LISTING = "query One($id: ID!) { listing(id: $id) { %s } }" % LISTING_FIELDS
MY_LISTINGS = "{ myListings(first: 50) { edges { node { id title status } } } }"
REDEMPTION_FIELDS = "id listingId title quantity unitPricePoints points status voucherCode heldUntil createdAt settledAt"
REDEEM = """
mutation Redeem($input: RedeemInput!) {
  redeem(input: $input) { redemption { %s } errors { code field message } }
}""" % REDEMPTION_FIELDS
MY_REDEMPTIONS = "{ myRedemptions(first: 50) { edges { node { %s } } } }" % REDEMPTION_FIELDS
CANCEL = """
mutation Cancel($input: CancelRedemptionInput!) {
  cancelRedemption(input: $input) { redemption { id status points } errors { code field message } }
}"""
MERCHANT_REDEMPTION_FIELDS = "id listingId title quantity points status heldUntil createdAt settledAt settledReason"
DECLINE = """
mutation Decline($input: DeclineRedemptionInput!) {
  declineRedemption(input: $input) { redemption { %s } errors { code field message } }
}""" % MERCHANT_REDEMPTION_FIELDS
FULFIL = """
mutation Fulfil($input: FulfilRedemptionInput!) {
  fulfilRedemption(input: $input) {
    redemption { %s }
    cancellation { id points channel lots { lotId points } at }
    errors { code field message }
  }
}""" % MERCHANT_REDEMPTION_FIELDS
MERCHANT_REDEMPTIONS = "{ merchantRedemptions(first: 50) { edges { node { %s } } } }" % MERCHANT_REDEMPTION_FIELDS
VERIFY = "query Verify($code: String!) { verifyVoucher(code: $code) { %s } }" % MERCHANT_REDEMPTION_FIELDS
WALLET = """
{ myWallet { balance held lots(first: 20) { edges { node { id expiresAt pointsCredited pointsRemaining pointsHeld } } } } }
"""
AUDIT = "{ ledgerAudit { ok mismatches { subject field } totals { issued outstanding held cancelled expired reconciles } } }"
FIGURES = "{ %s(since: \"2026-03-01\", until: \"2026-03-31\") { day channel appOperatorId merchantId redemptions points } }"


# --- the cast ----------------------------------------------------------------------------------


class Mall:
    """Regulator, an app operator (with an API key and a reporting rule), two merchants and people."""

    def __init__(self, api, clock):
        self.api, self.clock = api, clock
        self.people: dict[str, Actor] = {}
        self.externals: dict[str, str] = {}

    async def open(self) -> "Mall":
        api, clock = self.api, self.clock
        self.reg = await regulator(api)
        created = await api.data(CREATE_RULE, {"input": {
            "points": 1, "reductionMg": 10_000, "dailyCapPoints": 5000, "acceptanceWindowDays": 7,
            "effectiveFrom": clock.now().isoformat()}}, token=self.reg.token)
        rule = created["createExchangeRule"]["rule"]
        published = await api.data(PUBLISH_RULE, {"input": {"id": rule["id"]}}, token=self.reg.token)
        assert published["publishExchangeRule"]["errors"] == []
        clock.advance(minutes=2)  # behaviour occurs after the rule takes effect
        self.operator = await approved(api, "APP_OPERATOR", reg=self.reg)
        self.key = (await api.data('mutation { createApiKey(input: {name: "reporting", scopes: [REPORT_BEHAVIOUR, INVITE_ENTRUSTMENTS]}) { secret errors { code } } }',
                                   token=self.operator.token))["createApiKey"]["secret"]
        self.merchant = await approved(api, "MERCHANT", name="绿色生活百货", reg=self.reg)
        self.merchant2 = await approved(api, "MERCHANT", name="低碳骑行服务", reg=self.reg)
        return self

    async def newcomer(self, name: str) -> Actor:
        """A person who entrusted the operator (so it can report their behaviour)."""
        someone = await person(self.api, name)
        external = f"ext-{name}-{len(self.people)}"
        invitation = await self.api.data(
            "mutation($e: String!) { createEntrustmentInvitation(input: {externalUserId: $e})"
            " { invitation { code } errors { code } } }", {"e": external}, api_key=self.key)
        code = invitation["createEntrustmentInvitation"]["invitation"]["code"]
        accepted = await self.api.data(
            "mutation($c: String!) { acceptEntrustment(input: {code: $c, agreementVersion: \"2026-01\"})"
            " { errors { code } } }", {"c": code}, token=someone.token)
        assert accepted["acceptEntrustment"]["errors"] == []
        self.people[name], self.externals[name] = someone, external
        return someone

    async def earn(self, name: str, quantity: str, report_id: str) -> int:
        """The operator reports metro kilometres (46.8 g/person-km, 1 point per 10 g)."""
        at = (self.clock.now() - timedelta(minutes=1)).isoformat()
        body = await self.api.data(REPORT, {"input": {"items": [
            {"reportId": report_id, "externalUserId": self.externals[name], "methodologyCode": "SZ-METRO",
             "quantity": quantity, "occurredAt": at}]}}, api_key=self.key)
        [result] = body["reportBehaviour"]["results"]
        assert result["status"] == "CREDITED", result
        return result["points"]

    async def refresh(self) -> None:
        """Sign everyone in afresh after the clock moved past the access tokens' 15 minutes."""
        for attr in ("reg", "operator", "merchant", "merchant2"):
            setattr(self, attr, await sign_in(self.api, getattr(self, attr).login))
        for name, actor in list(self.people.items()):
            self.people[name] = await sign_in(self.api, actor.login)

    async def listing(self, merchant: Actor, **fields) -> dict:
        values = {"kind": "GOODS", "title": "竹制牙刷", "category": "daily", "pricePoints": 100, "channel": "PLATFORM",
                  "stock": 5, "perPersonLimit": 2, "description": "可降解竹柄"}
        values.update(fields)
        body = await self.api.data(CREATE_LISTING, {"input": values}, token=merchant.token)
        assert body["createListing"]["errors"] == [], body
        return body["createListing"]["listing"]

    async def activate(self, merchant: Actor, listing_id: str, status: str = "ACTIVE") -> dict:
        body = await self.api.data(SET_STATUS, {"input": {"id": listing_id, "status": status}}, token=merchant.token)
        assert body["setListingStatus"]["errors"] == [], body
        return body["setListingStatus"]["listing"]

    async def redeem(self, who: Actor, listing: dict | str, key: str, quantity: int = 1, **extra) -> dict:
        """`listing` as the person was shown it: they agree to its pricePoints (unless `extra` states a
        price or revision); or only its id, and `extra` says what they agreed to, if anything."""
        if isinstance(listing, dict):
            if "expectedPricePoints" not in extra and "expectedRevision" not in extra:
                extra["expectedPricePoints"] = listing["pricePoints"]
            listing = listing["id"]
        body = await self.api.data(REDEEM, {"input": {"listingId": listing, "quantity": quantity,
                                                      "idempotencyKey": key, **extra}}, token=who.token)
        return body["redeem"]

    async def wallet(self, who: Actor) -> dict:
        return (await self.api.data(WALLET, token=who.token))["myWallet"]

    async def stock(self, listing_id: str, merchant: Actor | None = None) -> int | None:
        """Straight from PostgreSQL (listing(id) is never cached)."""
        token = (merchant or self.merchant).token
        return (await self.api.data(LISTING, {"id": listing_id}, token=token))["listing"]["stockAvailable"]

    async def my_redemptions(self, who: Actor) -> list[dict]:
        return [e["node"] for e in (await self.api.data(MY_REDEMPTIONS, token=who.token))["myRedemptions"]["edges"]]


async def browse(api, **variables) -> list[dict]:
    return [e["node"] for e in (await api.data(MALL, variables))["mall"]["edges"]]


def lots_of(wallet: dict) -> dict[str, tuple[int, int]]:
    return {e["node"]["id"]: (e["node"]["pointsRemaining"], e["node"]["pointsHeld"]) for e in wallet["lots"]["edges"]}


# --- listings and browsing ---------------------------------------------------------------------


async def test_listings_are_drafted_activated_browsed_and_cached(api, clock, services):
    mall = await Mall(api, clock).open()
    m, m2 = mall.merchant, mall.merchant2

    # creation rules: an app mall needs an approved operator; goods need stock
    bad = await api.data(CREATE_LISTING, {"input": {"kind": "GOODS", "title": "x", "category": "c", "pricePoints": 1,
                                                    "channel": "APP", "stock": 1}}, token=m.token)
    assert bad["createListing"]["errors"][0]["code"] == "UNKNOWN_APP_OPERATOR"
    bad = await api.data(CREATE_LISTING, {"input": {"kind": "GOODS", "title": "x", "category": "c", "pricePoints": 1,
                                                    "channel": "APP", "stock": 1, "appOperatorId": m2.account_id}},
                         token=m.token)
    assert bad["createListing"]["errors"][0]["code"] == "UNKNOWN_APP_OPERATOR"
    bad = await api.data(CREATE_LISTING, {"input": {"kind": "GOODS", "title": "x", "category": "c", "pricePoints": 1,
                                                    "channel": "PLATFORM"}}, token=m.token)
    assert bad["createListing"]["errors"][0]["code"] == "INVALID_STOCK"
    bad = await api.data(CREATE_LISTING, {"input": {"kind": "GOODS", "title": "x", "category": "c", "pricePoints": 0,
                                                    "channel": "PLATFORM", "stock": 1}}, token=m.token)
    assert bad["createListing"]["errors"][0]["code"] == "INVALID_PRICE"
    refused = await api.data(CREATE_LISTING, {"input": {"kind": "GOODS", "title": "x", "category": "c",
                                                        "pricePoints": 1, "channel": "PLATFORM", "stock": 1}},
                             token=mall.operator.token)
    assert refused["createListing"]["errors"][0]["code"] == "FORBIDDEN"

    brush = await mall.listing(m, title="竹制牙刷", category="daily", pricePoints=120, stock=5, perPersonLimit=2)
    card = await mall.listing(m, title="地铁纪念卡", category="travel", pricePoints=300, stock=5, perPersonLimit=2,
                              channel="APP", appOperatorId=mall.operator.account_id, description="限量版")
    bag = await mall.listing(m2, title="环保购物袋", category="daily", pricePoints=50, stock=10, perPersonLimit=None,
                             description="帆布材质")
    repair = await mall.listing(m2, kind="SERVICE", title="自行车保养", category="service", pricePoints=200, stock=None,
                                perPersonLimit=None, description="含链条清洁与润滑")
    assert brush["status"] == "DRAFT" and brush["stockAvailable"] == 5 and brush["perPersonLimit"] == 2
    assert brush["channel"] == "PLATFORM" and brush["appOperatorId"] is None
    assert card["channel"] == "APP" and card["appOperatorId"] == mall.operator.account_id
    assert repair["stockAvailable"] is None and repair["kind"] == "SERVICE"

    # drafts are nobody's business but their merchant's
    assert await browse(api) == []
    assert (await api.data(LISTING, {"id": brush["id"]}))["listing"] is None
    assert (await api.data(LISTING, {"id": brush["id"]}, token=m2.token))["listing"] is None
    assert (await api.data(LISTING, {"id": brush["id"]}, token=m.token))["listing"]["status"] == "DRAFT"

    published = []
    for listing, owner in ((brush, m), (card, m), (bag, m2), (repair, m2)):
        clock.advance(seconds=30)  # distinct publication times, so "newest" has one answer
        activated = await mall.activate(owner, listing["id"])
        assert activated["status"] == "ACTIVE" and activated["publishedAt"] is not None
        assert activated["revision"] == listing["revision"] + 1
        published.append(listing["id"])
    assert (await api.data(LISTING, {"id": brush["id"]}))["listing"]["status"] == "ACTIVE"

    # anonymous browsing: every filter, both sorts, keyset pages
    assert [n["id"] for n in await browse(api)] == published[::-1]
    assert [n["id"] for n in await browse(api, filter={"channel": "APP"})] == [card["id"]]
    assert [n["id"] for n in await browse(api, filter={"appOperatorId": mall.operator.account_id})] == [card["id"]]
    assert {n["id"] for n in await browse(api, filter={"channel": "PLATFORM"})} == {brush["id"], bag["id"], repair["id"]}
    assert {n["id"] for n in await browse(api, filter={"category": "daily"})} == {brush["id"], bag["id"]}
    assert {n["id"] for n in await browse(api, filter={"merchantId": m2.account_id})} == {bag["id"], repair["id"]}
    assert {n["id"] for n in await browse(api, filter={"minPrice": 100, "maxPrice": 250})} == {brush["id"], repair["id"]}
    assert [n["id"] for n in await browse(api, filter={"text": "牙刷"})] == [brush["id"]]
    assert [n["id"] for n in await browse(api, filter={"text": "链条"})] == [repair["id"]]  # the description
    assert await browse(api, filter={"text": "%"}) == []  # wildcards are literal
    assert await browse(api, filter={"merchantId": "not-an-id"}) == []
    assert [n["pricePoints"] for n in await browse(api, sort="PRICE_ASC")] == [50, 120, 200, 300]
    assert [n["pricePoints"] for n in await browse(api, sort="PRICE_DESC")] == [300, 200, 120, 50]
    seen, after, pages = [], None, 0
    while True:
        page = (await api.data(MALL, {"sort": "PRICE_ASC", "first": 3, "after": after}))["mall"]
        seen += [e["node"]["pricePoints"] for e in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert (seen, pages) == ([50, 120, 200, 300], 2)
    first_two = (await api.data(MALL, {"first": 2}))["mall"]
    rest = (await api.data(MALL, {"first": 2, "after": first_two["pageInfo"]["endCursor"]}))["mall"]
    assert [e["node"]["id"] for e in first_two["edges"] + rest["edges"]] == published[::-1]
    assert rest["pageInfo"]["hasNextPage"] is False

    # the catalog cache is really in use: a change behind its back is not seen...
    assert (await browse(api, filter={"category": "daily"}, sort="PRICE_ASC"))[1]["title"] == "竹制牙刷"
    async with services.session_factory() as session:
        async with session.begin():
            await session.execute(text("UPDATE listings SET title = 'behind the back' WHERE id = :id"),
                                  {"id": brush["id"]})
    assert (await browse(api, filter={"category": "daily"}, sort="PRICE_ASC"))[1]["title"] == "竹制牙刷"
    # ...but every change through the API shows at once
    updated = await api.data(UPDATE_LISTING, {"input": {"id": brush["id"], "title": "竹制牙刷（两支装）"}}, token=m.token)
    assert updated["updateListing"]["errors"] == [] and updated["updateListing"]["listing"]["revision"] == 3
    assert (await browse(api, filter={"category": "daily"}, sort="PRICE_ASC"))[1]["title"] == "竹制牙刷（两支装）"
    assert (await browse(api))[-1]["title"] == "竹制牙刷（两支装）"
    await mall.activate(m, brush["id"], "PAUSED")
    assert brush["id"] not in [n["id"] for n in await browse(api, filter={"category": "daily"}, sort="PRICE_ASC")]
    assert brush["id"] not in [n["id"] for n in await browse(api)]
    assert (await api.data(LISTING, {"id": brush["id"]}))["listing"] is None
    restocked = await api.data(RESTOCK, {"input": {"id": bag["id"], "quantity": 5, "idempotencyKey": "rs-1"}},
                               token=m2.token)
    assert restocked["restockListing"]["listing"]["stockAvailable"] == 15
    assert (await browse(api, filter={"merchantId": m2.account_id}, sort="PRICE_ASC"))[0]["stockAvailable"] == 15
    again = await api.data(RESTOCK, {"input": {"id": bag["id"], "quantity": 5, "idempotencyKey": "rs-1"}},
                           token=m2.token)
    assert again["restockListing"]["listing"]["stockAvailable"] == 15  # replayed, not restocked twice

    # a merchant edits only its own listings and sees only its own in myListings
    foreign = await api.data(UPDATE_LISTING, {"input": {"id": bag["id"], "title": "mine now"}}, token=m.token)
    assert foreign["updateListing"]["errors"][0]["code"] == "NOT_FOUND"
    foreign = await api.data(SET_STATUS, {"input": {"id": bag["id"], "status": "PAUSED"}}, token=m.token)
    assert foreign["setListingStatus"]["errors"][0]["code"] == "NOT_FOUND"
    mine = {n["id"]: n["status"] for n in
            (e["node"] for e in (await api.data(MY_LISTINGS, token=m.token))["myListings"]["edges"])}
    assert mine == {brush["id"]: "PAUSED", card["id"]: "ACTIVE"}
    theirs = {e["node"]["id"] for e in (await api.data(MY_LISTINGS, token=m2.token))["myListings"]["edges"]}
    assert theirs == {bag["id"], repair["id"]}
    assert (await api.gql(MY_LISTINGS))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    # an edit that would close the window before it opens is refused, whichever end moves
    start = (clock.now() + timedelta(days=1)).isoformat()
    ok = await api.data(UPDATE_LISTING, {"input": {"id": card["id"], "availableFrom": start}}, token=m.token)
    assert ok["updateListing"]["errors"] == []
    bad = await api.data(UPDATE_LISTING, {"input": {"id": card["id"], "availableUntil": clock.now().isoformat()}},
                         token=m.token)
    assert bad["updateListing"]["errors"][0]["code"] == "INVALID"
    listing = (await api.data(LISTING, {"id": card["id"]}, token=m.token))["listing"]
    assert listing["availableUntil"] is None and listing["revision"] == ok["updateListing"]["listing"]["revision"]

    # listings outside their availability window are not on show
    assert card["id"] not in [n["id"] for n in await browse(api)]  # opens tomorrow
    clock.advance(days=1, seconds=1)
    await mall.refresh()
    assert card["id"] in [n["id"] for n in await browse(api, filter={"channel": "APP"})]
    ended = await api.data(UPDATE_LISTING, {"input": {"id": bag["id"], "availableUntil": clock.now().isoformat()}},
                           token=mall.merchant2.token)
    assert ended["updateListing"]["errors"] == []
    assert bag["id"] not in [n["id"] for n in await browse(api)]

    # archived for good
    archived = await mall.activate(mall.merchant, brush["id"], "ARCHIVED")
    assert archived["status"] == "ARCHIVED"
    back = await api.data(SET_STATUS, {"input": {"id": brush["id"], "status": "ACTIVE"}}, token=mall.merchant.token)
    assert back["setListingStatus"]["errors"][0]["code"] == "INVALID_TRANSITION"
    edit = await api.data(UPDATE_LISTING, {"input": {"id": brush["id"], "title": "again"}}, token=mall.merchant.token)
    assert edit["updateListing"]["errors"][0]["code"] == "LISTING_ARCHIVED"


# --- redeeming ---------------------------------------------------------------------------------


async def test_redeem_replays_by_key_and_every_refusal_changes_nothing(api, clock, services):
    mall = await Mall(api, clock).open()
    m = mall.merchant
    ada = await mall.newcomer("ada")
    assert await mall.earn("ada", "100", "r-1") == 468
    brush = await mall.listing(m, pricePoints=120, stock=5, perPersonLimit=2)
    pricey = await mall.listing(m, title="电动滑板车", pricePoints=5000, stock=3, perPersonLimit=None)
    cheap = await mall.listing(m, title="种子纸书签", pricePoints=10, stock=5, perPersonLimit=None)
    paused = await mall.listing(m, title="旧款水杯", pricePoints=10, stock=5)
    later = await mall.listing(m, title="秋季限定", pricePoints=10, stock=5,
                               availableFrom=(clock.now() + timedelta(days=10)).isoformat())
    over = await mall.listing(m, title="冬季限定", pricePoints=10, stock=5,
                              availableFrom=(clock.now() - timedelta(days=10)).isoformat(),
                              availableUntil=(clock.now() + timedelta(minutes=5)).isoformat())
    draft = await mall.listing(m, title="未上架", pricePoints=10, stock=5)
    for listing in (brush, pricey, cheap, paused, later, over):
        await mall.activate(m, listing["id"])
    await mall.activate(m, paused["id"], "PAUSED")

    first = await mall.redeem(ada, brush, "k-1")
    assert first["errors"] == []
    redemption = first["redemption"]
    assert (redemption["status"], redemption["quantity"], redemption["unitPricePoints"], redemption["points"]) == \
        ("HELD", 1, 120, 120)
    assert len(redemption["voucherCode"]) == 12 and redemption["title"] == "竹制牙刷"
    assert redemption["heldUntil"].startswith((clock.now() + timedelta(minutes=30)).isoformat()[:19])
    assert [(r["id"], r["voucherCode"]) for r in await mall.my_redemptions(ada)] == \
        [(redemption["id"], redemption["voucherCode"])]
    wallet = await mall.wallet(ada)
    assert (wallet["balance"], wallet["held"]) == (348, 120)
    assert await mall.stock(brush["id"]) == 4

    # the same key and input replays; the same key with another input is refused
    again = await mall.redeem(ada, brush, "k-1")
    assert again["errors"] == [] and again["redemption"] == redemption
    reused = await mall.redeem(ada, brush, "k-1", quantity=2)
    assert reused["redemption"] is None and reused["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert (await mall.wallet(ada))["balance"] == 348 and await mall.stock(brush["id"]) == 4
    assert len(await mall.my_redemptions(ada)) == 1

    async def refused(listing: dict, key: str, code: str, quantity: int = 1, **extra) -> None:
        before = (await table_counts(services), await mall.wallet(ada), await mall.stock(listing["id"]))
        body = await mall.redeem(ada, listing, key, quantity=quantity, **extra)
        assert body["redemption"] is None and [e["code"] for e in body["errors"]] == [code], body
        counts, wallet, stock = (await table_counts(services), await mall.wallet(ada),
                                 await mall.stock(listing["id"]))
        # nothing moved; only the key's record is new: the refusal is its answer from now on
        assert (wallet, stock) == before[1:]
        assert counts == {**before[0], "idempotency_records": before[0]["idempotency_records"] + 1}
        assert await mall.redeem(ada, listing, key, quantity=quantity, **extra) == body

    await refused(pricey, "k-2", "INSUFFICIENT_POINTS")
    await refused(cheap, "k-3", "OUT_OF_STOCK", quantity=6)
    await refused(brush, "k-4", "LIMIT_REACHED", quantity=2)
    await refused(paused, "k-5", "NOT_AVAILABLE")
    await refused(later, "k-6", "NOT_AVAILABLE")
    await refused(brush, "k-7", "LISTING_CHANGED", expectedRevision=1)
    await refused(draft, "k-8", "NOT_FOUND")
    await refused(brush, "k-9", "INVALID", quantity=0)
    await refused(cheap, "k-10", "INVALID", quantity=101)
    before = await table_counts(services)
    bad_key = await mall.redeem(ada, brush, " ")
    assert bad_key["errors"][0]["code"] == "INVALID"
    assert await table_counts(services) == before  # no key, no record

    # a refused key keeps its refusal: the corrected input is another request, with a key of its own
    current = (await api.data(LISTING, {"id": brush["id"]}))["listing"]["revision"]
    reused = await mall.redeem(ada, brush, "k-7", expectedRevision=current)
    assert reused["redemption"] is None and reused["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    second = await mall.redeem(ada, brush, "k-7-again", expectedRevision=current)
    assert second["errors"] == [] and second["redemption"]["points"] == 120
    await refused(brush, "k-11", "LIMIT_REACHED")  # two held: the limit counts held ones

    # the window closes
    clock.advance(minutes=5)
    await refused(over, "k-12", "NOT_AVAILABLE")

    # a new price applies to new redemptions only
    updated = await api.data(UPDATE_LISTING, {"input": {"id": cheap["id"], "pricePoints": 15}}, token=m.token)
    assert updated["updateListing"]["errors"] == []
    third = await mall.redeem(ada, cheap, "k-13", quantity=2, expectedPricePoints=15)
    assert third["redemption"]["points"] == 30
    raised = await api.data(UPDATE_LISTING, {"input": {"id": cheap["id"], "pricePoints": 40}}, token=m.token)
    assert raised["updateListing"]["listing"]["pricePoints"] == 40
    mine = {r["id"]: r for r in await mall.my_redemptions(ada)}
    assert (mine[third["redemption"]["id"]]["unitPricePoints"], mine[third["redemption"]["id"]]["points"]) == (15, 30)
    assert mine[redemption["id"]]["points"] == 120
    wallet = await mall.wallet(ada)
    assert (wallet["balance"], wallet["held"]) == (468 - 270, 270)
    # the replay after the price change still answers with what was ordered
    replay = await mall.redeem(ada, cheap, "k-13", quantity=2, expectedPricePoints=15)
    assert replay["redemption"]["id"] == third["redemption"]["id"] and replay["redemption"]["points"] == 30


async def test_a_redemption_is_made_at_the_price_the_person_agreed_to(api, clock, services):
    """Issue 8: redeem without expectedRevision held the new price after the merchant raised it.
    The client states the unit price the person agreed to (or the revision they saw)."""
    mall = await Mall(api, clock).open()
    m = mall.merchant
    ada = await mall.newcomer("ada")
    await mall.earn("ada", "100", "r-1")  # 468 points
    brush = await mall.listing(m, pricePoints=100, stock=5, perPersonLimit=None)
    await mall.activate(m, brush["id"])
    raised = await api.data(UPDATE_LISTING, {"input": {"id": brush["id"], "pricePoints": 150}}, token=m.token)
    assert raised["updateListing"]["listing"]["pricePoints"] == 150

    async def refused(key: str, code: str, field: str, **extra) -> dict:
        before = (await table_counts(services), await mall.wallet(ada), await mall.stock(brush["id"]))
        body = await mall.redeem(ada, brush["id"], key, **extra)
        assert body["redemption"] is None
        assert [(e["code"], e["field"]) for e in body["errors"]] == [(code, field)], body
        counts, wallet, stock = (await table_counts(services), await mall.wallet(ada), await mall.stock(brush["id"]))
        assert (wallet, stock) == before[1:] and (wallet["balance"], wallet["held"]) == (468, 0)
        assert {k: v for k, v in counts.items() if k != "idempotency_records"} == \
            {k: v for k, v in before[0].items() if k != "idempotency_records"}
        return body["errors"][0]

    # agreed to 100, the price is 150 now: refused, nothing held
    changed = await refused("p-1", "PRICE_CHANGED", "expectedPricePoints", expectedPricePoints=100)
    assert "150" in changed["message"]
    # nothing agreed: refused
    await refused("p-2", "PRICE_REQUIRED", "expectedPricePoints")
    # a stale revision, even with the right price: refused too
    await refused("p-3", "LISTING_CHANGED", "expectedRevision", expectedPricePoints=150,
                  expectedRevision=brush["revision"])
    assert await mall.my_redemptions(ada) == []

    # agreed to the price shown now: redeemed at it
    current = (await api.data(LISTING, {"id": brush["id"]}))["listing"]
    agreed = await mall.redeem(ada, current, "p-4")
    assert agreed["errors"] == []
    assert (agreed["redemption"]["unitPricePoints"], agreed["redemption"]["points"]) == (150, 150)
    by_revision = await mall.redeem(ada, brush["id"], "p-5", expectedRevision=current["revision"])
    assert by_revision["errors"] == [] and by_revision["redemption"]["points"] == 150
    wallet = await mall.wallet(ada)
    assert (wallet["balance"], wallet["held"]) == (168, 300)


async def test_a_key_refused_out_of_stock_is_refused_again_after_restock(api, clock, services):
    """Issue 8: refusals were not recorded, so a key first refused OUT_OF_STOCK later got a
    redemption. The same key and input replay the first answer, refusal included."""
    mall = await Mall(api, clock).open()
    m = mall.merchant
    ada, bo = await mall.newcomer("ada"), await mall.newcomer("bo")
    await mall.earn("ada", "100", "r-1")
    await mall.earn("bo", "100", "r-2")
    last = await mall.listing(m, title="最后一件", pricePoints=100, stock=1, perPersonLimit=None)
    await mall.activate(m, last["id"])
    assert (await mall.redeem(ada, last, "ada-1"))["errors"] == []
    sold_out = await mall.redeem(bo, last, "bo-1")
    assert sold_out["redemption"] is None and [e["code"] for e in sold_out["errors"]] == ["OUT_OF_STOCK"]

    restocked = await api.data(RESTOCK, {"input": {"id": last["id"], "quantity": 5, "idempotencyKey": "rs-1"}},
                               token=m.token)
    assert restocked["restockListing"]["listing"]["stockAvailable"] == 5
    again = await mall.redeem(bo, last, "bo-1")
    assert again == sold_out
    assert await mall.my_redemptions(bo) == []
    assert await mall.stock(last["id"]) == 5
    assert ((await mall.wallet(bo))["balance"], (await mall.wallet(bo))["held"]) == (468, 0)
    # asking again is a new request, with a new key
    fresh = await mall.redeem(bo, last, "bo-2")
    assert fresh["errors"] == [] and await mall.stock(last["id"]) == 4


async def test_a_key_refused_for_insufficient_points_stays_refused_after_points_arrive(api, clock, services):
    mall = await Mall(api, clock).open()
    m = mall.merchant
    ada = await mall.newcomer("ada")
    await mall.earn("ada", "20", "r-1")  # 93 points
    scooter = await mall.listing(m, title="折叠自行车", pricePoints=400, stock=3, perPersonLimit=None)
    await mall.activate(m, scooter["id"])
    short = await mall.redeem(ada, scooter, "s-1")
    assert [e["code"] for e in short["errors"]] == ["INSUFFICIENT_POINTS"]

    await mall.earn("ada", "100", "r-2")  # 468 more: 561 in all
    again = await mall.redeem(ada, scooter, "s-1")
    assert again == short
    wallet = await mall.wallet(ada)
    assert (wallet["balance"], wallet["held"]) == (561, 0) and await mall.my_redemptions(ada) == []
    assert await mall.stock(scooter["id"]) == 3
    fresh = await mall.redeem(ada, scooter, "s-2")
    assert fresh["errors"] == [] and fresh["redemption"]["points"] == 400


async def test_a_fulfilment_retried_after_a_lost_answer_returns_the_same_success(api, clock, services):
    """Issue 8: fulfilRedemption retried by the same merchant after a lost answer said NOT_HELD."""
    mall = await Mall(api, clock).open()
    m, m2 = mall.merchant, mall.merchant2
    ada = await mall.newcomer("ada")
    await mall.earn("ada", "100", "r-1")
    brush = await mall.listing(m, pricePoints=120, stock=5)
    await mall.activate(m, brush["id"])
    held = (await mall.redeem(ada, brush, "f-1"))["redemption"]

    done = (await api.data(FULFIL, {"input": {"code": held["voucherCode"]}}, token=m.token))["fulfilRedemption"]
    assert done["errors"] == [] and done["redemption"]["status"] == "FULFILLED"
    clock.advance(minutes=40)  # past the reservation: the retry still finds what was done
    await mall.refresh()
    m, m2, ada = mall.merchant, mall.merchant2, mall.people["ada"]
    before = await table_counts(services)
    retried = (await api.data(FULFIL, {"input": {"code": held["voucherCode"].lower()}},
                              token=m.token))["fulfilRedemption"]
    assert retried == done  # the same redemption and the same cancellation record
    assert await table_counts(services) == before  # nothing cancelled twice
    wallet = await mall.wallet(ada)
    assert (wallet["balance"], wallet["held"]) == (468 - 120, 0)

    # another merchant still learns nothing, and a redemption that was not fulfilled is refused
    stolen = (await api.data(FULFIL, {"input": {"code": held["voucherCode"]}}, token=m2.token))["fulfilRedemption"]
    assert stolen["redemption"] is None and stolen["errors"][0]["code"] == "UNKNOWN_CODE"
    other = (await mall.redeem(ada, brush, "f-2"))["redemption"]
    cancelled = (await api.data(CANCEL, {"input": {"id": other["id"]}}, token=ada.token))["cancelRedemption"]
    assert cancelled["errors"] == []
    late = (await api.data(FULFIL, {"input": {"code": other["voucherCode"]}}, token=m.token))["fulfilRedemption"]
    assert late["redemption"] is None and late["errors"][0]["code"] == "NOT_HELD"
    audit = (await api.data(AUDIT, token=mall.reg.token))["ledgerAudit"]
    assert audit["ok"] and audit["totals"]["cancelled"] == 120


async def test_merchant_fulfils_without_seeing_who_and_the_points_are_cancelled_for_good(api, clock, services):
    mall = await Mall(api, clock).open()
    m, m2 = mall.merchant, mall.merchant2
    ada = await mall.newcomer("ada")
    bo = await mall.newcomer("bo")
    await mall.earn("ada", "100", "r-1")
    await mall.earn("bo", "100", "r-2")
    brush = await mall.listing(m, pricePoints=120, stock=5)
    card = await mall.listing(m, title="地铁纪念卡", pricePoints=80, stock=5, channel="APP",
                              appOperatorId=mall.operator.account_id)
    bag = await mall.listing(m2, title="环保购物袋", pricePoints=50, stock=5)
    for listing, owner in ((brush, m), (card, m), (bag, m2)):
        await mall.activate(owner, listing["id"])
    a1 = (await mall.redeem(ada, brush, "a1"))["redemption"]
    a2 = (await mall.redeem(ada, card, "a2", quantity=2))["redemption"]
    b1 = (await mall.redeem(bo, bag, "b1"))["redemption"]
    b2 = (await mall.redeem(bo, brush, "b2"))["redemption"]

    # the merchant's type carries no code and no person
    fields = (await api.data('{ __type(name: "MerchantRedemption") { fields { name } } }'))["__type"]["fields"]
    names = {f["name"].lower() for f in fields}
    assert not names & {"vouchercode", "code", "walletid", "wallet", "email", "accountid", "person", "displayname",
                        "phone", "name"}
    listed = (await api.data(MERCHANT_REDEMPTIONS, token=m.token))["merchantRedemptions"]["edges"]
    assert {e["node"]["id"] for e in listed} == {a1["id"], a2["id"], b2["id"]}
    raw = str(listed)
    assert a1["voucherCode"] not in raw and ada.account_id not in raw and ada.login not in raw
    theirs = (await api.data(MERCHANT_REDEMPTIONS, token=m2.token))["merchantRedemptions"]["edges"]
    assert [e["node"]["id"] for e in theirs] == [b1["id"]]

    # verify: the owner shows the code; another merchant learns nothing and cannot fulfil it
    found = (await api.data(VERIFY, {"code": a1["voucherCode"].lower()}, token=m.token))["verifyVoucher"]
    assert found["id"] == a1["id"] and found["status"] == "HELD" and found["points"] == 120
    assert (await api.data(VERIFY, {"code": a1["voucherCode"]}, token=m2.token))["verifyVoucher"] is None
    assert (await api.data(VERIFY, {"code": "NOSUCHCODE23"}, token=m.token))["verifyVoucher"] is None
    stolen = await api.data(FULFIL, {"input": {"code": a1["voucherCode"]}}, token=m2.token)
    assert stolen["fulfilRedemption"]["errors"][0]["code"] == "UNKNOWN_CODE"
    assert stolen["fulfilRedemption"]["redemption"] is None
    foreign = await api.data(DECLINE, {"input": {"id": a1["id"], "reason": "no"}}, token=m2.token)
    assert foreign["declineRedemption"]["errors"][0]["code"] == "NOT_FOUND"
    assert (await api.data(VERIFY, {"code": a1["voucherCode"]}, token=m.token))["verifyVoucher"]["status"] == "HELD"

    wallet = await mall.wallet(ada)
    assert (wallet["balance"], wallet["held"]) == (468 - 280, 280)
    [lot] = lots_of(wallet)
    done = (await api.data(FULFIL, {"input": {"code": a1["voucherCode"]}}, token=m.token))["fulfilRedemption"]
    assert done["errors"] == []
    assert done["redemption"]["status"] == "FULFILLED" and done["redemption"]["settledAt"] is not None
    assert done["cancellation"]["points"] == 120 and done["cancellation"]["channel"] == "PLATFORM"
    assert done["cancellation"]["lots"] == [{"lotId": lot, "points": 120}]
    wallet = await mall.wallet(ada)
    assert (wallet["balance"], wallet["held"]) == (468 - 280, 160)  # gone for good, not back
    assert lots_of(wallet)[lot] == (468 - 280, 160)
    assert await mall.stock(brush["id"]) == 3  # sold: stays out
    twice = (await api.data(FULFIL, {"input": {"code": a1["voucherCode"]}}, token=m.token))["fulfilRedemption"]
    assert twice == done  # a retry replays the fulfilment; nothing is cancelled twice
    late = (await api.data(CANCEL, {"input": {"id": a1["id"]}}, token=ada.token))["cancelRedemption"]
    assert late["errors"][0]["code"] == "NOT_HELD"
    declined = (await api.data(DECLINE, {"input": {"id": a1["id"], "reason": "out of stock"}},
                               token=m.token))["declineRedemption"]
    assert declined["errors"][0]["code"] == "NOT_HELD"
    mine = {r["id"]: r["status"] for r in await mall.my_redemptions(ada)}
    assert mine == {a1["id"]: "FULFILLED", a2["id"]: "HELD"}

    for code, merchant in ((a2["voucherCode"], m), (b1["voucherCode"], m2)):
        body = (await api.data(FULFIL, {"input": {"code": code}}, token=merchant.token))["fulfilRedemption"]
        assert body["errors"] == [] and body["redemption"]["status"] == "FULFILLED"
    audit = (await api.data(AUDIT, token=mall.reg.token))["ledgerAudit"]
    assert audit["ok"] and audit["mismatches"] == []
    assert audit["totals"] == {"issued": 936, "outstanding": 936 - 280 - 170, "held": 120, "cancelled": 330,
                               "expired": 0, "reconciles": True}

    # the figures: per day, channel, app operator and merchant (art. 23)
    day = "2026-03-02"
    figures = (await api.data(FIGURES % "cancelledPoints", token=mall.reg.token))["cancelledPoints"]
    assert sorted(figures, key=lambda f: (f["channel"], f["merchantId"])) == sorted([
        {"day": day, "channel": "PLATFORM", "appOperatorId": None, "merchantId": m.account_id, "redemptions": 1,
         "points": 120},
        {"day": day, "channel": "PLATFORM", "appOperatorId": None, "merchantId": m2.account_id, "redemptions": 1,
         "points": 50},
        {"day": day, "channel": "APP", "appOperatorId": mall.operator.account_id, "merchantId": m.account_id,
         "redemptions": 1, "points": 160},
    ], key=lambda f: (f["channel"], f["merchantId"]))
    app = (await api.data(FIGURES % "appMallCancelledPoints", token=mall.operator.token))["appMallCancelledPoints"]
    assert app == [{"day": day, "channel": "APP", "appOperatorId": mall.operator.account_id,
                    "merchantId": m.account_id, "redemptions": 1, "points": 160}]
    assert (await api.data(FIGURES % "appMallCancelledPoints", api_key=mall.key))["appMallCancelledPoints"] == app
    own = (await api.data(FIGURES % "merchantCancelledPoints", token=m.token))["merchantCancelledPoints"]
    assert sorted((f["channel"], f["points"]) for f in own) == [("APP", 160), ("PLATFORM", 120)]
    assert {f["merchantId"] for f in own} == {m.account_id}
    own2 = (await api.data(FIGURES % "merchantCancelledPoints", token=m2.token))["merchantCancelledPoints"]
    assert [(f["channel"], f["points"]) for f in own2] == [("PLATFORM", 50)]
    outside = await api.data('{ cancelledPoints(since: "2026-02-01", until: "2026-02-28") { points } }',
                             token=mall.reg.token)
    assert outside["cancelledPoints"] == []
    for query, actor in (("cancelledPoints", m), ("cancelledPoints", mall.operator), ("appMallCancelledPoints", m),
                         ("merchantCancelledPoints", mall.operator), ("merchantCancelledPoints", ada)):
        body = await api.gql(FIGURES % query, token=actor.token)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (query, body)


async def test_cancel_and_decline_give_the_points_back_to_the_very_lots(api, clock, services):
    mall = await Mall(api, clock).open()
    m = mall.merchant
    ada = await mall.newcomer("ada")
    await mall.earn("ada", "20", "r-1")  # 93 points, expiring first
    clock.advance(days=1)
    await mall.refresh()
    ada, m = mall.people["ada"], mall.merchant
    await mall.earn("ada", "100", "r-2")  # 468 points, a day later
    scooter = await mall.listing(m, title="折叠自行车", pricePoints=100, stock=3, perPersonLimit=None)
    await mall.activate(m, scooter["id"])
    before = await mall.wallet(ada)
    lots_before = lots_of(before)
    [soon, late] = [e["node"]["id"] for e in before["lots"]["edges"]]  # soonest expiry first
    assert lots_before == {soon: (93, 0), late: (468, 0)}

    held = (await mall.redeem(ada, scooter, "c-1", quantity=2))["redemption"]
    assert held["points"] == 200
    assert lots_of(await mall.wallet(ada)) == {soon: (0, 93), late: (361, 107)}  # soonest-expiring first
    assert await mall.stock(scooter["id"]) == 1
    other = await mall.newcomer("bo")
    theft = (await api.data(CANCEL, {"input": {"id": held["id"]}}, token=other.token))["cancelRedemption"]
    assert theft["errors"][0]["code"] == "NOT_FOUND" and theft["redemption"] is None
    cancelled = (await api.data(CANCEL, {"input": {"id": held["id"]}}, token=ada.token))["cancelRedemption"]
    assert cancelled["errors"] == [] and cancelled["redemption"]["status"] == "CANCELLED"
    after = await mall.wallet(ada)
    assert lots_of(after) == lots_before and (after["balance"], after["held"]) == (561, 0)
    assert await mall.stock(scooter["id"]) == 3
    again = (await api.data(CANCEL, {"input": {"id": held["id"]}}, token=ada.token))["cancelRedemption"]
    assert again["errors"][0]["code"] == "NOT_HELD"
    fulfil = (await api.data(FULFIL, {"input": {"code": held["voucherCode"]}}, token=m.token))["fulfilRedemption"]
    assert fulfil["errors"][0]["code"] == "NOT_HELD"

    second = (await mall.redeem(ada, scooter, "c-2", quantity=3))["redemption"]
    assert lots_of(await mall.wallet(ada)) == {soon: (0, 93), late: (261, 207)}
    assert await mall.stock(scooter["id"]) == 0
    sold_out = await mall.redeem(ada, scooter, "c-3")
    assert sold_out["errors"][0]["code"] == "OUT_OF_STOCK"
    for reason in ("", "   ", "x" * 501):
        body = (await api.data(DECLINE, {"input": {"id": second["id"], "reason": reason}},
                               token=m.token))["declineRedemption"]
        assert body["errors"][0]["code"] == "REASON_REQUIRED"
    assert lots_of(await mall.wallet(ada)) == {soon: (0, 93), late: (261, 207)}
    declined = (await api.data(DECLINE, {"input": {"id": second["id"], "reason": " 车辆已售罄 "}},
                               token=m.token))["declineRedemption"]
    assert declined["errors"] == []
    assert (declined["redemption"]["status"], declined["redemption"]["settledReason"]) == ("DECLINED", "车辆已售罄")
    after = await mall.wallet(ada)
    assert lots_of(after) == lots_before and (after["balance"], after["held"]) == (561, 0)
    assert await mall.stock(scooter["id"]) == 3
    statuses = {r["id"]: r["status"] for r in await mall.my_redemptions(ada)}
    assert statuses == {held["id"]: "CANCELLED", second["id"]: "DECLINED"}
    audit = (await api.data(AUDIT, token=mall.reg.token))["ledgerAudit"]
    assert audit["ok"] and audit["totals"]["cancelled"] == 0 and audit["totals"]["held"] == 0


async def test_reservations_time_out_and_cannot_be_fulfilled_after(api, clock, services):
    mall = await Mall(api, clock).open()
    m = mall.merchant
    ada = await mall.newcomer("ada")
    await mall.earn("ada", "100", "r-1")
    brush = await mall.listing(m, pricePoints=120, stock=5)
    await mall.activate(m, brush["id"])
    swept = (await mall.redeem(ada, brush, "t-1"))["redemption"]
    clock.advance(minutes=10)
    unswept = (await mall.redeem(ada, brush, "t-2"))["redemption"]
    assert await mall.stock(brush["id"]) == 3

    # not yet due: the sweep leaves both
    assert await redemption_timeout_sweep(session_factory=services.session_factory, clock=clock) == 0
    clock.advance(minutes=21)  # the first is 31 minutes old, the second 21
    await mall.refresh()
    ada, m = mall.people["ada"], mall.merchant
    assert await redemption_timeout_sweep(session_factory=services.session_factory, clock=clock) == 1
    statuses = {r["id"]: r for r in await mall.my_redemptions(ada)}
    assert statuses[swept["id"]]["status"] == "EXPIRED" and statuses[swept["id"]]["settledAt"] is not None
    assert statuses[unswept["id"]]["status"] == "HELD"
    wallet = await mall.wallet(ada)
    assert (wallet["balance"], wallet["held"]) == (348, 120)
    assert await mall.stock(brush["id"]) == 4
    late = (await api.data(FULFIL, {"input": {"code": swept["voucherCode"]}}, token=m.token))["fulfilRedemption"]
    assert late["errors"][0]["code"] == "NOT_HELD"

    # past its time but not yet swept: refused as expired, and nothing changes
    clock.advance(minutes=10)
    late = (await api.data(FULFIL, {"input": {"code": unswept["voucherCode"]}}, token=m.token))["fulfilRedemption"]
    assert late["errors"][0]["code"] == "RESERVATION_EXPIRED"
    assert (await mall.wallet(ada))["held"] == 120
    assert await redemption_timeout_sweep(session_factory=services.session_factory, clock=clock) == 1
    assert await redemption_timeout_sweep(session_factory=services.session_factory, clock=clock) == 0
    wallet = await mall.wallet(ada)
    assert (wallet["balance"], wallet["held"]) == (468, 0)
    assert await mall.stock(brush["id"]) == 5
    reasons = {e["node"]["id"]: e["node"]["settledReason"] for e in
               (await api.data(MERCHANT_REDEMPTIONS, token=m.token))["merchantRedemptions"]["edges"]}
    assert set(reasons.values()) == {"reservation timed out"}
    audit = (await api.data(AUDIT, token=mall.reg.token))["ledgerAudit"]
    assert audit["ok"] and audit["totals"]["held"] == 0 and audit["totals"]["cancelled"] == 0


# --- who may do what ---------------------------------------------------------------------------


async def test_only_people_redeem_and_only_the_owner_ever_sees_a_voucher_code(api, clock, services):
    mall = await Mall(api, clock).open()
    m = mall.merchant
    ada = await mall.newcomer("ada")
    bo = await mall.newcomer("bo")
    await mall.earn("ada", "100", "r-1")
    brush = await mall.listing(m, pricePoints=120, stock=5)
    await mall.activate(m, brush["id"])
    code = (await mall.redeem(ada, brush, "p-1"))["redemption"]["voucherCode"]

    before = await table_counts(services)
    for kwargs in ({"token": mall.operator.token}, {"api_key": mall.key}, {"token": m.token},
                   {"token": mall.reg.token}, {}):
        body = await api.data(REDEEM, {"input": {"listingId": brush["id"], "idempotencyKey": "x"}}, **kwargs)
        expected = "UNAUTHENTICATED" if not kwargs else "FORBIDDEN"
        assert [e["code"] for e in body["redeem"]["errors"]] == [expected], (kwargs, body)
        assert body["redeem"]["redemption"] is None
        cancel = await api.data(CANCEL, {"input": {"id": brush["id"]}}, **kwargs)
        assert cancel["cancelRedemption"]["errors"][0]["code"] == expected
    for actor in (mall.operator, m, mall.reg):
        body = await api.gql(MY_REDEMPTIONS, token=actor.token)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert body.get("data") is None
    for query in (VERIFY, MERCHANT_REDEMPTIONS):
        for kwargs in ({"token": ada.token}, {"token": mall.operator.token}, {"token": mall.reg.token}):
            body = await api.gql(query, {"code": code}, **kwargs)
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    for actor in (ada, mall.operator, mall.reg):
        fulfil = await api.data(FULFIL, {"input": {"code": code}}, token=actor.token)
        assert fulfil["fulfilRedemption"]["errors"][0]["code"] == "FORBIDDEN"
    assert await table_counts(services) == before

    # another person sees nothing of ada's
    assert await mall.my_redemptions(bo) == []
    # every query each non-owner may run answers without the code
    seen = []
    seen.append((await api.gql(MERCHANT_REDEMPTIONS, token=m.token)))
    seen.append((await api.gql(VERIFY, {"code": code}, token=m.token)))
    seen.append((await api.gql(MY_LISTINGS, token=m.token)))
    seen.append((await api.gql(MALL)))
    seen.append((await api.gql(AUDIT, token=mall.reg.token)))
    seen.append((await api.gql(MY_REDEMPTIONS, token=bo.token)))
    assert all(code not in str(body) for body in seen)

    # structurally: only the Redemption type carries a code, and only the owner's fields return it
    schema = (await api.data("""{ __schema { types { name kind fields { name type { name kind ofType { name kind
        ofType { name kind ofType { name kind ofType { name } } } } } } } } }"""))["__schema"]["types"]
    with_code = {t["name"] for t in schema if t["name"] not in ("Query", "Mutation")
                 and any("voucher" in f["name"].lower() for f in (t["fields"] or []))}
    assert with_code == {"Redemption"}

    def names(type_ref) -> set[str]:
        found = set()
        while type_ref:
            if type_ref.get("name"):
                found.add(type_ref["name"])
            type_ref = type_ref.get("ofType")
        return found

    by_name = {t["name"]: t for t in schema}
    reaching: set[str] = set()
    frontier = {"Redemption"}
    while frontier:  # every type from which a Redemption can be reached
        current = frontier.pop()
        for t in schema:
            if t["kind"] == "OBJECT" and t["name"] not in reaching and any(
                    current in names(f["type"]) for f in (t["fields"] or [])):
                reaching.add(t["name"])
                frontier.add(t["name"])
    roots = {f["name"] for root in ("Query", "Mutation") for f in by_name[root]["fields"]
             if names(f["type"]) & (reaching | {"Redemption"})}
    assert roots == {"myRedemptions", "redeem", "cancelRedemption"}
