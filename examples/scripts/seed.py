"""Load sample books. Run from examples/:  PYTHONPATH=. python scripts/seed.py"""
from decimal import Decimal

from sqlalchemy import func, select

from bookshop.database import SessionLocal, engine
from bookshop.models import Base, Book

SAMPLE_BOOKS = [
    ("A Field Guide to Quiet Rivers", "Mara Ellison", "18.50", 7),
    ("The Lighthouse Ledger", "Tomas Brandt", "12.99", 2),
    ("Winter Orchard", "Paul Varga", "9.75", 1),
]


def main() -> None:
    Base.metadata.create_all(bind=engine)
    with SessionLocal() as db:
        existing = set(db.scalars(select(Book.title)))
        for title, author, price, stock in SAMPLE_BOOKS:
            if title not in existing:
                db.add(Book(title=title, author=author, price=Decimal(price), stock=stock))
        db.commit()
    report()


# BUG (SL001): the session opened here is never closed.
def report() -> None:
    db = SessionLocal()
    count = db.scalar(select(func.count(Book.id)))
    low = db.scalars(select(Book.title).where(Book.stock < 3)).all()
    print(f"{count} books; running low: {', '.join(low) or 'none'}")


if __name__ == "__main__":
    main()
