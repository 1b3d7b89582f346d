"""Writers that reference rows while a collection runs (importable by spawned processes)."""

from __future__ import annotations

import random
import time

import sqlalchemy as sa


def engine_for(url: str) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _fk(dbapi_connection: object, _record: object) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[attr-defined]

    return engine


def link_randomly(url: str, asset_ids: list[int], seconds: float, seed: int) -> tuple[list[int], int]:
    """Insert version_assets rows for random assets until ``seconds`` pass.

    Returns the asset ids whose link committed, and how many inserts the
    database refused (the asset was deleted first: a foreign key error).
    """
    rng = random.Random(seed)
    engine = engine_for(url)
    committed: list[int] = []
    refused = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            asset = rng.choice(asset_ids)
            try:
                with engine.begin() as conn:
                    conn.execute(
                        sa.text("INSERT INTO version_assets (version_id, asset_id) VALUES (1, :a)"),
                        {"a": asset},
                    )
                    time.sleep(rng.random() * 0.003)  # hold the transaction open a little
                committed.append(asset)
            except sa.exc.IntegrityError:
                refused += 1
            except sa.exc.OperationalError as exc:  # a deadlock victim or a lock timeout: nothing committed
                if "deadlock" not in str(exc).lower() and "lock" not in str(exc).lower():
                    raise
    finally:
        engine.dispose()
    return committed, refused
