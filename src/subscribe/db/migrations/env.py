"""Alembic environment: runs on the connection that ``store.upgrade`` hands in."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from subscribe.db import models  # registers the tables

models.declare_partial_indexes()

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
