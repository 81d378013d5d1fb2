from app.db import SessionLocal

def broken(:
    db = SessionLocal()
