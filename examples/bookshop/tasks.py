import logging

from celery import shared_task
from sqlalchemy import select

from bookshop.database import SessionLocal, engine
from bookshop.models import Book, Order

logger = logging.getLogger(__name__)


@shared_task
def restock_low_inventory(threshold: int = 3, amount: int = 10) -> int:
    with SessionLocal() as db:
        books = db.scalars(select(Book).where(Book.stock < threshold)).all()
        for book in books:
            book.stock += amount
        db.commit()
        return len(books)


# BUG (SL001): the early return for a missing or already-handled order skips db.close().
@shared_task
def expire_order(order_id: int) -> bool:
    db = SessionLocal()
    order = db.get(Order, order_id)
    if order is None or order.status != "pending":
        logger.info("order %s not pending, nothing to expire", order_id)
        return False
    order.status = "expired"
    db.commit()
    db.close()
    return True


# BUG (SL009): one session built at import time and shared by every task of the worker.
reporting_db = SessionLocal()


@shared_task
def count_orders() -> int:
    return reporting_db.query(Order).count()


# BUG (SL010): the connection is checked out of the pool and never returned to it.
@shared_task
def vacuum_orders() -> None:
    conn = engine.connect()
    conn.exec_driver_sql("VACUUM")
