"""The front-end contracts: the operations in frontend_contracts/ and the schema snapshot.

- every operation document is valid against the live schema, named after its file, unique;
- the live schema has no breaking change against frontend_contracts/schema.graphql, and equals it
  (additions too must be recorded with `make schema`, so they show up in review);
- the breaking-change check itself catches a removed field;
- every operation runs as a persisted query (by its sha256) through the HTTP API."""

from __future__ import annotations

import difflib

import pytest
from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_ast_schema,
    build_schema,
    parse,
    print_ast,
    validate,
    visit,
)
from graphql.language import ObjectTypeDefinitionNode, VariableNode
from graphql.utilities import find_breaking_changes

from frontend_contracts.snapshot import SNAPSHOT_PATH, operation_files, snapshot_text
from server.graphql_schema import live_schema_sdl
from server.persisted import document_hash, load_documents
from tests.conftest import PASSWORD, approved, regulator, unique_email
from tests.neutrality.market_fixtures import MARKET_CONTRACTS  # walked in tests/neutrality/test_cer_market.py
from tests.neutrality.certificate_fixtures import CERTIFICATE_CONTRACTS  # walked in tests/neutrality/test_cer_certificates.py
from tests.neutrality.fixtures import PROJECT_CONTRACTS  # walked in tests/neutrality/test_cer_projects.py
from tests.neutrality.offset_fixtures import OFFSET_CONTRACTS  # walked in tests/neutrality/test_ets_offsets.py
from tests.reductions.filing_fixtures import METHODOLOGY_CONTRACTS  # walked in tests/reductions/test_methodology_filing_api.py
from tests.reviews.fixtures import REVIEW_CONTRACTS  # walked in tests/reviews/test_review_api.py
from tests.measures import MEASURES_CONTRACTS  # walked in tests/measures/test_measures_period.py
from tests.disclosure.fixtures import DISCLOSURE_CONTRACTS  # walked in tests/disclosure/test_disclosure_forms.py
from tests.scenarios.fixtures import SCENARIO_CONTRACTS  # walked in tests/scenarios/test_scenarios_api.py
from tests.supervision.fixtures import SUPERVISION_CONTRACTS  # walked in tests/supervision/test_contracts.py

LIVE: GraphQLSchema = build_schema(live_schema_sdl())
OPERATIONS = operation_files()
FOLDERS = {"consumer", "merchant", "organisation", "operator", "project_owner", "regulator", "public", "verifier",
           "expert", "neutrality_reviewer"}
REGENERATE = "If the change is deliberate, run `make schema` (tanpuhui schema) and commit frontend_contracts/schema.graphql."


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def breaking_changes(old_sdl: str, new_schema: GraphQLSchema) -> list[str]:
    """Changes from the old SDL to the new schema that would break a client written for the old one."""
    return [f"{change.type.name}: {change.description}"
            for change in find_breaking_changes(build_schema(old_sdl), new_schema)]


def fields_used(document: DocumentNode, schema: GraphQLSchema) -> set[str]:
    """`Type.field` for every field the document selects."""
    used: set[str] = set()
    type_info = TypeInfo(schema)

    class Collect(Visitor):
        def enter_field(self, node: FieldNode, *_):
            parent = type_info.get_parent_type()
            if parent is not None:
                used.add(f"{parent.name}.{node.name.value}")

    visit(document, TypeInfoVisitor(type_info, Collect()))
    return used


def test_contracts_exist_for_every_front_end():
    assert {path.parent.name for path in OPERATIONS} == FOLDERS
    assert all(path.parent.parent == SNAPSHOT_PATH.parent for path in OPERATIONS), (
        "operations live one folder deep, in the folder of the front-end that uses them")


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_operation_is_valid_against_the_live_schema(path):
    document = parse(path.read_text(encoding="utf-8"))
    operations = _operations(document)
    assert len(operations) == 1, f"{path}: one operation per file"
    assert operations[0].name is not None and operations[0].name.value == path.stem, (
        f"{path}: the operation is named after its file")
    errors = validate(LIVE, document)
    assert not errors, f"{path} no longer matches the schema:\n" + "\n".join(e.message for e in errors)


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_operation_follows_the_conventions(path):
    """Arguments come from variables (one document serves every call, so it can be persisted), and a
    mutation selects its typed errors (else the front-end cannot see why it failed)."""
    document = parse(path.read_text(encoding="utf-8"))
    inline = [print_ast(node) for node in _walk(document, ArgumentNode) if not isinstance(node.value, VariableNode)]
    assert not inline, f"{path}: pass arguments as variables, not literals: {inline}"
    operation = _operations(document)[0]
    if operation.operation == OperationType.MUTATION:
        for field in operation.selection_set.selections:
            assert isinstance(field, FieldNode)
            errors = next((s for s in field.selection_set.selections
                           if isinstance(s, FieldNode) and s.name.value == "errors"), None)
            assert errors is not None, f"{path}: {field.name.value} must select errors {{ code field message }}"
            selected = {s.name.value for s in errors.selection_set.selections if isinstance(s, FieldNode)}
            assert {"code", "field", "message"} <= selected, f"{path}: errors must select code, field and message"


def _walk(document: DocumentNode, kind: type) -> list:
    found = []

    class Collect(Visitor):
        def enter(self, node, *_):
            if isinstance(node, kind):
                found.append(node)

    visit(document, Collect())
    return found


def test_operation_names_are_unique_across_front_ends():
    seen: dict[str, str] = {}
    for path in OPERATIONS:
        where = f"{path.parent.name}/{path.name}"
        assert path.stem not in seen, f"operation {path.stem} is in both {seen[path.stem]} and {where}"
        seen[path.stem] = where


def test_every_root_field_is_used_by_some_front_end():
    """A query or mutation no contract uses is either dead or a front-end's operation nobody wrote down."""
    used = set().union(*(fields_used(parse(path.read_text(encoding="utf-8")), LIVE) for path in OPERATIONS))
    roots = {f"{root.name}.{name}" for root in (LIVE.query_type, LIVE.mutation_type) for name in root.fields}
    assert roots - used == set(), "add an operation to frontend_contracts/ for each of these"


def test_every_operation_is_persisted_under_its_own_hash():
    documents = load_documents()
    hashes = {document_hash(path.read_text(encoding="utf-8")) for path in OPERATIONS}
    assert len(hashes) == len(OPERATIONS), "two operation files have the same text"
    assert set(documents) == hashes


def test_no_breaking_change_against_the_snapshot():
    assert SNAPSHOT_PATH.exists(), f"{SNAPSHOT_PATH} is missing. {REGENERATE}"
    breaking = breaking_changes(SNAPSHOT_PATH.read_text(encoding="utf-8"), LIVE)
    assert not breaking, (
        "The schema has changes that break front-ends written against frontend_contracts/schema.graphql:\n  "
        + "\n  ".join(breaking)
        + "\nPrefer an additive change (a new field, a deprecation). " + REGENERATE)


def test_snapshot_records_the_live_schema():
    """Additions are not breaking, but they are recorded too, so every API change is reviewed."""
    recorded = SNAPSHOT_PATH.read_text(encoding="utf-8") if SNAPSHOT_PATH.exists() else ""
    live = snapshot_text(live_schema_sdl())
    if recorded != live:
        diff = list(difflib.unified_diff(recorded.splitlines(), live.splitlines(), "schema.graphql (snapshot)",
                                         "live schema", lineterm="", n=1))
        shown = "\n".join(diff[:60]) + (f"\n... {len(diff) - 60} more diff lines" if len(diff) > 60 else "")
        pytest.fail("frontend_contracts/schema.graphql differs from the schema the code serves. "
                    + REGENERATE + "\n" + shown, pytrace=False)


def _without_field(sdl: str, type_name: str, field_name: str) -> GraphQLSchema:
    document = parse(sdl)
    definitions = []
    for definition in document.definitions:
        if isinstance(definition, ObjectTypeDefinitionNode) and definition.name.value == type_name:
            fields = tuple(f for f in definition.fields if f.name.value != field_name)
            assert len(fields) == len(definition.fields) - 1, f"{type_name}.{field_name} is not in the schema"
            definition = ObjectTypeDefinitionNode(name=definition.name, description=definition.description,
                                                  interfaces=definition.interfaces,
                                                  directives=definition.directives, fields=fields)
        definitions.append(definition)
    return build_ast_schema(DocumentNode(definitions=tuple(definitions)))


def test_the_breaking_change_check_catches_a_removed_field():
    broken = _without_field(live_schema_sdl(), "Account", "displayName")

    breaking = breaking_changes(live_schema_sdl(), broken)
    assert [c for c in breaking if c.startswith("FIELD_REMOVED") and "Account.displayName" in c], breaking

    users, others = [], []
    for path in OPERATIONS:
        document = parse(path.read_text(encoding="utf-8"))
        (users if "Account.displayName" in fields_used(document, LIVE) else others).append((path, document))
    assert {path.stem for path, _ in users} >= {"Me", "Account", "Login", "SignUp"}
    for path, document in users:
        messages = [e.message for e in validate(broken, document)]
        assert any("displayName" in m for m in messages), f"{path} should fail without Account.displayName"
    for path, document in others:
        assert validate(broken, document) == [], path


# --- every contract runs as a persisted query over the API -----------------------------------------

DOCUMENTS = {path.stem: path.read_text(encoding="utf-8") for path in OPERATIONS}


class PersistedClient:
    """Sends operations by their sha256 only, as a persisted-queries-only front-end would."""

    def __init__(self, api):
        self.api = api
        self.ran: set[str] = set()

    async def run(self, name: str, variables: dict | None = None, **credentials) -> dict:
        body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": document_hash(DOCUMENTS[name])}},
                "variables": variables or {}}
        response = await self.api.post(body, **credentials)
        payload = response.json()
        assert response.status_code == 200 and "errors" not in payload, (name, payload)
        data = payload["data"]
        for field in data.values():
            if isinstance(field, dict) and "errors" in field:
                assert field["errors"] == [], (name, field["errors"])
        self.ran.add(name)
        return data

    async def sign_up(self, kind: str, name: str) -> tuple[str, str]:
        email = unique_email(kind.lower())
        data = await self.run("SignUp", {"input": {"kind": kind, "displayName": name, "email": email,
                                                   "password": PASSWORD}})
        return data["signUp"]["account"]["id"], email

    async def login(self, email: str) -> dict:
        data = await self.run("Login", {"input": {"login": email, "password": PASSWORD}})
        return data["login"]["session"]


async def test_anonymous_operations_run_as_persisted_queries(api):
    client = PersistedClient(api)
    service = await client.run("ServiceInfo")
    assert service["service"]["name"] and service["service"]["persistedQueriesOnly"] is False
    operators = await client.run("AppOperators", {"first": 10})
    assert operators["appOperators"]["edges"] == []
    assert operators["appOperators"]["pageInfo"]["hasNextPage"] is False


async def test_an_unknown_hash_is_refused(api):
    response = await api.post({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}})
    assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_every_contract_runs_as_a_persisted_query(api):
    """One walk through the platform by persisted operations only, covering every contract file."""
    c = PersistedClient(api)
    await c.run("ServiceInfo")
    reg = await regulator(api)
    regulator_token = (await c.login(reg.login))["accessToken"]
    await c.run("RegulatorMe", token=regulator_token)

    # an organisation that goes carbon neutral; it also becomes a project owner (no approval needed)
    org_id, org_email = await c.sign_up("ORGANISATION", "深圳湾绿色科技有限公司")
    org_token = (await c.login(org_email))["accessToken"]
    grant = await c.run("OrganisationApplyForRole", {"input": {"role": "PROJECT_OWNER", "note": "屋顶光伏"}},
                        token=org_token)
    assert grant["applyForRole"]["application"]["status"] == "ACTIVE"
    org_token = (await c.login(org_email))["accessToken"]
    assert {"role": "PROJECT_OWNER", "status": "ACTIVE"} in [
        {k: r[k] for k in ("role", "status")} for r in (await c.run("OrganisationMe", token=org_token))["me"]["roles"]]
    key = (await c.run("OrganisationCreateApiKey", {"input": {"name": "meter gateway", "scopes": ["MANAGE_CER_PROJECTS"]}}, token=org_token))["createApiKey"]
    assert key["secret"].startswith("tph_")
    assert [k["id"] for k in (await c.run("OrganisationMyApiKeys", token=org_token))["myApiKeys"]] == [key["apiKey"]["id"]]
    revoked = await c.run("OrganisationRevokeApiKey", {"input": {"id": key["apiKey"]["id"]}}, token=org_token)
    assert revoked["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    await c.run("OrganisationLogout", token=org_token)

    # an app operator and a merchant apply; the regulator reviews and approves them
    approved = {}
    for prefix, role, name in (("Operator", "APP_OPERATOR", "低碳星球运营有限公司"),
                               ("Merchant", "MERCHANT", "绿意咖啡连锁有限公司")):
        account_id, email = await c.sign_up("ORGANISATION", name)
        token = (await c.login(email))["accessToken"]
        applied = await c.run(f"{prefix}ApplyForRole", {"input": {"role": role}}, token=token)
        assert applied["applyForRole"]["application"]["status"] == "PENDING"
        pending = await c.run("RoleApplications", {"status": "PENDING", "role": role, "first": 100},
                              token=regulator_token)
        application = next(e["node"] for e in pending["roleApplications"]["edges"]
                           if e["node"]["accountId"] == account_id)
        decided = await c.run("DecideRoleApplication", {"input": {"applicationId": application["id"], "approve": True}},
                              token=regulator_token)
        assert decided["decideRoleApplication"]["application"]["status"] == "ACTIVE"
        token = (await c.login(email))["accessToken"]
        me = await c.run(f"{prefix}Me", token=token)
        assert {"role": role, "status": "ACTIVE"} in [{k: r[k] for k in ("role", "status")} for r in me["me"]["roles"]]
        approved[prefix] = (account_id, token, application["id"])

    _, operator_token, _ = approved["Operator"]
    key = (await c.run("OperatorCreateApiKey", {"input": {"name": "reporting", "scopes": ["REPORT_BEHAVIOUR", "INVITE_ENTRUSTMENTS"]}}, token=operator_token))["createApiKey"]
    operator_key = key["secret"]
    assert len((await c.run("OperatorMyApiKeys", token=operator_token))["myApiKeys"]) == 1
    listed = await c.run("AppOperators", {"first": 10})
    assert [e["node"]["displayName"] for e in listed["appOperators"]["edges"]] == ["低碳星球运营有限公司"]

    # a person signs up and entrusts the operator, which knows them as u-381
    person_id, person_email = await c.sign_up("PERSON", "王小明")
    session = await c.login(person_email)
    refreshed = (await c.run("RefreshSession", {"input": {"refreshToken": session["refreshToken"]}}))["refreshSession"]
    person_token = refreshed["session"]["accessToken"]
    assert (await c.run("Me", token=person_token))["me"]["id"] == person_id
    invitation = (await c.run("CreateEntrustmentInvitation", {"input": {"externalUserId": "u-381"}},
                              api_key=operator_key))["createEntrustmentInvitation"]["invitation"]
    accepted = await c.run("AcceptEntrustment", {"input": {"code": invitation["code"], "agreementVersion": "2026-01"}},
                           token=person_token)
    entrustment = accepted["acceptEntrustment"]["entrustment"]
    assert entrustment["externalUserId"] == "u-381"
    mine = await c.run("MyEntrustments", {"status": "ACTIVE", "first": 10}, token=person_token)
    assert [e["node"]["id"] for e in mine["myEntrustments"]["edges"]] == [entrustment["id"]]
    theirs = await c.run("OperatorEntrustments", {"first": 10}, api_key=operator_key)
    assert [e["node"]["externalUserId"] for e in theirs["operatorEntrustments"]["edges"]] == ["u-381"]
    assert (await c.run("EntrustedUser", {"externalUserId": "u-381"}, api_key=operator_key))["entrustedUser"] is not None
    await c.run("RevokeEntrustment", {"input": {"id": entrustment["id"]}}, token=person_token)
    assert (await c.run("EntrustedUser", {"externalUserId": "u-381"}, api_key=operator_key))["entrustedUser"] is None
    await c.run("OperatorRevokeApiKey", {"input": {"id": key["apiKey"]["id"]}}, token=operator_token)
    await c.run("OperatorLogout", token=operator_token)
    changed = await c.run("ChangePassword", {"input": {"currentPassword": PASSWORD, "newPassword": "a fresh passphrase 2026"}},
                          token=person_token)
    assert changed["changePassword"]["signedOutSessions"] >= 0
    await c.run("Logout", {"input": {"everywhere": True}}, token=person_token)

    # the merchant's keys, then the regulator withdraws the merchant's registration
    merchant_id, merchant_token, merchant_application = approved["Merchant"]
    key = (await c.run("MerchantCreateApiKey", {"input": {"name": "till", "scopes": ["FULFIL_REDEMPTIONS", "MANAGE_LISTINGS"]}}, token=merchant_token))["createApiKey"]
    assert len((await c.run("MerchantMyApiKeys", token=merchant_token))["myApiKeys"]) == 1
    await c.run("MerchantRevokeApiKey", {"input": {"id": key["apiKey"]["id"]}}, token=merchant_token)
    await c.run("MerchantLogout", token=merchant_token)
    account = await c.run("Account", {"id": merchant_id}, token=regulator_token)
    assert account["account"]["displayName"] == "绿意咖啡连锁有限公司"
    withdrawn = await c.run("RevokeRole", {"input": {"applicationId": merchant_application,
                                                     "reason": "营业执照已注销 (licence cancelled)"}},
                            token=regulator_token)
    assert withdrawn["revokeRole"]["application"]["status"] == "REVOKED"
    # the audit log shows the revocation with its before and after, and the chain holds (art. 30-31)
    revocations = (await c.run("AuditLog", {"action": "role.revoked", "first": 5}, token=regulator_token))["auditLog"]
    assert [e["node"]["after"] for e in revocations["edges"]] == ['{"status":"revoked"}']
    assert (await c.run("AuditChainStatus", token=regulator_token))["auditChainStatus"]["intact"] is True
    await c.run("RegulatorChangePassword", {"input": {"currentPassword": PASSWORD, "newPassword": "regulator passphrase 2026"}},
                token=regulator_token)
    await c.run("RegulatorLogout", token=regulator_token)

    walked_elsewhere = (WALLET_AND_MALL, MARKET_CONTRACTS, PROJECT_CONTRACTS, CERTIFICATE_CONTRACTS,
                        METHODOLOGY_CONTRACTS, REVIEW_CONTRACTS,
                        MEASURES_CONTRACTS,
                        DISCLOSURE_CONTRACTS,
                        OFFSET_CONTRACTS,
                        SCENARIO_CONTRACTS,
                        SUPERVISION_CONTRACTS,
                        )
    expected = set(DOCUMENTS).difference(*walked_elsewhere)
    assert c.ran == expected, f"not exercised: {sorted(expected - c.ran)}"


# the wallet and mall contracts get a walk of their own
WALLET_AND_MALL = {
    "Methodologies", "ExchangeRules", "CreateExchangeRule",
    "PublishExchangeRule", "ReportBehaviour", "MyReports", "ReportAggregates", "OperatorExpiryNotices", "Wallet",
    "WalletLots", "WalletHistory", "CreateListing", "SetListingStatus", "UpdateListing", "RestockListing",
    "MyListings", "Mall", "ListingDetail", "Redeem", "MyVouchers", "CancelRedemption", "VerifyVoucher",
    "FulfilRedemption", "DeclineRedemption", "MerchantRedemptions", "MerchantCancelledPoints",
    "AppMallCancelledPoints", "PointTotals", "LedgerAudit", "CancelledPoints",
}


async def test_wallet_and_mall_contracts_run_as_persisted_queries(api, clock):
    """Points earned from a reported metro ride, spent in the mall, cancelled for good; all by hash."""
    c = PersistedClient(api)
    reg = await regulator(api)
    reg_token = (await c.login(reg.login))["accessToken"]
    assert [m["code"] for m in (await c.run("Methodologies"))["methodologies"]] == [
        "SZ-EBUS", "SZ-HOME-POWER", "SZ-METRO"]
    rule = await c.run("CreateExchangeRule", {"input": {
        "points": 1, "reductionMg": 10_000, "dailyCapPoints": 1000, "acceptanceWindowDays": 7,
        "effectiveFrom": clock.now().isoformat()}}, token=reg_token)
    await c.run("PublishExchangeRule", {"input": {"id": rule["createExchangeRule"]["rule"]["id"]}}, token=reg_token)
    assert len((await c.run("ExchangeRules"))["exchangeRules"]) == 1

    operator = await approved(api, "APP_OPERATOR", reg=reg)
    operator_key = (await api.data('mutation { createApiKey(input: {name: "r", scopes: [REPORT_BEHAVIOUR, INVITE_ENTRUSTMENTS]}) { secret } }',
                                   token=operator.token))["createApiKey"]["secret"]
    person_id, person_email = await c.sign_up("PERSON", "王小明")
    person_token = (await c.login(person_email))["accessToken"]
    code = (await api.data('mutation { createEntrustmentInvitation(input: {externalUserId: "u-381"}) { invitation { code } } }',
                           api_key=operator_key))["createEntrustmentInvitation"]["invitation"]["code"]
    await api.data('mutation($c: String!) { acceptEntrustment(input: {code: $c, agreementVersion: "v1"}) { errors { code } } }',
                   {"c": code}, token=person_token)
    clock.advance(minutes=5)

    reported = await c.run("ReportBehaviour", {"input": {"items": [
        {"reportId": "r-1", "externalUserId": "u-381", "methodologyCode": "SZ-METRO", "quantity": "25",
         "occurredAt": clock.now().isoformat()}]}}, api_key=operator_key)
    assert reported["reportBehaviour"]["results"][0]["points"] == 117
    assert len((await c.run("MyReports", {"first": 10, "rejectedOnly": False}, api_key=operator_key))["myReports"]["edges"]) == 1
    await c.run("ReportAggregates", {"since": "2026-03-01", "until": "2026-03-31"}, api_key=operator_key)
    assert (await c.run("OperatorExpiryNotices", api_key=operator_key))["operatorExpiryNotices"] == []
    wallet = (await c.run("Wallet", {"lotsFirst": 10, "usableOnly": True, "expiringWithinDays": 30},
                          token=person_token))["myWallet"]
    assert wallet["balance"] == 117
    await c.run("WalletLots", {"first": 10, "order": "EXPIRY_DESC"}, token=person_token)
    assert (await c.run("WalletHistory", {"first": 10, "kinds": ["CREDIT"]}, token=person_token)
            )["myWallet"]["history"]["edges"][0]["node"]["points"] == 117

    merchant = await approved(api, "MERCHANT", "绿意咖啡连锁有限公司", reg=reg)
    listing = (await c.run("CreateListing", {"input": {
        "kind": "GOODS", "title": "美式咖啡", "category": "food", "pricePoints": 30, "channel": "PLATFORM",
        "stock": 5, "perPersonLimit": 3}}, token=merchant.token))["createListing"]["listing"]
    await c.run("SetListingStatus", {"input": {"id": listing["id"], "status": "ACTIVE"}}, token=merchant.token)
    await c.run("UpdateListing", {"input": {"id": listing["id"], "description": "中杯"}}, token=merchant.token)
    await c.run("RestockListing", {"input": {"id": listing["id"], "quantity": 5, "idempotencyKey": "restock-1"}},
                token=merchant.token)
    assert len((await c.run("MyListings", {"first": 10}, token=merchant.token))["myListings"]["edges"]) == 1
    browsed = await c.run("Mall", {"filter": {"category": "food"}, "sort": "PRICE_ASC", "first": 10})
    assert [e["node"]["id"] for e in browsed["mall"]["edges"]] == [listing["id"]]
    assert (await c.run("ListingDetail", {"id": listing["id"]}))["listing"]["stockAvailable"] == 10

    vouchers = []
    for n in range(3):
        redeemed = await c.run("Redeem", {"input": {"listingId": listing["id"], "quantity": 1,
                                                    "expectedPricePoints": listing["pricePoints"],
                                                    "idempotencyKey": f"redeem-{n}"}}, token=person_token)
        vouchers.append(redeemed["redeem"]["redemption"])
    assert len((await c.run("MyVouchers", {"status": "HELD", "first": 10}, token=person_token))["myRedemptions"]["edges"]) == 3
    await c.run("CancelRedemption", {"input": {"id": vouchers[2]["id"]}}, token=person_token)
    checked = await c.run("VerifyVoucher", {"code": vouchers[0]["voucherCode"]}, token=merchant.token)
    assert checked["verifyVoucher"]["status"] == "HELD"
    fulfilled = await c.run("FulfilRedemption", {"input": {"code": vouchers[0]["voucherCode"]}}, token=merchant.token)
    assert fulfilled["fulfilRedemption"]["cancellation"]["points"] == 30
    await c.run("DeclineRedemption", {"input": {"id": vouchers[1]["id"], "reason": "售罄 sold out"}}, token=merchant.token)
    assert len((await c.run("MerchantRedemptions", {"first": 10}, token=merchant.token))["merchantRedemptions"]["edges"]) == 3
    days = {"since": "2026-03-01", "until": "2026-03-31"}
    assert (await c.run("MerchantCancelledPoints", days, token=merchant.token))["merchantCancelledPoints"][0]["points"] == 30
    assert (await c.run("AppMallCancelledPoints", days, api_key=operator_key))["appMallCancelledPoints"] == []
    assert (await c.run("CancelledPoints", days, token=reg_token))["cancelledPoints"][0]["points"] == 30
    totals = (await c.run("PointTotals", token=reg_token))["pointTotals"]
    assert totals == {"issued": 117, "outstanding": 87, "held": 0, "cancelled": 30, "expired": 0, "reconciles": True}
    assert (await c.run("LedgerAudit", token=reg_token))["ledgerAudit"]["ok"] is True
    assert c.ran - {"SignUp", "Login"} == WALLET_AND_MALL, f"not exercised: {sorted(WALLET_AND_MALL - c.ran)}"

