"""The points mall: listings, stock, redemptions, vouchers and cancellations (注销).

Only the wallet's owner redeems. A redemption holds the points (soonest-expiring first) and
reserves stock in one transaction; fulfilment cancels the held points for good; withdrawal,
decline or time-out release them to the very lots they came from and put the stock back.

Lock order: the person's wallet, then their lots, then the listing row, which is updated last
so that a hot listing's row lock is held for as short a time as possible."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import make_transient_to_detached

from accounts.models import Role
from accounts.service import active_roles
from core.bulk import driver
from core.clock import Clock, business_date
from core.errors import CoreCode, DomainError, NotFound
from core.keyset import Page, keyset_page
from mall.errors import MallCode
from mall.models import (
    Channel,
    Listing,
    ListingKind,
    ListingStatus,
    MovementKind,
    PointCancellation,
    Redemption,
    RedemptionStatus,
    StockMovement,
)
from wallets import hold, lock, post, release
from wallets.errors import WalletCode

DEFAULT_HOLD_MINUTES = 30
MAX_QUANTITY = 100
VOUCHER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


# --- listings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListingTerms:
    """What a merchant sets on a listing. None in an update means: leave as it is."""

    title: str | None = None
    description: str | None = None
    category: str | None = None
    image_urls: list[str] | None = None
    price_points: int | None = None
    per_person_limit: int | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None


def _check_terms(terms: ListingTerms, creating: bool) -> None:
    if terms.title is not None and not (1 <= len(terms.title.strip()) <= 200):
        raise DomainError(CoreCode.INVALID, "A title has 1 to 200 characters.", "title")
    if creating and terms.title is None:
        raise DomainError(CoreCode.INVALID, "A listing needs a title.", "title")
    if terms.description is not None and len(terms.description) > 5000:
        raise DomainError(CoreCode.INVALID, "At most 5,000 characters.", "description")
    if terms.category is not None and not (1 <= len(terms.category.strip()) <= 60):
        raise DomainError(CoreCode.INVALID, "A category has 1 to 60 characters.", "category")
    if creating and terms.category is None:
        raise DomainError(CoreCode.INVALID, "A listing needs a category.", "category")
    if terms.image_urls is not None:
        if len(terms.image_urls) > 10:
            raise DomainError(CoreCode.INVALID, "At most 10 images.", "imageUrls")
        for url in terms.image_urls:
            if not url.startswith("https://") or len(url) > 500:
                raise DomainError(CoreCode.INVALID, "Image URLs are https and at most 500 characters.", "imageUrls")
    if terms.price_points is not None and terms.price_points <= 0:
        raise DomainError(MallCode.INVALID_PRICE, "The price is a positive number of points.", "pricePoints")
    if creating and terms.price_points is None:
        raise DomainError(MallCode.INVALID_PRICE, "A listing needs a price in points.", "pricePoints")
    if terms.per_person_limit is not None and terms.per_person_limit <= 0:
        raise DomainError(CoreCode.INVALID, "The per-person limit is positive (or absent for none).", "perPersonLimit")
    if (terms.available_from and terms.available_until and terms.available_until <= terms.available_from):
        raise DomainError(CoreCode.INVALID, "availableUntil is before availableFrom.", "availableUntil")


async def create_listing(
    *, session: AsyncSession, clock: Clock, merchant_id: uuid.UUID, kind: str, terms: ListingTerms,
    stock: int | None, channel: str, app_operator_id: uuid.UUID | None = None,
) -> Listing:
    _check_terms(terms, creating=True)
    if kind not in (ListingKind.GOODS.value, ListingKind.SERVICE.value):
        raise DomainError(CoreCode.INVALID, "A listing is goods or a service.", "kind")
    if stock is None and kind == ListingKind.GOODS.value:
        raise DomainError(MallCode.INVALID_STOCK, "Goods need a stock; only a service may be unlimited.", "stock")
    if stock is not None and stock < 0:
        raise DomainError(MallCode.INVALID_STOCK, "Stock cannot be negative.", "stock")
    if channel == Channel.APP.value:
        if app_operator_id is None or Role.APP_OPERATOR.value not in await active_roles(
                session=session, account_id=app_operator_id):
            raise DomainError(MallCode.UNKNOWN_APP_OPERATOR, "Name an approved app operator for its app mall.",
                              "appOperatorId")
    elif channel == Channel.PLATFORM.value:
        app_operator_id = None
    else:
        raise DomainError(CoreCode.INVALID, "The channel is the platform mall or an app mall.", "channel")
    now = clock.now()
    listing = Listing(
        merchant_id=merchant_id, kind=kind, title=terms.title.strip(), description=(terms.description or "").strip(),
        category=terms.category.strip(), image_urls=list(terms.image_urls or []), price_points=terms.price_points,
        stock_available=stock, per_person_limit=terms.per_person_limit, available_from=terms.available_from,
        available_until=terms.available_until, channel=channel, app_operator_id=app_operator_id,
        status=ListingStatus.DRAFT.value, revision=1, created_at=now, updated_at=now,
    )
    session.add(listing)
    await session.flush()
    if stock:
        session.add(StockMovement(listing_id=listing.id, kind=MovementKind.RESTOCK.value, delta=stock,
                                  quantity=stock, at=now))
        await session.flush()
    return listing


async def _own_listing(session: AsyncSession, merchant_id: uuid.UUID, listing_id: uuid.UUID) -> Listing:
    listing = (await session.execute(
        select(Listing).where(Listing.id == listing_id, Listing.merchant_id == merchant_id).with_for_update()
    )).scalar_one_or_none()
    if listing is None:
        raise NotFound(message="No such listing.", field="id")
    return listing


async def update_listing(
    *, session: AsyncSession, clock: Clock, merchant_id: uuid.UUID, listing_id: uuid.UUID, terms: ListingTerms,
) -> Listing:
    """Edit the terms. Orders already placed keep the price they were placed at."""
    _check_terms(terms, creating=False)
    listing = await _own_listing(session, merchant_id, listing_id)
    if listing.status == ListingStatus.ARCHIVED.value:
        raise DomainError(MallCode.LISTING_ARCHIVED, "An archived listing cannot change.", "id")
    for name in ("title", "description", "category", "image_urls", "price_points", "per_person_limit",
                 "available_from", "available_until"):
        value = getattr(terms, name)
        if value is not None:
            setattr(listing, name, value.strip() if isinstance(value, str) else value)
    # the window as it ends up, whichever end moved (the caller's transaction rolls back on refusal)
    if listing.available_from and listing.available_until and listing.available_until <= listing.available_from:
        raise DomainError(CoreCode.INVALID, "availableUntil is before availableFrom.",
                          "availableUntil" if terms.available_until is not None else "availableFrom")
    listing.revision += 1
    listing.updated_at = clock.now()
    await session.flush()
    return listing


_TRANSITIONS = {
    ListingStatus.ACTIVE.value: {ListingStatus.DRAFT.value, ListingStatus.PAUSED.value},
    ListingStatus.PAUSED.value: {ListingStatus.ACTIVE.value},
    ListingStatus.ARCHIVED.value: {ListingStatus.DRAFT.value, ListingStatus.ACTIVE.value, ListingStatus.PAUSED.value},
}


async def set_listing_status(
    *, session: AsyncSession, clock: Clock, merchant_id: uuid.UUID, listing_id: uuid.UUID, status: str,
) -> Listing:
    """draft -> active -> paused -> active ...; anything -> archived, for good."""
    listing = await _own_listing(session, merchant_id, listing_id)
    if listing.status not in _TRANSITIONS.get(status, set()):
        raise DomainError(MallCode.INVALID_TRANSITION, f"A {listing.status} listing cannot become {status}.", "status")
    listing.status = status
    listing.updated_at = clock.now()
    if status == ListingStatus.ACTIVE.value and listing.published_at is None:
        listing.published_at = clock.now()
    listing.revision += 1
    await session.flush()
    return listing


async def restock(
    *, session: AsyncSession, clock: Clock, merchant_id: uuid.UUID, listing_id: uuid.UUID, quantity: int,
) -> Listing:
    if quantity <= 0 or quantity > 1_000_000:
        raise DomainError(MallCode.INVALID_STOCK, "Restock 1 to 1,000,000 units.", "quantity")
    listing = await _own_listing(session, merchant_id, listing_id)
    if listing.stock_available is None:
        raise DomainError(MallCode.INVALID_STOCK, "This listing has unlimited stock.", "quantity")
    if listing.status == ListingStatus.ARCHIVED.value:
        raise DomainError(MallCode.LISTING_ARCHIVED, "An archived listing cannot change.", "id")
    listing.stock_available += quantity
    listing.updated_at = clock.now()
    session.add(StockMovement(listing_id=listing.id, kind=MovementKind.RESTOCK.value, delta=quantity,
                              quantity=quantity, at=clock.now()))
    await session.flush()
    return listing


@dataclass(frozen=True)
class BrowseFilter:
    channel: str | None = None
    app_operator_id: uuid.UUID | None = None
    category: str | None = None
    merchant_id: uuid.UUID | None = None
    min_price: int | None = None
    max_price: int | None = None
    text: str | None = None
    sort: str = "newest"  # newest | price_asc | price_desc


def on_sale_now(now: datetime) -> tuple:
    """Not under a suspension in force (art. 31-32): the listing's own column, no join."""
    return (or_(Listing.suspended_until.is_(None), Listing.suspended_until <= now),)


async def browse(*, session: AsyncSession, clock: Clock, filters: BrowseFilter, first: int | None,
                 after: str | None) -> Page:
    """Active listings open now, in keyset pages."""
    now = clock.now()
    stmt = select(Listing).where(
        Listing.status == ListingStatus.ACTIVE.value,
        or_(Listing.available_from.is_(None), Listing.available_from <= now),
        or_(Listing.available_until.is_(None), Listing.available_until > now),
        *on_sale_now(now),
    )
    if filters.channel:
        stmt = stmt.where(Listing.channel == filters.channel)
    if filters.app_operator_id:
        stmt = stmt.where(Listing.app_operator_id == filters.app_operator_id)
    if filters.category:
        stmt = stmt.where(Listing.category == filters.category)
    if filters.merchant_id:
        stmt = stmt.where(Listing.merchant_id == filters.merchant_id)
    if filters.min_price is not None:
        stmt = stmt.where(Listing.price_points >= filters.min_price)
    if filters.max_price is not None:
        stmt = stmt.where(Listing.price_points <= filters.max_price)
    if filters.text:
        words = filters.text.strip()[:100]
        pattern = "%" + words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(Listing.title.ilike(pattern), Listing.description.ilike(pattern)))
    if filters.sort == "newest":
        return await keyset_page(session, stmt, keys=[Listing.published_at, Listing.id], first=first, after=after,
                                 descending=True)
    return await keyset_page(session, stmt, keys=[Listing.price_points, Listing.id], first=first, after=after,
                             descending=filters.sort == "price_desc")


async def get_listing(*, session: AsyncSession, clock: Clock, listing_id: uuid.UUID,
                      merchant_id: uuid.UUID | None = None) -> Listing:
    """A listing anyone may see (active, not suspended), or any of the merchant's own."""
    listing = await session.get(Listing, listing_id)
    if listing is None or listing.merchant_id == merchant_id:
        if listing is None:
            raise NotFound(message="No such listing.", field="id")
        return listing
    suspended = listing.suspended_until is not None and clock.now() < listing.suspended_until
    if listing.status != ListingStatus.ACTIVE.value or suspended:
        raise NotFound(message="No such listing.", field="id")
    return listing


async def merchant_listings(*, session: AsyncSession, merchant_id: uuid.UUID, status: str | None, first: int | None,
                            after: str | None) -> Page:
    stmt = select(Listing).where(Listing.merchant_id == merchant_id)
    if status:
        stmt = stmt.where(Listing.status == status)
    return await keyset_page(session, stmt, keys=[Listing.created_at, Listing.id], first=first, after=after,
                             descending=True)


# --- redemptions -------------------------------------------------------------------------------


def _voucher_code() -> str:
    return "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(12))


async def redeem(
    *, session: AsyncSession, clock: Clock, wallet_id: uuid.UUID, listing_id: uuid.UUID, quantity: int,
    expected_price_points: int | None = None, expected_revision: int | None = None,
    hold_minutes: int = DEFAULT_HOLD_MINUTES,
) -> Redemption:
    """Check the window and the per-person limit, hold the points, issue the voucher and reserve
    the stock, all in the caller's transaction: any refusal leaves nothing behind.

    The caller states what the person agreed to: the unit price in points they were shown, or the
    listing revision they saw (its terms, price included). A listing whose price or revision is
    another by now is refused (PRICE_CHANGED, LISTING_CHANGED) and nothing is held, so a price
    raised while someone is at the checkout is never charged to them."""
    if not 1 <= quantity <= MAX_QUANTITY:
        raise DomainError(CoreCode.INVALID, f"Redeem 1 to {MAX_QUANTITY} units.", "quantity")
    if expected_price_points is None and expected_revision is None:
        raise DomainError(MallCode.PRICE_REQUIRED, "State the unit price in points the person agreed to "
                          "(or the listing revision they saw).", "expectedPricePoints")
    now = clock.now()
    redemption_id, hold_id, voucher = uuid.uuid4(), uuid.uuid4(), _voucher_code()
    held_until = now + timedelta(minutes=hold_minutes)
    conn = await driver(session)
    # the steps run inside PostgreSQL (mall/sql/mall_redeem.sql, which holds the refusals' order; the
    # points through wallets/sql/wallet_place_hold.sql) in this transaction, one round trip: the person's
    # wallet is locked first (their own redemptions take turns: per-person limit, points). The stock is
    # taken when the transaction commits (mall/sql/mall_reserve_stock_at_commit.sql), so the hot listing
    # row is locked only that long; losing the race for the last units makes the commit fail with
    # OUT_OF_STOCK (core/deferred_refusal.py), and everything rolls back.
    row = await conn.fetchrow("SELECT * FROM mall_redeem($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", wallet_id,
                              listing_id, quantity, expected_revision, expected_price_points, now, held_until,
                              redemption_id, hold_id, voucher)
    refused = REFUSALS.get(row["code"])
    if refused is not None:
        code, message, field = refused
        raise DomainError(code, message(row) if callable(message) else message, field)
    redemption = Redemption(
        id=redemption_id, wallet_id=wallet_id, listing_id=listing_id, merchant_id=row["merchant_id"],
        channel=row["channel"], app_operator_id=row["app_operator_id"], title=row["title"], quantity=quantity,
        unit_price_points=row["unit_price_points"], points=row["points"], hold_id=hold_id, voucher_code=voucher,
        status=RedemptionStatus.HELD.value, held_until=held_until, created_at=now, settled_at=None,
        settled_reason=None)
    # the row exists already: make the object the session's persistent copy without a query
    make_transient_to_detached(redemption)
    session.add(redemption)
    return redemption


# mall_redeem's refusals (mall/sql/mall_redeem.sql, in the order it checks them): (code, message or
# message(row), input field)
REFUSALS = {
    "NOT_FOUND": (CoreCode.NOT_FOUND, "No such listing.", "listingId"),
    "NOT_AVAILABLE": (MallCode.NOT_AVAILABLE, "This listing is not on sale now.", "listingId"),
    "OUTSIDE_WINDOW": (MallCode.NOT_AVAILABLE, "This listing is outside its availability window.", "listingId"),
    "SUSPENDED": (MallCode.NOT_AVAILABLE, "This listing is off sale: its merchant or app mall is suspended by the "
                  "regulator.", "listingId"),
    "PRICE_CHANGED": (MallCode.PRICE_CHANGED, lambda row: f"The price is {row['detail']} points a unit now; look again.",
                      "expectedPricePoints"),
    "LISTING_CHANGED": (MallCode.LISTING_CHANGED, "The listing changed since you saw it; look again.",
                        "expectedRevision"),
    "LIMIT_REACHED": (MallCode.LIMIT_REACHED, lambda row: f"At most {row['detail']} per person.", "quantity"),
    "INSUFFICIENT_POINTS": (WalletCode.INSUFFICIENT_POINTS,
                            lambda row: hold.insufficient_message(row["detail"], row["points"]), "quantity"),
    "OUT_OF_STOCK": (MallCode.OUT_OF_STOCK, "Not enough stock left.", "quantity"),
}


async def _locked_redemption(session: AsyncSession, redemption_id: uuid.UUID, *, wallet_id=None,
                             merchant_id=None) -> Redemption:
    condition = Redemption.id == redemption_id
    if wallet_id is not None:
        condition = and_(condition, Redemption.wallet_id == wallet_id)
    if merchant_id is not None:
        condition = and_(condition, Redemption.merchant_id == merchant_id)
    found = (await session.execute(select(Redemption.wallet_id).where(condition))).scalar_one_or_none()
    if found is None:
        raise NotFound(message="No such redemption.", field="id")
    await lock.lock_wallets(session=session, account_ids=[found])
    # populate_existing: a row this session already loaded (fulfil looks the code up first) must be
    # read afresh under the lock, or a cancellation committed meanwhile would go unseen
    return (await session.execute(select(Redemption).where(condition).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one()


async def _undo(session: AsyncSession, clock: Clock, redemption: Redemption, status: RedemptionStatus,
                reason: str | None) -> Redemption:
    """Release the points to their lots and put the stock back."""
    now = clock.now()
    await release.release_hold(session=session, clock=clock, hold_id=redemption.hold_id)
    conn = await driver(session)
    if await conn.fetchval("SELECT stock_available IS NOT NULL FROM listings WHERE id = $1", redemption.listing_id):
        await conn.execute("UPDATE listings SET stock_available = stock_available + $2 WHERE id = $1",
                           redemption.listing_id, redemption.quantity)
        await conn.execute(
            "INSERT INTO stock_movements (id, listing_id, kind, delta, quantity, redemption_id, at)"
            " VALUES ($1, $2, 'release', $3, $3, $4, $5)", uuid.uuid4(), redemption.listing_id,
            redemption.quantity, redemption.id, now)
    redemption.status, redemption.settled_at, redemption.settled_reason = status.value, now, reason
    await session.flush()
    return redemption


def _must_be_held(redemption: Redemption) -> None:
    if redemption.status != RedemptionStatus.HELD.value:
        raise DomainError(MallCode.NOT_HELD, f"This redemption is already {redemption.status}.", "id")


async def withdraw_redemption(*, session: AsyncSession, clock: Clock, wallet_id: uuid.UUID,
                              redemption_id: uuid.UUID) -> Redemption:
    """The person withdraws a redemption not yet fulfilled: its hold is released to the very lots
    it came from and the stock put back. The status stored is `cancelled`, the word of the API."""
    redemption = await _locked_redemption(session, redemption_id, wallet_id=wallet_id)
    _must_be_held(redemption)
    return await _undo(session, clock, redemption, RedemptionStatus.CANCELLED, "cancelled by the person")


async def decline_redemption(*, session: AsyncSession, clock: Clock, merchant_id: uuid.UUID,
                             redemption_id: uuid.UUID, reason: str) -> Redemption:
    if not reason or not reason.strip() or len(reason) > 500:
        raise DomainError(MallCode.REASON_REQUIRED, "Say why (at most 500 characters).", "reason")
    redemption = await _locked_redemption(session, redemption_id, merchant_id=merchant_id)
    _must_be_held(redemption)
    return await _undo(session, clock, redemption, RedemptionStatus.DECLINED, reason.strip())


async def _undo_each(session_factory: async_sessionmaker[AsyncSession], clock: Clock, condition,
                     status: RedemptionStatus, reason: str, batch_size: int) -> int:
    """Undo the held redemptions matching `condition`, each in its own transaction (the wallet, then
    the listing: the lock order of redeeming). Returns how many."""
    undone = 0
    while True:
        async with session_factory() as session:
            due = (await session.execute(
                select(Redemption.id).where(Redemption.status == RedemptionStatus.HELD.value, condition)
                .order_by(Redemption.held_until, Redemption.id).limit(batch_size))).scalars().all()
        if not due:
            return undone
        for redemption_id in due:
            async with session_factory() as session:
                async with session.begin():
                    redemption = await _locked_redemption(session, redemption_id)
                    if redemption.status != RedemptionStatus.HELD.value:
                        continue  # fulfilled, withdrawn, declined or timed out meanwhile
                    await _undo(session, clock, redemption, status, reason)
                    undone += 1
        if len(due) < batch_size:
            return undone


async def expire_held_redemptions(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock,
                                  batch_size: int = 200) -> int:
    """Time out reservations not fulfilled in time, each in its own transaction. Returns how many."""
    return await _undo_each(session_factory, clock, Redemption.held_until <= clock.now(), RedemptionStatus.EXPIRED,
                            "reservation timed out", batch_size)


async def release_held_redemptions_of(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock,
                                      merchant_id: uuid.UUID | None = None, app_operator_id: uuid.UUID | None = None,
                                      notice: str, batch_size: int = 200) -> int:
    """The platform releases the held redemptions of a suspended or revoked merchant (or of an app
    mall that closed) to the very lots they came from, the same way a time-out does, each in its own
    transaction; the redemption says why (`notice`, its settled reason, which the person sees)."""
    if (merchant_id is None) == (app_operator_id is None):
        raise ValueError("name the merchant or the app operator")
    condition = (Redemption.merchant_id == merchant_id if merchant_id is not None
                 else Redemption.app_operator_id == app_operator_id)
    return await _undo_each(session_factory, clock, condition, RedemptionStatus.RELEASED, notice, batch_size)


async def archive_listings_of(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID, role: str) -> int:
    """A revoked MERCHANT's listings, or the app-mall listings of a revoked APP_OPERATOR, are archived
    for good (art. 24, 31): they leave the catalogue and nothing redeems them. Returns how many."""
    column = {Role.MERCHANT.value: Listing.merchant_id, Role.APP_OPERATOR.value: Listing.app_operator_id}.get(role)
    if column is None:
        return 0
    rows = await session.execute(
        update(Listing).where(column == account_id, Listing.status != ListingStatus.ARCHIVED.value)
        .values(status=ListingStatus.ARCHIVED.value, updated_at=clock.now(), revision=Listing.revision + 1)
        .returning(Listing.id).execution_options(synchronize_session=False))
    return len(rows.all())


async def find_voucher(*, session: AsyncSession, merchant_id: uuid.UUID, code: str) -> Redemption:
    """The merchant checks a code the owner presents; another merchant's code is simply unknown."""
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    redemption = (await session.execute(
        select(Redemption).where(Redemption.voucher_code == normalised, Redemption.merchant_id == merchant_id)
    )).scalar_one_or_none()
    if redemption is None:
        raise DomainError(MallCode.UNKNOWN_CODE, "No redemption of yours has this code.", "code")
    return redemption


async def fulfil(*, session: AsyncSession, clock: Clock, merchant_id: uuid.UUID, code: str) -> tuple[Redemption, PointCancellation]:
    """The merchant hands over the goods: the held points are cancelled (注销) for good.

    A retry after a lost answer replays it: the same merchant fulfilling the same code again gets
    the fulfilled redemption and its one cancellation record, and nothing moves twice. The code
    is the merchant's own (another merchant's is unknown), so only that merchant ever sees them."""
    found = await find_voucher(session=session, merchant_id=merchant_id, code=code)
    redemption = await _locked_redemption(session, found.id, merchant_id=merchant_id)
    if redemption.status == RedemptionStatus.FULFILLED.value:
        cancellation = (await session.execute(
            select(PointCancellation).where(PointCancellation.redemption_id == redemption.id))).scalar_one()
        return redemption, cancellation
    _must_be_held(redemption)
    now = clock.now()
    if redemption.held_until <= now:
        raise DomainError(MallCode.RESERVATION_EXPIRED, "This reservation has timed out.", "code")
    listing = await (await driver(session)).fetchrow(
        "SELECT stock_available IS NOT NULL AS counted, suspended_until FROM listings WHERE id = $1",
        redemption.listing_id)
    if listing["suspended_until"] is not None and now < listing["suspended_until"]:
        # a redemption that raced the suspension: the platform releases it (or its reservation times out)
        raise DomainError(MallCode.NOT_AVAILABLE, "This listing is off sale while its merchant or app mall is "
                                                  "suspended; the points go back to the person.", "code")
    _, drawn = await post.post_hold(session=session, clock=clock, hold_id=redemption.hold_id)
    if listing["counted"]:
        session.add(StockMovement(listing_id=redemption.listing_id, kind=MovementKind.SELL.value, delta=0,
                                  quantity=redemption.quantity, redemption_id=redemption.id, at=now))
    cancellation = PointCancellation(
        redemption_id=redemption.id, wallet_id=redemption.wallet_id, merchant_id=redemption.merchant_id,
        channel=redemption.channel, app_operator_id=redemption.app_operator_id, points=redemption.points,
        lots=[{"lot_id": str(lot), "points": points} for lot, points in drawn], business_day=business_date(now),
        at=now)
    session.add(cancellation)
    redemption.status, redemption.settled_at = RedemptionStatus.FULFILLED.value, now
    await session.flush()
    return redemption, cancellation


async def my_redemptions(*, session: AsyncSession, wallet_id: uuid.UUID, status: str | None, first: int | None,
                         after: str | None) -> Page:
    stmt = select(Redemption).where(Redemption.wallet_id == wallet_id)
    if status:
        stmt = stmt.where(Redemption.status == status)
    return await keyset_page(session, stmt, keys=[Redemption.created_at, Redemption.id], first=first, after=after,
                             descending=True)


async def merchant_redemptions(*, session: AsyncSession, merchant_id: uuid.UUID, status: str | None,
                               first: int | None, after: str | None) -> Page:
    stmt = select(Redemption).where(Redemption.merchant_id == merchant_id)
    if status:
        stmt = stmt.where(Redemption.status == status)
    return await keyset_page(session, stmt, keys=[Redemption.created_at, Redemption.id], first=first, after=after,
                             descending=True)


@dataclass(frozen=True)
class CancelledFigure:
    day: date
    channel: str
    app_operator_id: uuid.UUID | None
    merchant_id: uuid.UUID
    redemptions: int
    points: int


async def cancellation_figures(
    *, session: AsyncSession, since: date, until: date, merchant_id: uuid.UUID | None = None,
    app_operator_id: uuid.UUID | None = None,
) -> list[CancelledFigure]:
    """Points cancelled after use per day, channel, app operator and merchant (art. 23)."""
    if until < since or (until - since).days > 366:
        raise DomainError(CoreCode.INVALID, "Ask for 1 to 366 days.", "until")
    stmt = (select(PointCancellation.business_day, PointCancellation.channel, PointCancellation.app_operator_id,
                   PointCancellation.merchant_id, func.count(), func.sum(PointCancellation.points))
            .where(PointCancellation.business_day.between(since, until))
            .group_by(PointCancellation.business_day, PointCancellation.channel, PointCancellation.app_operator_id,
                      PointCancellation.merchant_id)
            .order_by(PointCancellation.business_day, PointCancellation.channel))
    if merchant_id is not None:
        stmt = stmt.where(PointCancellation.merchant_id == merchant_id)
    if app_operator_id is not None:
        stmt = stmt.where(PointCancellation.app_operator_id == app_operator_id)
    rows = await session.execute(stmt)
    return [CancelledFigure(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]
