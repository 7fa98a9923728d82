"""A CHECK given to a column reaches the database, on a new table and on one with rows.

SQLAlchemy keeps ``mapped_column(..., CheckConstraint(...))`` on the column, not among the
table's constraints, and Alembic's ``create_table`` leaves it out: without pgkeel, the rule is
declared in the model and never created, and ``alembic check`` says nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic_project import Project
from sqlalchemy.exc import IntegrityError

MakeProject = Callable[[str], Project]


def upgrade_section(source: str) -> str:
    return source[: source.index("def downgrade")]


def test_a_column_check_of_a_new_table_is_created_with_it(make_project: MakeProject) -> None:
    project = make_project("column_checks")
    migration = upgrade_section(project.revision("create products").read_text())
    assert "op.create_check_constraint(op.f('chk_products_price_positive')" in migration
    project.upgrade()
    project.check()
    with pytest.raises(IntegrityError, match="chk_products_price_positive"):
        project.execute("INSERT INTO products (name, price) VALUES ('free', 0)")
    project.downgrade()
    assert project.query("SELECT count(*) FROM pg_class WHERE relname = 'products'") == [0]


def test_a_column_check_added_to_a_table_with_rows_is_validated_apart(
    make_project: MakeProject,
) -> None:
    project = make_project("column_checks")
    project.revision("create products")
    project.upgrade()
    project.execute("INSERT INTO products (name, price, stock) VALUES ('a', 1, 3), ('b', 2, 0)")
    project.use("models_v2")
    written = "".join(upgrade_section(p.read_text()) for p in project.revisions("stock check"))
    assert "chk_products_stock_not_negative" in written
    assert "postgresql_not_valid=True" in written
    assert "op.validate_constraint(" in written
    project.upgrade()
    project.check()
    with pytest.raises(IntegrityError, match="chk_products_stock_not_negative"):
        project.execute("INSERT INTO products (name, price, stock) VALUES ('c', 1, -1)")
