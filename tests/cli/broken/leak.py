from app.db import SessionLocal


def leak():
    db = SessionLocal()
    db.execute("select 1")
