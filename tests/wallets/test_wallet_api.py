"""Wallets through the public API: an operator reports, the person sees points, the regulator reconciles."""

from __future__ import annotations

from datetime import date, timedelta

from reductions.models import PublicationStatus
from reductions.seeding import seed_methodology
from tests.conftest import Actor, approved, person, regulator

CREATE_RULE = """
mutation CreateRule($input: CreateExchangeRuleInput!) {
  createExchangeRule(input: $input) { rule { id version validityYears } errors { code field message } }
}"""
PUBLISH_RULE = """
mutation PublishRule($input: PublishExchangeRuleInput!) {
  publishExchangeRule(input: $input) { rule { id status } errors { code field message } }
}"""
REPORT = """
mutation Report($input: ReportBehaviourInput!) {
  reportBehaviour(input: $input) {
    results { reportId status rejectCode points reductionMg lotId expiresAt uncreditedReductionMg uncreditedReason }
    errors { code field message }
  }
}"""
WALLET = """
query Wallet {
  myWallet {
    balance held awaitingExpiry lifetimePoints lifetimeReductionGrams carriedFraction
    lifetimeCreditedReductionGrams lifetimeReportedReductionGrams
    lots(first: 10) { edges { node { issueDate expiresAt lastUsableDay pointsCredited pointsRemaining reductionGrams } } }
    expiringSoon(withinDays: 30) { expiresOn points lots }
    history(first: 10) { edges { node { kind points } } }
  }
}"""


async def setup(api, clock) -> tuple[Actor, str, Actor, Actor]:
    reg = await regulator(api)
    created = await api.data(CREATE_RULE, {"input": {
        "points": 1, "reductionMg": 10_000, "dailyCapPoints": 1000, "acceptanceWindowDays": 7,
        "effectiveFrom": clock.now().isoformat()}}, token=reg.token)
    rule = created["createExchangeRule"]["rule"]
    published = await api.data(PUBLISH_RULE, {"input": {"id": rule["id"]}}, token=reg.token)
    assert published["publishExchangeRule"]["errors"] == []
    operator = await approved(api, "APP_OPERATOR", reg=reg)
    key = (await api.data('mutation { createApiKey(input: {name: "reporting", scopes: [REPORT_BEHAVIOUR, INVITE_ENTRUSTMENTS]}) { secret errors { code } } }',
                          token=operator.token))["createApiKey"]["secret"]
    someone = await person(api)
    invitation = await api.data(
        'mutation { createEntrustmentInvitation(input: {externalUserId: "u-381"}) { invitation { code } errors { code } } }',
        api_key=key)
    code = invitation["createEntrustmentInvitation"]["invitation"]["code"]
    accepted = await api.data(
        "mutation($c: String!) { acceptEntrustment(input: {code: $c, agreementVersion: \"2026-01\"}) { errors { code } } }",
        {"c": code}, token=someone.token)
    assert accepted["acceptEntrustment"]["errors"] == []
    clock.advance(minutes=10)  # access tokens live 15 minutes
    return reg, key, someone, operator


async def test_reported_ride_becomes_points_the_person_sees(api, clock):
    reg, key, someone, operator = await setup(api, clock)
    at = (clock.now() - timedelta(minutes=5)).isoformat()
    items = [
        {"reportId": "r-1", "externalUserId": "u-381", "methodologyCode": "SZ-METRO", "quantity": "12.4", "occurredAt": at},
        {"reportId": "r-2", "externalUserId": "u-381", "methodologyCode": "SZ-NOPE", "quantity": "1", "occurredAt": at},
        {"reportId": "r-3", "externalUserId": "u-999", "methodologyCode": "SZ-METRO", "quantity": "1", "occurredAt": at},
    ]
    body = await api.data(REPORT, {"input": {"items": items}}, api_key=key)
    results = {r["reportId"]: r for r in body["reportBehaviour"]["results"]}
    assert results["r-1"]["status"] == "CREDITED" and results["r-1"]["points"] == 58
    assert results["r-1"]["reductionMg"] == 580_320
    assert results["r-2"]["rejectCode"] == "UNKNOWN_METHODOLOGY"
    assert results["r-3"]["rejectCode"] == "NO_ACTIVE_ENTRUSTMENT"
    again = await api.data(REPORT, {"input": {"items": items[:1]}}, api_key=key)
    assert again["reportBehaviour"]["results"][0]["status"] == "DUPLICATE"
    assert again["reportBehaviour"]["results"][0]["points"] == 58

    wallet = (await api.data(WALLET, token=someone.token))["myWallet"]
    assert (wallet["balance"], wallet["held"], wallet["lifetimePoints"]) == (58, 0, 58)
    assert wallet["lifetimeReductionGrams"] == 580  # deprecated: the credited figure
    assert (wallet["lifetimeCreditedReductionGrams"], wallet["lifetimeReportedReductionGrams"]) == (580, 580)
    assert wallet["carriedFraction"] == "4/125"  # 0.032 of a point
    [lot] = [e["node"] for e in wallet["lots"]["edges"]]
    assert lot["issueDate"] == "2026-03-02" and lot["expiresAt"].startswith("2036-03-01T16:00:00")
    assert lot["lastUsableDay"] == "2036-03-01" and lot["pointsRemaining"] == 58
    assert wallet["expiringSoon"] == []
    assert [e["node"]["kind"] for e in wallet["history"]["edges"]] == ["CREDIT"]

    reports = await api.data("{ myReports(first: 10) { edges { node { reportId outcome rejectCode points quantity } } } }",
                             api_key=key)
    assert len(reports["myReports"]["edges"]) == 3
    aggregates = await api.data(
        '{ reportAggregates(since: "2026-03-01", until: "2026-03-31") { day methodologyCode reports credited rejected points } }',
        api_key=key)
    assert {"day": "2026-03-02", "methodologyCode": "SZ-METRO", "reports": 2, "credited": 1, "rejected": 1,
            "points": 58} in aggregates["reportAggregates"]

    totals = await api.data("{ pointTotals { issued outstanding held cancelled expired reconciles }"
                            " ledgerAudit { ok mismatches { subject } }"
                            " pointTotalsByOperator { operatorName totals { issued outstanding reconciles } } }",
                            token=reg.token)
    assert totals["pointTotals"] == {"issued": 58, "outstanding": 58, "held": 0, "cancelled": 0, "expired": 0,
                                     "reconciles": True}
    assert totals["ledgerAudit"] == {"ok": True, "mismatches": []}
    assert totals["pointTotalsByOperator"][0]["totals"] == {"issued": 58, "outstanding": 58, "reconciles": True}


async def test_roles_reach_only_their_own_ledger_views(api, clock):
    reg, key, someone, operator = await setup(api, clock)
    refused = await api.gql("{ myWallet { balance } }", api_key=key)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    refused = await api.gql("{ ledgerAudit { ok } }", token=someone.token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await api.data(REPORT, {"input": {"items": [
        {"reportId": "x", "externalUserId": "u-381", "methodologyCode": "SZ-METRO", "quantity": "1",
         "occurredAt": clock.now().isoformat()}]}}, token=someone.token)
    assert body["reportBehaviour"]["errors"][0]["code"] == "FORBIDDEN"
    too_long = await api.data(CREATE_RULE, {"input": {
        "points": 1, "reductionMg": 10_000, "dailyCapPoints": 1000, "acceptanceWindowDays": 7, "validityYears": 11,
        "effectiveFrom": clock.now().isoformat()}}, token=reg.token)
    assert too_long["createExchangeRule"]["errors"][0]["code"] == "VALIDITY_TOO_LONG"
    # a rule names only a published methodology (art. 14): not an unknown code, not a draft
    rule = {"points": 1, "reductionMg": 10_000, "dailyCapPoints": 1000, "acceptanceWindowDays": 7,
            "effectiveFrom": clock.now().isoformat()}
    unknown = await api.data(CREATE_RULE, {"input": {**rule, "methodologyCode": "SZ-NOPE"}}, token=reg.token)
    assert [(e["code"], e["field"]) for e in unknown["createExchangeRule"]["errors"]] == [
        ("UNKNOWN_METHODOLOGY", "methodologyCode")]
    async with api.services.session_factory() as session, session.begin():
        await seed_methodology(session=session, clock=clock, code="SZ-BIKE", name="共享单车 (test)",
                               behaviour_domain="cycling", activity_unit="km", factor_mg_per_unit=50_000,
                               max_quantity_milli=100_000, effective_from=date(2026, 1, 1),
                               source_reference="test figure", status=PublicationStatus.DRAFT)
    draft_only = await api.data(CREATE_RULE, {"input": {**rule, "methodologyCode": "sz-bike"}}, token=reg.token)
    assert [(e["code"], e["field"]) for e in draft_only["createExchangeRule"]["errors"]] == [
        ("METHODOLOGY_NOT_PUBLISHED", "methodologyCode")]
    published = await api.data(CREATE_RULE, {"input": {**rule, "methodologyCode": "SZ-METRO"}}, token=reg.token)
    assert published["createExchangeRule"]["errors"] == []
    oversized = await api.data(REPORT, {"input": {"items": [
        {"reportId": f"b{n}", "externalUserId": "u-381", "methodologyCode": "SZ-METRO", "quantity": "1",
         "occurredAt": clock.now().isoformat()} for n in range(1001)]}}, api_key=key)
    assert oversized["reportBehaviour"]["errors"][0]["code"] == "INVALID_BATCH"


async def test_no_mutation_moves_points_between_wallets_or_lets_operators_debit(api):
    """Art. 22-23: points are never transferred or sold, and operators and merchants cannot
    take points out of a wallet. The schema itself has no such operation."""
    schema = await api.data("{ __schema { mutationType { fields { name description } } } }")
    fields = schema["__schema"]["mutationType"]["fields"]
    names = {f["name"] for f in fields}
    assert not {n for n in names if any(w in n.lower() for w in ("transfer", "debit", "sell", "send", "gift"))}
    def allowed(field) -> str:
        return (field["description"] or "").rsplit("Allowed:", 1)[-1]

    operator_or_merchant = {f["name"] for f in fields
                            if "app_operator" in allowed(f) or "merchant" in allowed(f) or "anyone" in allowed(f)}
    # Merchants manage listings and stock; fulfilment only posts a hold the owner placed by
    # redeeming, so none of these takes points a person did not commit themselves.
    assert operator_or_merchant <= {"reportBehaviour", "createEntrustmentInvitation", "createApiKey", "revokeApiKey",
                                    "signUp", "login", "refreshSession",
                                    "createListing", "updateListing", "setListingStatus", "restockListing",
                                    "fulfilRedemption", "declineRedemption",
                                    # an approved organisation's methodology application (art. 11): no points move
                                    "applyForMethodologyFiling",
                                    # an approved organisation's scenario application (art. 27): no points move
                                    "applyForScenario"}
    # only the owner's own redemption creates a hold
    redeem = next(f for f in fields if f["name"] == "redeem")
    assert allowed(redeem).strip().rstrip(".") in {"individual", "individual (own wallet)"} or \
        "app_operator" not in allowed(redeem) and "merchant" not in allowed(redeem)


async def test_an_operator_gets_every_expiry_notice_of_its_users_page_after_page(api, clock, monkeypatch):
    """operatorExpiryNotices lists them all: the resolver walks the keyset pages (here 1 a page)."""
    from resolvers import reductions as resolvers
    from wallets.jobs import expiry_sweep

    reg, key, someone, operator = await setup(api, clock)
    for day in range(2):  # one lot a day
        at = (clock.now() - timedelta(minutes=5)).isoformat()
        item = {"reportId": f"r-{day}", "externalUserId": "u-381", "methodologyCode": "SZ-METRO", "quantity": "12.4",
                "occurredAt": at}
        assert (await api.data(REPORT, {"input": {"items": [item]}}, api_key=key)
                )["reportBehaviour"]["results"][0]["status"] == "CREDITED"
        clock.advance(days=1)
    swept = await expiry_sweep(session_factory=api.services.session_factory, clock=clock,
                               as_of=clock.now() + timedelta(days=3650 - 20))
    assert swept.notices_issued == 2
    monkeypatch.setattr(resolvers, "MAX_PAGE_SIZE", 1)
    notices = (await api.data("{ operatorExpiryNotices { externalUserId points expiresAt } }", api_key=key)
               )["operatorExpiryNotices"]
    assert [(n["externalUserId"], n["points"]) for n in notices] == [("u-381", 58), ("u-381", 58)]
    assert notices[0]["expiresAt"] < notices[1]["expiresAt"]
