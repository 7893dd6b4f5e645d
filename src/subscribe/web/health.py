"""``GET /healthz``: 200 ``ok`` when the database answers, 503 when it does not."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from .context import Ctx

logger = logging.getLogger(__name__)
router = APIRouter()


@router.get("/healthz")
def healthz(context: Ctx) -> PlainTextResponse:
    try:
        with context.engine.connect() as connection:
            connection.execute(sa.text("select 1"))
    except sa.exc.SQLAlchemyError as exc:
        logger.warning("health check: the database does not answer: %s", exc)
        return PlainTextResponse("database unavailable", status_code=503)
    return PlainTextResponse("ok")
