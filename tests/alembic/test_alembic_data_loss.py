"""Migrations never lose data silently: drops, renames and table rewrites, on tables with rows."""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Callable

import pytest
from alembic.config import CommandLine
from alembic_project import Project, ruff_check, squawk
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from alembic_extensions import check
from alembic_extensions.errors import UnsafeMigrationError
from alembic_extensions.loss import checks_reading, probe_rewrite

MakeProject = Callable[[str], Project]
ROWS = 1111


def upgrade_section(source: str) -> str:
    """The ``upgrade()`` body of a migration's source."""
    return source[: source.index("def downgrade")]


def downgrade_section(source: str) -> str:
    """The ``downgrade()`` body of a migration's source."""
    return source[source.index("def downgrade") :]


def relfilenode(project: Project, table: str) -> int:
    """The file the table's rows live in: a new one means PostgreSQL rewrote the table."""
    (node,) = project.query(f"SELECT relfilenode FROM pg_class WHERE relname = '{table}'")
    return int(node)


def foreign_keys(project: Project) -> list[str]:
    """The foreign key constraints in the database."""
    return project.query("SELECT conname FROM pg_constraint WHERE contype = 'f'")


# --- dropping tables that others reference ------------------------------------------------


def fill_library(project: Project) -> None:
    """Authors, their books, reviews of the books; each author's best book set (the cycle)."""
    project.execute(
        "INSERT INTO authors (name) SELECT 'author ' || n FROM generate_series(1, 50) n;"
        "INSERT INTO books (title, author_id) SELECT 'book', id FROM authors;"
        "UPDATE authors SET best_book_id = books.id FROM books WHERE books.author_id = authors.id;"
        "INSERT INTO reviews (book_id, stars) SELECT id, 5 FROM books"
    )


def test_new_tables_in_a_foreign_key_cycle_get_the_key_after_both_exist(
    make_project: MakeProject,
) -> None:
    project = make_project("dropping")
    source = project.revision("create library").read_text()
    upgrade = upgrade_section(source)
    add = (
        "op.create_foreign_key(op.f('fk_authors_best_book_id'), 'authors', 'books',"
        " ['best_book_id'], ['id'])"
    )
    assert add in upgrade  # not left out of the database, as use_alter in create_table was
    assert upgrade.index("op.create_table('books'") < upgrade.index(add)
    downgrade = downgrade_section(source)
    drop = "op.drop_constraint(op.f('fk_authors_best_book_id'), 'authors', type_='foreignkey')"
    assert downgrade.index(drop) < downgrade.index("op.drop_table('books')")
    project.upgrade()
    project.check()
    assert "fk_authors_best_book_id" in foreign_keys(project)
    project.downgrade()
    assert project.leftovers() == {}


def test_dropping_a_referenced_table_drops_its_foreign_keys_first(
    make_project: MakeProject,
) -> None:
    project = make_project("dropping")
    project.revision("create library")
    project.upgrade()
    fill_library(project)
    project.use("models_v2")
    (path,) = project.revisions("drop authors", "acknowledge=authors,books.author_id")
    source = path.read_text()
    assert ruff_check(path).returncode == 0
    upgrade = upgrade_section(source)
    fk_drop = "op.drop_constraint(op.f('fk_books_author_id'), 'books', type_='foreignkey')"
    assert upgrade.index(fk_drop) < upgrade.index("op.drop_table('authors')")
    # The index on the dropped column goes with it, in this revision: no _concurrently
    # revision that would build it again on a column the downgrade has not added back yet.
    assert "# index 'idx_books_author_id' goes with column 'books.author_id'" in upgrade
    downgrade = downgrade_section(source)
    order = [  # the index on the column added back: built concurrently, once it is there
        "op.add_column('books'",
        "op.create_table('authors'",
        "op.create_foreign_key(op.f('fk_books_author_id')",
        (
            "op.create_index(op.f('idx_books_author_id'), 'books', ['author_id'], unique=False,"
            " postgresql_concurrently=True"
        ),
    ]
    assert [downgrade.index(step) for step in order] == sorted(downgrade.index(s) for s in order)
    assert "name='fk_authors_best_book_id'" in downgrade  # its own key, to a table that stays
    project.upgrade()
    project.check()
    assert project.query("SELECT count(*) FROM books") == [50]
    project.downgrade("0001")
    path.unlink()
    project.use("models")
    project.check()  # every key and index is back as the first revision made them
    assert foreign_keys(project) == [
        "fk_authors_best_book_id",
        "fk_books_author_id",
        "fk_reviews_book_id",
    ]


def test_dropping_tables_in_a_foreign_key_cycle_goes_both_ways(
    make_project: MakeProject,
) -> None:
    project = make_project("dropping")
    project.revision("create library")
    project.upgrade()
    fill_library(project)
    project.use("models_v3")
    paths = project.revisions("drop authors and books", "acknowledge=authors,books")
    assert [path.name for path in paths] == [
        "0002_drop_authors_and_books.py",
        "0003_drop_authors_and_books_concurrently.py",
    ]
    upgrade = upgrade_section(paths[0].read_text())
    first_table_drop = upgrade.index("op.drop_table(")
    for key in ("fk_reviews_book_id", "fk_authors_best_book_id", "fk_books_author_id"):
        assert upgrade.index(key) < first_table_drop
    status, report = squawk(project)
    assert status == 0, report  # the acknowledged drops, and nothing else
    project.upgrade()
    project.check()
    assert project.query("SELECT count(*) FROM reviews") == [50]
    # The downgrade creates the tables again, empty: the books these reviews were about are
    # gone (that is what the acknowledgement said), so the key to books cannot come back.
    with pytest.raises(IntegrityError, match="fk_reviews_book_id"):
        project.downgrade("0001")
    project.execute("DELETE FROM reviews")
    project.downgrade("0001")  # the concurrent revision first: its index is on a kept column
    for path in paths:
        path.unlink()
    project.use("models")
    project.check()
    assert len(foreign_keys(project)) == 3


# --- drops and renames ------------------------------------------------------------------------


def fill_customers(project: Project) -> None:
    """``ROWS`` customers, each with a name and a note."""
    project.execute(
        "INSERT INTO customers (name, note) "
        f"SELECT 'customer ' || n, 'note ' || n FROM generate_series(1, {ROWS}) n"
    )


def test_a_dropped_column_and_a_look_alike_rename_are_refused(make_project: MakeProject) -> None:
    project = make_project("renames")
    project.revision("create customers")
    project.upgrade()
    fill_customers(project)
    project.use("models_v2")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revision("rename name")
    found = {(v.rule, v.where) for v in raised.value.violations}
    # full_name is NOT NULL without a default, but the refusal is the rename, not a
    # "needs a default" whose fix would lead to the same drop.
    assert found == {("rename", "customers.name"), ("drop-column", "customers.note")}
    message = str(raised.value)
    assert "op.alter_column('customers', 'name', new_column_name='full_name')" in message
    assert "-x rename=customers.name:full_name" in message
    assert "-x acknowledge=customers.note" in message
    assert "loses every value of name" in message
    assert len(project.versions()) == 1


def test_a_rename_keeps_every_value(make_project: MakeProject) -> None:
    project = make_project("renames")
    project.revision("create customers")
    project.upgrade()
    fill_customers(project)
    before = project.query("SELECT id::text || name FROM customers")
    project.use("models_v2")
    path = project.revision(
        "rename name", "rename=customers.name:full_name", "acknowledge=customers.note"
    )
    source = path.read_text()
    upgrade = upgrade_section(source)
    assert "new_column_name='full_name'" in upgrade
    assert "op.add_column" not in upgrade
    assert "op.drop_column('customers', 'note')" in upgrade
    assert upgrade.index("'drop-column',\n        'customers.note',") < upgrade.index(
        "op.drop_column('customers', 'note')"
    )
    assert ruff_check(path).returncode == 0
    status, report = squawk(project)
    assert status == 0, report
    project.upgrade()
    project.check()
    assert project.query("SELECT id::text || full_name FROM customers") == before
    assert len(before) == ROWS
    project.downgrade("0001")
    assert project.query("SELECT id::text || name FROM customers") == before


def test_the_unique_rules_of_renamed_columns_are_renamed_not_rebuilt(
    make_project: MakeProject,
) -> None:
    """A rename keeps the column's unique rules: no drop to acknowledge, no index to rebuild."""
    project = make_project("renamed_rules")
    project.revision("create customers")
    project.upgrade()
    project.execute(
        "INSERT INTO customers (email, code) "
        "SELECT 'e' || n, 'c' || n FROM generate_series(1, 300) n"
    )
    indexes = "SELECT indexrelid::regclass::text || '@' || indexrelid FROM pg_index"
    before = {row.split("@")[1] for row in project.query(indexes + " WHERE indisunique")}
    project.use("models_v2")
    written = project.revisions(
        "rename", "rename=customers.email:mail", "rename=customers.code:sku"
    )
    upgrade = "".join(upgrade_section(path.read_text()) for path in written)
    assert "drop-unique" not in upgrade
    assert "create_index" not in upgrade
    assert "op.rename_index('uq_customers_email', 'uq_customers_mail')" in upgrade
    project.upgrade()
    project.check()
    after = project.query(indexes + " WHERE indisunique")
    assert {row.split("@")[1] for row in after} == before  # the same indexes, renamed
    assert "uq_customers_mail" in {row.split("@")[0] for row in after}
    with pytest.raises(IntegrityError):
        project.execute("INSERT INTO customers (mail, sku) VALUES ('e1', 'new')")
    with pytest.raises(IntegrityError):
        project.execute("INSERT INTO customers (mail, sku) VALUES ('new', 'c1')")
    project.downgrade("0001")
    project.execute("INSERT INTO customers (email, code) VALUES ('fresh', 'fresh')")
    with pytest.raises(IntegrityError, match="uq_customers_email"):
        project.execute("INSERT INTO customers (email, code) VALUES ('e1', 'other')")


def test_a_rename_keeps_partial_and_expression_rules_of_a_soft_deleted_table(
    make_project: MakeProject,
) -> None:
    """``WHERE deleted_at IS NULL`` and ``lower(code)`` follow the renamed column too."""
    project = make_project("renamed_rules")
    project.use("models_soft")
    project.revision("create members")
    project.upgrade()
    project.execute(
        "INSERT INTO members (email, code) SELECT 'e' || n, 'c' || n FROM generate_series(1, 300) n"
    )
    indexes = "SELECT indexrelid::regclass::text || '@' || indexrelid FROM pg_index"
    before = {row.split("@")[1] for row in project.query(indexes + " WHERE indisunique")}
    project.use("models_soft_v2")
    written = project.revisions("rename", "rename=members.email:mail", "rename=members.code:sku")
    upgrade = "".join(upgrade_section(path.read_text()) for path in written)
    assert "drop-unique" not in upgrade
    assert "create_index" not in upgrade
    assert "op.rename_index('uq_members_email', 'uq_members_mail')" in upgrade
    assert "op.rename_index('uq_members_lower_code', 'uq_members_lower_sku')" in upgrade
    project.upgrade()
    project.check()
    after = project.query(indexes + " WHERE indisunique")
    assert {row.split("@")[1] for row in after} == before  # the same indexes, renamed
    with pytest.raises(IntegrityError):
        project.execute("INSERT INTO members (mail, sku) VALUES ('e1', 'new')")
    with pytest.raises(IntegrityError):
        project.execute("INSERT INTO members (mail, sku) VALUES ('new', 'C1')")
    project.execute("UPDATE members SET deleted_at = now() WHERE mail = 'e2'")
    project.execute("INSERT INTO members (mail, sku) VALUES ('e2', 'again')")  # live rows only
    project.downgrade("0001")
    with pytest.raises(IntegrityError, match="uq_members_lower_code"):
        project.execute("INSERT INTO members (email, code) VALUES ('other', 'C3')")


def test_a_rename_keeps_the_checks_and_foreign_keys_on_the_column(
    make_project: MakeProject,
) -> None:
    """PostgreSQL keeps them through the rename: nothing dropped, added or validated again."""
    project = make_project("renamed_rules")
    project.use("models_keys")
    project.revision("create orders")
    project.upgrade()
    project.execute(
        "INSERT INTO customers (name) VALUES ('c');"
        "INSERT INTO orders (customer_id, qty)"
        " SELECT id, n FROM customers, generate_series(1, 200) n"
    )
    project.use("models_keys_v2")
    written = project.revisions(
        "rename", "rename=orders.customer_id:buyer_id", "rename=orders.qty:quantity"
    )
    upgrade = "".join(upgrade_section(path.read_text()) for path in written)
    for absent in ("drop_constraint", "create_foreign_key", "create_check_constraint"):
        assert absent not in upgrade
    assert 'RENAME CONSTRAINT "fk_orders_customer_id" TO "fk_orders_buyer_id"' in upgrade
    assert "op.rename_index('idx_orders_customer_id', 'idx_orders_buyer_id')" in upgrade
    project.upgrade()
    project.check()
    with pytest.raises(IntegrityError, match="chk_orders_qty_positive"):
        project.execute("INSERT INTO orders (buyer_id, quantity) SELECT id, 0 FROM customers")
    with pytest.raises(IntegrityError, match="fk_orders_buyer_id"):
        project.execute(f"INSERT INTO orders (buyer_id, quantity) VALUES ('{uuid.uuid4()}', 1)")
    project.downgrade("0001")
    with pytest.raises(IntegrityError, match="fk_orders_customer_id"):
        project.execute(f"INSERT INTO orders (customer_id, qty) VALUES ('{uuid.uuid4()}', 1)")


def test_a_dropped_table_and_a_look_alike_rename_are_refused(make_project: MakeProject) -> None:
    project = make_project("renames")
    project.revision("create customers")
    project.upgrade()
    fill_customers(project)
    project.use("models_v3")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revision("rename customers")
    (violation,) = raised.value.violations
    assert (violation.rule, violation.where) == ("rename", "customers")
    assert "op.rename_table('customers', 'clients')" in violation.fix
    assert "loses every row of customers" in violation.problem
    assert "-x acknowledge=customers" in violation.opt_out
    _the_command_alembic_accepts(violation.opt_out)


def _the_command_alembic_accepts(hint: str) -> None:
    """The command a refusal names parses as Alembic's command line (``-x`` goes first)."""
    command = re.search(r"\((alembic [^)]*?), or make revision", hint)
    assert command is not None, hint
    words = shlex.split(command.group(1).replace("'...'", "'drop them'"))
    parsed = CommandLine().parser.parse_args(words[1:])
    assert parsed.x == ["acknowledge=customers"]
    assert parsed.autogenerate


def test_squawk_accepts_an_acknowledged_drop_in_that_migration_only(
    make_project: MakeProject,
) -> None:
    project = make_project("renames")
    project.revision("create customers")
    project.upgrade()
    project.use("models_v2")
    path = project.revision(
        "rename name", "rename=customers.name:full_name", "acknowledge=customers.note"
    )
    config = project.config()
    assert check.check_squawk(config).passed  # `pgkeel check` stays green for good
    source = path.read_text()
    # A drop written by hand, without op.acknowledge, is still squawk's to flag.
    path.write_text(
        source.replace(
            "op.drop_column('customers', 'note')",
            "op.drop_column('customers', 'note')\n    op.drop_column('customers', 'created_at')",
        )
    )
    result = check.check_squawk(project.config())
    assert result.findings is not None
    assert result.findings.count("ban-drop-column") == 1
    assert "0002_rename_name.sql:" in result.findings


# --- column type changes ------------------------------------------------------------------


REWRITES = [
    ("integer", "numeric", True),
    ("integer", "bigint", True),
    ("character varying(50)", "character varying(20)", True),
    ("text", "character varying(100)", True),
    ("numeric(10,2)", "numeric(12,4)", True),
    ("character varying(50)", "character varying(100)", False),
    ("character varying(50)", "text", False),
    ("character varying(50)", "character varying", False),
    ("numeric(10,2)", "numeric(12,2)", False),
    ("numeric(10,2)", "numeric", False),
    ("timestamp(3) with time zone", "timestamp(6) with time zone", False),
]


@pytest.mark.parametrize(("old", "new", "rewrites"), REWRITES)
def test_the_probe_agrees_with_a_real_table_of_rows(
    db_engine: Engine, old: str, new: str, *, rewrites: bool
) -> None:
    with db_engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE sample (value {old})")
        cast = "now()" if "timestamp" in old else "n"
        connection.exec_driver_sql(
            f"INSERT INTO sample SELECT {cast}::{old} FROM generate_series(1, 1000) n"
        )
        node = text("SELECT relfilenode FROM pg_class WHERE relname = 'sample'")
        before = connection.execute(node).scalar_one()
        connection.exec_driver_sql(f"ALTER TABLE sample ALTER COLUMN value TYPE {new}")
        rewritten = connection.execute(node).scalar_one() != before
        verdict = probe_rewrite(connection, old, new)
        connection.exec_driver_sql("DROP TABLE sample")
    assert rewritten is rewrites
    assert (verdict is not None) is rewrites


def test_a_cast_that_needs_using_is_a_rewrite(db_engine: Engine) -> None:
    with db_engine.begin() as connection:
        verdict = probe_rewrite(connection, "text", "integer")
    assert verdict is not None
    assert verdict.startswith("needs a USING cast")


def fill_measurements(project: Project) -> None:
    """1,000 measurements."""
    project.execute(
        "INSERT INTO measurements (label, title, amount, count, code) "
        "SELECT 'label ' || n, 'title', n / 3.0, n, n::text FROM generate_series(1, 1000) n"
    )


def test_type_changes_without_a_rewrite_pass(make_project: MakeProject) -> None:
    project = make_project("column_types")
    project.revision("create measurements")
    project.upgrade()
    fill_measurements(project)
    node = relfilenode(project, "measurements")
    project.use("models_v2")
    path = project.revision("wider columns")
    upgrade = upgrade_section(path.read_text())
    for column in ("label", "title", "amount"):
        assert (
            f"op.acknowledge(\n        'type-change',\n        'measurements.{column}'," in upgrade
        )
    assert "no table rewrite (checked by pgkeel)" in upgrade
    status, report = squawk(project)
    assert status == 0, report
    project.upgrade()
    project.check()
    assert relfilenode(project, "measurements") == node  # the same file: no rewrite
    assert project.query("SELECT count(*) FROM measurements") == [1000]


def test_type_changes_that_rewrite_are_refused_unless_acknowledged(
    make_project: MakeProject,
) -> None:
    project = make_project("column_types")
    project.revision("create measurements")
    project.upgrade()
    fill_measurements(project)
    node = relfilenode(project, "measurements")
    project.use("models_v3")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revision("narrower columns")
    violations = {v.where: v for v in raised.value.violations}
    assert set(violations) == {"measurements.label", "measurements.count", "measurements.code"}
    assert {v.rule for v in violations.values()} == {"table-rewrite"}
    assert "from integer to NUMERIC rewrites the table" in violations["measurements.count"].problem
    assert "needs a USING cast" in violations["measurements.code"].problem
    assert "backfill the new column in batches" in violations["measurements.label"].fix
    assert len(project.versions()) == 1
    path = project.revision(
        "narrower columns", "acknowledge=measurements.label,measurements.count,measurements.code"
    )
    upgrade = upgrade_section(path.read_text())
    assert "postgresql_using='\"code\"::INTEGER')" in upgrade
    assert upgrade.count("op.acknowledge(\n        'table-rewrite',") == 3
    status, report = squawk(project)
    assert status == 0, report
    project.upgrade()
    project.check()
    assert relfilenode(project, "measurements") != node  # rewritten, as the refusal said
    assert project.query("SELECT sum(code) FROM measurements") == [500500]


# --- type changes a CHECK constraint makes PostgreSQL scan for ---------------------------------

SCANS = [
    ("character varying(20)", "text", "label ~ '^l[0-9]+$'", True),
    ("character varying(20)", "text", "COLUMN CHECK (label ~ '^l[0-9]+$')", True),
    ("character varying(20)", "character varying(40)", "label <> ''", True),
    ("numeric(10,2)", "numeric(12,2)", "label >= 0", True),
    ("character varying(20)", "text", "char_length(label) > 0 AND other > 0", True),
    ("character varying(20)", "text", "other > 0", False),  # a check on another column
    ("character varying(20)", "text", "NOT VALID", False),  # a check never validated
    ("character varying(20)", "text", None, False),
]


def create_sample(connection: Connection, old: str, check: str | None) -> None:
    """``sample`` with 1,000 rows and the check: on the table, or ``COLUMN ...`` on the column.

    ``NOT VALID``: a check that reads ``label``, never validated.
    """
    column_check = check[len("COLUMN") :] if check and check.startswith("COLUMN") else ""
    connection.exec_driver_sql(
        f"CREATE TABLE sample (label {old}{column_check}, other integer DEFAULT 1)"
    )
    value = "n" if old.startswith("numeric") else "'l' || n"
    connection.exec_driver_sql(
        f"INSERT INTO sample (label) SELECT {value} FROM generate_series(1, 1000) n"
    )
    if check == "NOT VALID":
        connection.exec_driver_sql("ALTER TABLE sample ADD CHECK (label IS NOT NULL) NOT VALID")
    elif check is not None and not column_check:
        connection.exec_driver_sql(f"ALTER TABLE sample ADD CHECK ({check})")


@pytest.mark.parametrize(("old", "new", "check", "scans"), SCANS)
def test_the_checks_found_are_those_postgresql_scans_the_table_for(
    db_engine: Engine, old: str, new: str, check: str | None, *, scans: bool
) -> None:
    read = text("SELECT pg_stat_get_xact_tuples_returned('sample'::regclass)")
    with db_engine.begin() as connection:
        create_sample(connection, old, check)
        found = checks_reading(connection, None, "sample", "label")
        before = connection.execute(read).scalar_one()
        connection.exec_driver_sql(f"ALTER TABLE sample ALTER COLUMN label TYPE {new}")
        scanned = connection.execute(read).scalar_one() - before
        verdict = probe_rewrite(connection, old, new)
        connection.exec_driver_sql("DROP TABLE sample")
    assert verdict is None  # no rewrite: the probe alone would let every one of them pass
    assert scanned == (1000 if scans else 0)
    assert bool(found) is scans


def test_a_new_type_that_is_a_domain_with_checks_is_a_rewrite(db_engine: Engine) -> None:
    with db_engine.begin() as connection:
        connection.exec_driver_sql("CREATE DOMAIN label_text AS text CHECK (VALUE <> '')")
        to_domain = probe_rewrite(connection, "text", "label_text")
        from_domain = probe_rewrite(connection, "label_text", "text")
        connection.exec_driver_sql("DROP DOMAIN label_text")
    assert to_domain == "rewrites the table"
    assert from_domain is None


def fill_items(project: Project) -> None:
    """1,000 items, and a check on ``note`` only the database has, never validated."""
    project.execute(
        "INSERT INTO items (label, title, amount, note) "
        "SELECT 'l' || n, 'title', n / 3.0, 'note' FROM generate_series(1, 1000) n;"
        "ALTER TABLE items ADD CONSTRAINT chk_items_note CHECK (note <> '') NOT VALID"
    )


def test_a_type_change_a_check_scans_for_is_refused_unless_acknowledged(
    make_project: MakeProject,
) -> None:
    project = make_project("checked_types")
    project.revision("create items")
    project.upgrade()
    fill_items(project)
    project.use("models_v2")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revision("wider columns")
    violations = {v.where: v for v in raised.value.violations}
    assert set(violations) == {"items.label", "items.title", "items.amount"}
    assert {v.rule for v in violations.values()} == {"table-rewrite"}
    label = violations["items.label"]
    assert "check every row against chk_items_label_shape again" in label.problem
    assert "ACCESS EXCLUSIVE" in label.problem
    assert "add the check back NOT VALID" in label.fix
    validate = "op.validate_constraint('chk_items_title_amount', 'items')"
    assert validate in violations["items.amount"].fix
    assert "-x acknowledge=items.title" in violations["items.title"].opt_out
    assert len(project.versions()) == 1
    path = project.revision("wider columns", "acknowledge=items.label,items.title,items.amount")
    upgrade = upgrade_section(path.read_text())
    assert upgrade.count("op.acknowledge(\n        'table-rewrite',") == 3
    note = "op.acknowledge(\n        'type-change',\n        'items.note',"
    assert note in upgrade  # its check is NOT VALID: PostgreSQL does not scan for it
    status, report = squawk(project)
    assert status == 0, report
    project.upgrade()
    project.check()
    assert project.query("SELECT count(*) FROM items WHERE label ~ '^l[0-9]+$'") == [1000]


# --- unique rules that nothing replaces ------------------------------------------------------


def test_a_dropped_unique_rule_is_refused_unless_acknowledged(make_project: MakeProject) -> None:
    """A unique=True removed from the model: duplicates would be allowed from then on."""
    project = make_project("downgrades")
    project.revision("create customers and orders")
    project.upgrade()
    project.execute("INSERT INTO customers (email) VALUES ('a@x.test'), ('b@x.test')")
    project.use("models_v2")
    with pytest.raises(UnsafeMigrationError) as raised:
        project.revision("loosen", "acknowledge=orders.note")
    found = {(v.rule, v.where) for v in raised.value.violations}
    assert ("drop-unique", "customers.uq_customers_email") in found
    message = str(raised.value)
    assert "no new unique rule replaces it" in message
    assert "-x acknowledge=customers.uq_customers_email" in message
    assert len(project.versions()) == 1
    path = project.revision("loosen", "acknowledge=orders.note,customers.uq_customers_email")
    upgrade = upgrade_section(path.read_text())
    assert upgrade.index("'customers.uq_customers_email'") < upgrade.index(
        "op.drop_constraint(op.f('uq_customers_email')"
    )
    project.upgrade()
    project.execute("INSERT INTO customers (email) VALUES ('a@x.test')")  # allowed, as asked
    assert project.query("SELECT count(*) FROM customers WHERE email = 'a@x.test'") == [2]
