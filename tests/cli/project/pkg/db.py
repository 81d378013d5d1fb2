from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("sqlite://")
Maker = sessionmaker(bind=engine)


def get_db():
    with Maker() as db:
        yield db
