"""Reading the CER market: offers on sale, a seller's offers, each side's orders and the serials an order delivered."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.keyset import Page, keyset_page
from neutrality.cers import blocks
from neutrality.cers.models import Move, MoveKind, Project
from neutrality.market.models import Offer, OfferStatus, PurchaseOrder


# --- offers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferFilter:
    project_id: uuid.UUID | None = None
    vintage: int | None = None
    max_price_per_tonne_fen: int | None = None
    sort: str = "price_asc"  # price_asc | price_desc | newest


async def browse_offers(*, session: AsyncSession, filters: OfferFilter, first: int | None, after: str | None) -> Page:
    """Active offers with at least their minimum purchase left, in keyset pages."""
    stmt = select(Offer).where(Offer.status == OfferStatus.ACTIVE.value,
                               Offer.quantity_available >= Offer.min_purchase)
    if filters.project_id is not None:
        stmt = stmt.where(Offer.project_id == filters.project_id)
    if filters.vintage is not None:
        stmt = stmt.where(Offer.vintage == filters.vintage)
    if filters.max_price_per_tonne_fen is not None:
        stmt = stmt.where(Offer.price_per_tonne_fen <= filters.max_price_per_tonne_fen)
    if filters.sort == "newest":
        return await keyset_page(session, stmt, keys=[Offer.created_at, Offer.id], first=first, after=after,
                                 descending=True)
    return await keyset_page(session, stmt, keys=[Offer.price_per_tonne_fen, Offer.id], first=first, after=after,
                             descending=filters.sort == "price_desc")


async def get_offer(*, session: AsyncSession, offer_id: uuid.UUID, viewer_id: uuid.UUID | None = None) -> Offer:
    """An active offer (anyone), or any offer of the viewer's own."""
    offer = await session.get(Offer, offer_id)
    if offer is None or (offer.status != OfferStatus.ACTIVE.value and offer.seller_id != viewer_id):
        raise NotFound(message="No such offer.", field="id")
    return offer


async def seller_offers(*, session: AsyncSession, seller_id: uuid.UUID, status: str | None, first: int | None,
                        after: str | None) -> Page:
    stmt = select(Offer).where(Offer.seller_id == seller_id)
    if status:
        stmt = stmt.where(Offer.status == status)
    return await keyset_page(session, stmt, keys=[Offer.created_at, Offer.id], first=first, after=after,
                             descending=True)


async def projects_by_id(*, session: AsyncSession, ids) -> dict[uuid.UUID, Project]:
    ids = list(set(ids))
    if not ids:
        return {}
    return {p.id: p for p in (await session.scalars(select(Project).where(Project.id.in_(ids)))).all()}



# --- orders ------------------------------------------------------------------------------------------


async def get_order(*, session: AsyncSession, order_id: uuid.UUID, buyer_id: uuid.UUID | None = None,
                    seller_id: uuid.UUID | None = None) -> PurchaseOrder:
    order = await session.get(PurchaseOrder, order_id)
    if order is None or (buyer_id is not None and order.buyer_id != buyer_id) or (
            seller_id is not None and order.seller_id != seller_id):
        raise NotFound(message="No such order.", field="id")
    return order


async def buyer_orders(*, session: AsyncSession, buyer_id: uuid.UUID, status: str | None, first: int | None,
                       after: str | None) -> Page:
    stmt = select(PurchaseOrder).where(PurchaseOrder.buyer_id == buyer_id)
    if status:
        stmt = stmt.where(PurchaseOrder.status == status)
    return await keyset_page(session, stmt, keys=[PurchaseOrder.created_at, PurchaseOrder.id], first=first,
                             after=after, descending=True)


async def seller_orders(*, session: AsyncSession, seller_id: uuid.UUID, status: str | None, first: int | None,
                        after: str | None) -> Page:
    stmt = select(PurchaseOrder).where(PurchaseOrder.seller_id == seller_id)
    if status:
        stmt = stmt.where(PurchaseOrder.status == status)
    return await keyset_page(session, stmt, keys=[PurchaseOrder.created_at, PurchaseOrder.id], first=first,
                             after=after, descending=True)


async def delivered_serials(*, session: AsyncSession, order_ids) -> dict[uuid.UUID, list[str]]:
    """The serial ranges each order delivered to its buyer, as `SZCER-...` labels."""
    ids = list(set(order_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(Move.reference_id, Project.code, Move.vintage, Move.first_serial, Move.last_serial)
        .join(Project, Project.id == Move.project_id)
        .where(Move.kind == MoveKind.DELIVER.value, Move.reference_kind == "order", Move.reference_id.in_(ids))
        .order_by(Move.seq))
    found: dict[uuid.UUID, list[str]] = {}
    for order_id, code, vintage, first, last in rows:
        found.setdefault(order_id, []).append(blocks.serial_label(code, vintage, first, last))
    return found
