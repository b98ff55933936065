"""Migrations run on SQLite and PostgreSQL, downgrade cleanly, and match the models."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from ivr_service.persistence import migrate
from ivr_service.persistence.db import make_engine
from ivr_service.persistence.models import Base


def test_models_and_migrations_agree(database_url: str) -> None:
    assert migrate.differences(database_url) == []


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    migrate.downgrade(url, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    migrate.upgrade(url)
    assert migrate.current(url) == "0014"
    assert migrate.differences(url) == []
    engine.dispose()


def test_downgrade_on_the_suite_database(database_url: str) -> None:
    # Runs on PostgreSQL too when TEST_DATABASE_URL is set.
    migrate.downgrade(database_url, "base")
    engine = make_engine(database_url)
    assert not set(Base.metadata.tables) & set(inspect(engine).get_table_names())
    engine.dispose()
    migrate.upgrade(database_url)
    assert migrate.differences(database_url) == []
