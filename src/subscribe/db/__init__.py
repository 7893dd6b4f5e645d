"""The store: SQLModel tables, the engine and keyword-only queries, rate limits, migrations."""
