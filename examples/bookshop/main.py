from contextlib import asynccontextmanager

from fastapi import FastAPI

from bookshop.database import async_engine, engine
from bookshop.models import Base
from bookshop.routes import router


@asynccontextmanager
async def lifespan(app: FastAPI):
    Base.metadata.create_all(bind=engine)
    yield
    engine.dispose()
    await async_engine.dispose()


app = FastAPI(title="Bookshop", lifespan=lifespan)
app.include_router(router)
