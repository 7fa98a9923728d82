"""The comparators and operations on their own: SQL of each operation, reverses, catalog queries."""

from __future__ import annotations

import inspect
import io
from collections.abc import Iterator

import pytest
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.operations.ops import UpgradeOps
from sqlalchemy import (
    UUID,
    Column,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import URL, Connection

from alembic_extensions.catalog import QUERY_COUNT
from alembic_extensions.expressions import canonical_expression, literal_of_cast
from alembic_extensions.indexes import normalise_predicate
from alembic_extensions.ops import (
    OBJECT_OPERATIONS,
    CreateObjectOp,
    DropObjectOp,
    OperationNames,
    ReplaceFunctionOp,
)
from alembic_extensions.registration import PLUGIN_NAME, ensure_registered
from pgkeel.dbobjects import Policy, RowLevelSecurity, Trigger, TriggerFunction, attach, marker
from pgkeel.ddl import timestamp_objects
from pgkeel.indexes import uncovered_foreign_keys
from pgkeel.naming import allow
from pgkeel.testing.databases import create_database, drop_database

FUNCTION = TriggerFunction(name="touch", body="NEW.n := NEW.n + 1;\nRETURN NEW;")
POLICY = Policy(table="notes", name="mine", using="owner = current_user", with_check="true")


def offline_sql(*calls: str) -> str:
    """Run ``op.<call>`` lines against an offline PostgreSQL context; the SQL they emit."""
    ensure_registered()
    buffer = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="postgresql",
        dialect_opts={"paramstyle": "named"},  # as run_migrations configures offline mode
        opts={"as_sql": True, "output_buffer": buffer},
    )
    op = Operations(context)
    for call in calls:
        eval(f"op.{call}", {"op": op})  # noqa: S307  # the test's own literal calls
    return buffer.getvalue()


def test_operations_emit_their_ddl_and_stamp_a_fingerprint() -> None:
    sql = offline_sql(
        "create_trigger_function('touch', 'NEW.n := NEW.n + 1;\\nRETURN NEW;')",
        "create_trigger('notes', 'trg_notes_touch', function='touch', events=['INSERT', 'UPDATE'])",
        "enable_row_level_security('notes')",
        "create_policy('notes', 'mine', using='owner = current_user', with_check='true')",
        "validate_constraint('fk_notes_owner', 'notes')",
    )
    assert 'CREATE OR REPLACE FUNCTION "touch"() RETURNS trigger LANGUAGE plpgsql AS' in sql
    assert f"""COMMENT ON FUNCTION "touch"() IS '{marker(FUNCTION)}';""" in sql
    assert (
        'CREATE TRIGGER "trg_notes_touch" BEFORE INSERT OR UPDATE ON "notes" FOR EACH ROW'
        ' EXECUTE FUNCTION "touch"();'
    ) in sql
    assert 'ALTER TABLE "notes" ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;' in sql
    assert (
        'CREATE POLICY "mine" ON "notes" FOR ALL USING (owner = current_user) WITH CHECK (true);'
    ) in sql
    assert """COMMENT ON POLICY "mine" ON "notes" IS 'pgkeel:""" in sql
    assert '"using": "owner = current_user"' in sql
    assert 'ALTER TABLE "notes" VALIDATE CONSTRAINT "fk_notes_owner";' in sql


def test_text_with_colons_and_percents_is_sent_as_written(catalog_database: str) -> None:
    call = "create_policy('notes', 'p', using=\"note LIKE '%:x%'\", with_check='owner::text = n')"
    assert "USING (note LIKE '%:x%') WITH CHECK (owner::text = n)" in offline_sql(call)
    engine = create_engine(catalog_database)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE notes (note text, owner text, n text)")
            eval(f"op.{call}", {"op": Operations(MigrationContext.configure(connection))})  # noqa: S307
            expressions = connection.exec_driver_sql(
                "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polname = 'p'"
            ).scalar()
    finally:
        engine.dispose()
    assert expressions == "(note ~~ '%:x%'::text)"


@pytest.mark.parametrize("names", OBJECT_OPERATIONS.values(), ids=OBJECT_OPERATIONS.keys())
def test_a_drop_takes_what_its_create_takes(names: OperationNames) -> None:
    """``op.drop_policy(...)`` and ``op.create_policy(...)`` take the same arguments, documented."""
    ensure_registered()
    create, drop = getattr(Operations, names.create), getattr(Operations, names.drop)
    assert inspect.signature(create) == inspect.signature(drop)
    assert create.__doc__ == drop.__doc__
    assert not str(drop.__doc__).startswith("This method is proxied")


@pytest.mark.parametrize(
    "op",
    [
        CreateObjectOp(FUNCTION),
        DropObjectOp(POLICY),
        CreateObjectOp(RowLevelSecurity("notes")),
        ReplaceFunctionOp(FUNCTION, TriggerFunction(name="touch", body="RETURN NEW;")),
    ],
    ids=["create", "drop", "row-security", "replace"],
)
def test_each_operation_reverses_to_itself(op: CreateObjectOp) -> None:
    twice = op.reverse().reverse()
    assert (type(twice), twice.target) == (type(op), op.target)
    assert op.to_diff_tuple()[1] == op.target


def test_rendered_operations_are_calls_that_rebuild_the_object() -> None:
    ensure_registered()
    context = MigrationContext.configure(dialect_name="postgresql")
    trigger = Trigger(table="notes", name="trg_notes_touch", function=FUNCTION)
    upgrade = UpgradeOps([CreateObjectOp(FUNCTION), CreateObjectOp(trigger), DropObjectOp(POLICY)])
    code = render_python_code(upgrade, migration_context=context)
    function = "op.create_trigger_function(\n        'touch',\n        body=(\n"
    assert f"{function}            'NEW.n := NEW.n + 1;\\n'\n            'RETURN NEW;'\n" in code
    assert "op.create_trigger('notes', 'trg_notes_touch', function='touch')" in code
    assert (
        "op.drop_policy('notes', 'mine', using='owner = current_user', with_check='true')" in code
    )


@pytest.mark.parametrize(
    ("model", "catalog"),
    [
        ("deleted_at IS NULL", "(deleted_at IS NULL)"),
        ("deleted_at IS NULL AND email != ''", "((deleted_at IS NULL) AND (email <> ''::text))"),
        ("at < now()", "(at < now())"),
        ("kind = 'a'", "((kind)::text = 'a'::text)"),
        ("at > '2020-01-01'", "(at > '2020-01-01 00:00:00+00'::timestamp with time zone)"),
    ],
)
def test_predicates_compare_after_normalisation(model: str, catalog: str) -> None:
    if "2020" in model:  # a literal PostgreSQL rewrites: reported as a change, never missed
        assert normalise_predicate(model) != normalise_predicate(catalog)
    else:
        assert normalise_predicate(model) == normalise_predicate(catalog)


KEPT_CASTS = frozenset({"status", "priority", "ref"})
"""Columns of an enum, a number and a uuid: PostgreSQL never writes their cast to text itself."""


@pytest.mark.parametrize(
    ("with_cast", "without"),
    [
        ("status::text <= 'closed'", "(status <= 'closed'::order_status)"),
        ("priority::text >= '5'", "(priority >= 5)"),
        ("ref::text = 'A'", "(ref = 'A'::uuid)"),
        ("t.status::text <= 'closed'", "(t.status <= 'closed'::order_status)"),
        ("\"status\"::text <= 'closed'", "(status <= 'closed'::order_status)"),
    ],
)
def test_a_cast_to_text_that_changes_the_comparison_is_kept(with_cast: str, without: str) -> None:
    assert normalise_predicate(with_cast, KEPT_CASTS) != normalise_predicate(without, KEPT_CASTS)


@pytest.mark.parametrize(
    ("with_cast", "without"),
    [
        ("abs(balance)::text = '0'", "(abs(balance) = '0'::numeric)"),
        ("(a + b)::text = '3'", "((a + b) = 3)"),
        ("coalesce(name, '')::text <> ''", "(COALESCE(name, ''::text) <> ''::text)"),
    ],
)
def test_an_expressions_cast_to_text_is_kept_where_postgresql_settles_it(
    with_cast: str, without: str
) -> None:
    """Kept where the caller asks PostgreSQL when spellings differ (predicates, checks)."""
    assert normalise_predicate(with_cast, settled=True) != normalise_predicate(
        without, settled=True
    )


@pytest.mark.parametrize(
    ("model", "catalog"),
    [
        ("status::text <= 'closed'", "((status)::text <= 'closed'::text)"),
        ("priority::text >= '5'", "((priority)::text >= '5'::text)"),
        ("kind = 'a'", "((kind)::text = 'a'::text)"),  # varchar: not a kept column
    ],
)
def test_a_kept_cast_compares_equal_to_its_server_spelling(model: str, catalog: str) -> None:
    assert normalise_predicate(model, KEPT_CASTS) == normalise_predicate(catalog, KEPT_CASTS)


@pytest.mark.parametrize(
    ("model", "catalog"),
    [
        ("a > 0 OR (b > 0 AND c > 0)", "((a > 0) OR ((b > 0) AND (c > 0)))"),
        ("a > 0 OR b > 0 AND c > 0", "((a > 0) OR ((b > 0) AND (c > 0)))"),
        ("((code ~ '^[A-Z]{3}$'))", "(code ~ '^[A-Z]{3}$'::text)"),
        ("\"code\" = 'x'", "((code)::text = 'x'::text)"),
        ("\"Code\" = 'x'", "((\"Code\")::text = 'x'::text)"),
        ("NOT archived AND kind != 'a b'", "((NOT archived) AND (kind <> 'a b'::text))"),
        ("a - b - c > 0", "(((a - b) - c) > 0)"),
        ("name LIKE 'A%'", "(name ~~ 'A%'::text)"),
        ("name NOT ILIKE 'a%'", "(name !~~* 'a%'::text)"),
        ("at >= now() - interval_days", "(at >= (now() - interval_days))"),
        ("x IS NOT NULL", "(x IS NOT NULL)"),
        (
            "current_setting('app.tenant_id')::uuid",
            "(current_setting('app.tenant_id'::text))::uuid",
        ),
        ("CASE WHEN a THEN 'X' END", "case  when a then 'X' END"),
        ("amount >= 0 AND rate < 1.5", "((amount >= (0)::numeric) AND (rate < 1.5))"),
        ("price * 2", "(price * (2)::numeric)"),
        ("'{}'", "'{}'::jsonb"),
        ("status = 'open'", "(status = 'open'::order_status)"),
        ("'{}'", "'{}'::text[]"),
    ],
)
def test_the_server_spelling_of_the_same_rule_compares_equal(model: str, catalog: str) -> None:
    """Decided from the text alone: no round trip to PostgreSQL."""
    assert normalise_predicate(model) == normalise_predicate(catalog)


@pytest.mark.parametrize(
    ("stored", "literal"),
    [
        ("'-1'::integer", "'-1'"),
        ("'open'::character varying", "'open'"),
        ("'pending'::text", "'pending'"),
        ("'{}'::jsonb", "'{}'"),
        ("'paid'::order_status", "'paid'"),
        ("'2020-01-01 00:00:00'::timestamp without time zone", "'2020-01-01 00:00:00'"),
        ("'1.5'::double precision", "'1.5'"),
        ("'a b'::text", "'a b'"),
        ("''::text", "''"),
    ],
)
def test_a_literal_with_the_cast_postgresql_writes_is_read_without_the_lexer(
    stored: str, literal: str
) -> None:
    """The shortcut says what the canonical spelling says: the same value as the literal."""
    assert literal_of_cast(stored) == literal
    assert canonical_expression(stored) == canonical_expression(literal) == literal


@pytest.mark.parametrize(
    "stored",
    [
        "'ab'::bpchar",  # blank-padded: the cast changes the value
        "'ab'::character",
        "'ab'::name",
        "'ab'::character varying(1)",  # a length: the cast may cut the value
        "'{}'::text[]",  # an array: left to the lexer
        "'it''s'::text",  # a quote inside: left to the lexer
        "E'a\\nb'::text",  # an escape string
        "'a'::public.status",  # a schema-qualified type
        "'a'::\"Status\"",  # a quoted type name
        "'a'::text || 'b'::text",  # more than a literal
        "('a'::text)::integer",
        "'a'",  # no cast
        "now()",
        "'a'::Text",  # PostgreSQL writes type names in lower case
        "'a'::timestamp with local zone",  # a word no type name has
    ],
)
def test_anything_but_a_plain_literal_and_its_cast_is_left_to_the_lexer(stored: str) -> None:
    assert literal_of_cast(stored) is None


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("code ~ '^[a-z]{3}$'", "code ~ '^[A-Z]{3}$'"),
        ("(status = 'active'::text)", "status = 'ACTIVE'"),
        ("'pending'::text", "'Pending'"),
        ("(label = 'a b'::text)", "label = 'ab'"),
        ("(label = 'a b'::text)", "label = 'a  b'"),
        ("((a > 0) OR ((b > 0) AND (c > 0)))", "(a > 0 OR b > 0) AND c > 0"),
        ("((a - b) - c)", "a - (b - c)"),
        ("((NOT a) AND b)", "NOT (a AND b)"),
        ("(code = 'x'::text)", "\"Code\" = 'x'"),
        ("(code = 'x'::text)", "code = 'x'::character varying(1)"),
        ("(amount > (0)::numeric)", "amount::integer > 0"),
        ("(amount > (1.5)::integer)", "amount > 1.5"),
        ("(code = 'a'::bpchar)", "code = 'a'"),
        ("(code = 'abc'::character varying(2))", "code = 'abc'"),
        ("(ratio > (1)::real)", "ratio > 1"),
        ('(flag = "true")', "flag = true"),  # a column named true, then the value
        ('(owner = "user")', "owner = user"),
        ("(name ~~ 'A%'::text)", "name ILIKE 'A%'"),
        ("CASE WHEN a THEN 'x' END", "CASE WHEN a THEN 'X' END"),
        ("(a = ANY (ARRAY['x'::text, 'y'::text]))", "(a = ANY (ARRAY['x'::text, 'Y'::text]))"),
    ],
)
def test_a_change_inside_literals_names_or_grouping_is_never_spelt_away(old: str, new: str) -> None:
    """A difference the text keeps: the plugin then asks PostgreSQL, which reports the change."""
    assert normalise_predicate(old) != normalise_predicate(new)


def test_foreign_keys_covered_by_an_index_a_key_or_an_opt_out() -> None:
    metadata = MetaData()
    Table("users", metadata, Column("id", UUID, primary_key=True))
    members = Table(
        "members",
        metadata,
        Column("user_id", UUID, ForeignKey("users.id"), primary_key=True),
        Column("group_id", UUID, ForeignKey("users.id"), primary_key=True),
        Column("invited_by", UUID, ForeignKey("users.id", info=allow("fk-index"))),
        Column("approved_by", UUID, ForeignKey("users.id")),
        Column("owner_id", UUID, ForeignKey("users.id")),
        Index("idx_members_owner_id_approved_by", "owner_id", "approved_by"),
    )
    uncovered = [fk.column_keys for fk in uncovered_foreign_keys(members)]
    assert uncovered == [["approved_by"], ["group_id"]]


@pytest.fixture
def catalog_database(pgkeel_server_url: URL, pgkeel_database_prefix: str) -> Iterator[str]:
    name = f"{pgkeel_database_prefix}_ae_catalog"
    url = create_database(pgkeel_server_url, name)
    yield url.render_as_string(hide_password=False)
    drop_database(pgkeel_server_url, name)


def timestamped_tables(count: int) -> MetaData:
    metadata = MetaData()
    for number in range(count):
        table = Table(
            f"things_{number}",
            metadata,
            Column("id", UUID, primary_key=True),
            Column("note", Text()),
            Column("created_at", DateTime(timezone=True), server_default=text("now()")),
            Column("updated_at", DateTime(timezone=True), server_default=text("now()")),
        )
        attach(table, *timestamp_objects(table))
    return metadata


def statements(connection: Connection, metadata: MetaData, plugins: list[str]) -> int:
    """How many statements an autogenerate comparison runs; it must find nothing to do."""
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(connection, "before_cursor_execute", count)
    try:
        context = MigrationContext.configure(
            connection, opts={"target_metadata": metadata, "autogenerate_plugins": plugins}
        )
        assert produce_migrations(context, metadata).upgrade_ops.is_empty()
    finally:
        event.remove(connection, "before_cursor_execute", count)
    return len(seen)


def test_catalog_queries_do_not_grow_with_the_tables(catalog_database: str) -> None:
    """The plugin adds the same few queries for 3 tables and for 30 (create_all made them)."""
    ensure_registered()
    engine = create_engine(catalog_database)
    added = {}
    try:
        for count in (3, 30):
            metadata = timestamped_tables(count)
            with engine.begin() as connection:
                metadata.drop_all(connection)
                metadata.create_all(connection)
            with engine.connect() as connection:
                statements(connection, metadata, ["alembic.autogenerate.*"])  # warm the caches
                plain = statements(connection, metadata, ["alembic.autogenerate.*"])
                pgkeel = statements(connection, metadata, ["alembic.autogenerate.*", PLUGIN_NAME])
            added[count] = pgkeel - plain
    finally:
        engine.dispose()
    per_run = QUERY_COUNT
    assert added == {3: per_run, 30: per_run}
