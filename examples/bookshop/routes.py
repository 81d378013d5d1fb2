import logging
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException
from pydantic import BaseModel
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from bookshop.database import DATABASE_URL, SessionLocal, engine, get_async_db, get_db, session_scope
from bookshop.models import Book, Order

logger = logging.getLogger(__name__)
router = APIRouter()

DbSession = Annotated[Session, Depends(get_db)]


class OrderIn(BaseModel):
    book_id: int
    quantity: int = 1
    email: str


def book_out(book: Book) -> dict:
    return {"id": book.id, "title": book.title, "author": book.author, "price": str(book.price)}


# BUG (SL001): a dependency that returns a new session; nobody ever closes it (used by get_order).
def get_db_leaky() -> Session:
    return SessionLocal()


# BUG (SL002): db.close() is skipped when the endpoint raises, there is no try/finally (used by restock).
def get_db_unsafe():
    db = SessionLocal()
    yield db
    db.close()


def send_receipt(order_id: int) -> None:
    with SessionLocal() as db:
        email = db.scalar(select(Order.email).where(Order.id == order_id))
    logger.info("receipt for order %s sent to %s", order_id, email)


def send_receipt_using(db: Session, order_id: int) -> None:
    email = db.scalar(select(Order.email).where(Order.id == order_id))
    logger.info("receipt for order %s re-sent to %s", order_id, email)


# BUG (SL001): the session is created in the handler and never closed.
@router.get("/books/search")
def search_books(q: str):
    db = SessionLocal()
    books = db.scalars(select(Book).where(Book.title.ilike(f"%{q}%"))).all()
    return [book_out(b) for b in books]


@router.get("/books/{book_id}")
def get_book(book_id: int, db: DbSession):
    book = db.get(Book, book_id)
    if book is None:
        raise HTTPException(status_code=404, detail="Book not found")
    return book_out(book)


# BUG (SL001): the 404 path raises before db.close(), so the session leaks.
@router.get("/books/{book_id}/stock")
def book_stock(book_id: int):
    db = SessionLocal()
    book = db.get(Book, book_id)
    if book is None:
        raise HTTPException(status_code=404, detail="Book not found")
    stock = book.stock
    db.close()
    return {"book_id": book_id, "stock": stock}


@router.get("/books/{book_id}/price")
def book_price(book_id: int):
    db = SessionLocal()
    try:
        book = db.get(Book, book_id)
        if book is None:
            raise HTTPException(status_code=404, detail="Book not found")
        return {"book_id": book_id, "price": str(book.price)}
    finally:
        db.close()


@router.post("/books/{book_id}/restock")
def restock(book_id: int, amount: int, db: Session = Depends(get_db_unsafe)):
    book = db.get(Book, book_id)
    if book is None:
        raise HTTPException(status_code=404, detail="Book not found")
    book.stock += amount
    db.commit()
    return book_out(book)


# BUG (SL007): a failed commit is logged and swallowed, then the session is reused without rollback().
@router.post("/books/{book_id}/reserve")
def reserve_book(book_id: int, db: Session = Depends(get_db)):
    book = db.get(Book, book_id)
    if book is None:
        raise HTTPException(status_code=404, detail="Book not found")
    book.stock -= 1
    try:
        db.commit()
    except Exception:
        logger.exception("could not reserve book %s", book_id)
    db.refresh(book)
    return book_out(book)


@router.get("/authors/{author}/books")
def books_by_author(author: str):
    with SessionLocal() as db:
        books = db.scalars(select(Book).where(Book.author == author)).all()
        return [book_out(b) for b in books]


# BUG (SL003): db is queried again after the `with` block has closed it.
@router.get("/authors")
def list_authors():
    with SessionLocal() as db:
        authors = db.scalars(select(Book.author).distinct()).all()
    total = db.scalar(select(func.count(Book.id)))
    return {"authors": authors, "books": total}


@router.post("/orders", status_code=201)
def create_order(payload: OrderIn, background_tasks: BackgroundTasks, db: DbSession):
    order = Order(book_id=payload.book_id, quantity=payload.quantity, email=payload.email)
    db.add(order)
    try:
        db.commit()
    except Exception:
        db.rollback()
        logger.exception("could not place order for %s", payload.email)
        raise HTTPException(status_code=409, detail="Order could not be placed")
    background_tasks.add_task(send_receipt, order.id)
    return {"id": order.id, "status": order.status}


@router.get("/orders/{order_id}")
def get_order(order_id: int, db: Session = Depends(get_db_leaky)):
    order = db.get(Order, order_id)
    if order is None:
        raise HTTPException(status_code=404, detail="Order not found")
    return {"id": order.id, "status": order.status}


# BUG (SL008): the session is handed to a background task, which runs after the `with` block
# has closed it.
@router.post("/orders/{order_id}/resend-receipt")
def resend_receipt(order_id: int, background_tasks: BackgroundTasks):
    with SessionLocal() as db:
        if db.get(Order, order_id) is None:
            raise HTTPException(status_code=404, detail="Order not found")
        background_tasks.add_task(send_receipt_using, db, order_id)
    return {"queued": True}


@router.post("/orders/{order_id}/ship")
def ship_order(order_id: int):
    with session_scope() as db:
        order = db.get(Order, order_id)
        if order is None:
            raise HTTPException(status_code=404, detail="Order not found")
        order.status = "shipped"
    return {"id": order_id, "status": "shipped"}


@router.post("/orders/{order_id}/pay")
async def pay_order(order_id: int, db: AsyncSession = Depends(get_async_db)):
    order = await db.get(Order, order_id)
    if order is None:
        raise HTTPException(status_code=404, detail="Order not found")
    order.status = "paid"
    await db.commit()
    return {"id": order.id, "status": order.status}


# BUG (SL006): AsyncSession.commit() is a coroutine; without await nothing is committed.
@router.post("/orders/{order_id}/cancel")
async def cancel_order(order_id: int, db: AsyncSession = Depends(get_async_db)):
    order = await db.get(Order, order_id)
    if order is None:
        raise HTTPException(status_code=404, detail="Order not found")
    order.status = "cancelled"
    db.commit()
    return {"id": order.id, "status": order.status}


@router.get("/health")
def health():
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok"}


# BUG (SL004): a new engine, with its own connection pool, is built on every request.
@router.get("/health/db")
def db_health():
    probe_engine = create_engine(DATABASE_URL)
    with probe_engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"database": "ok"}


# BUG (SL005): a sessionmaker is built per request instead of once at import time.
@router.get("/stats")
def stats():
    make_session = sessionmaker(bind=engine)
    with make_session() as db:
        orders = db.scalar(select(func.count(Order.id)))
    return {"orders": orders}
