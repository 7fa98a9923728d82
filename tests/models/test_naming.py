"""Names: one convention, at most 63 bytes, deterministic across processes, equal in pg_catalog."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from pgkeel.base import new_metadata
from pgkeel.naming import (
    MAX_IDENTIFIER_BYTES,
    byte_length,
    fit_identifier,
    index_name,
    is_snake_case,
    pluralize,
    table_name_for,
)

ROOT = Path(__file__).resolve().parents[2]

# Any character PostgreSQL accepts in a quoted identifier: everything but NUL (and surrogates,
# which are not text). Hypothesis draws ASCII-only and mixed names, 1 to 200 UTF-8 bytes.
_ANY_CHARACTER = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def _names(alphabet: st.SearchStrategy[str], max_bytes: int) -> st.SearchStrategy[str]:
    texts = st.text(alphabet, min_size=1, max_size=max_bytes)
    return texts.map(lambda name: name.encode()[:max_bytes].decode(errors="ignore")).filter(bool)


def names(max_bytes: int = 200) -> st.SearchStrategy[str]:
    """Identifiers of 1 to ``max_bytes`` bytes: ASCII, or any Unicode."""
    return st.one_of(_names(_ASCII, max_bytes), _names(_ANY_CHARACTER, max_bytes))


def build_table(metadata: MetaData, table_name: str, columns: list[str]) -> Table:
    """A table with, for every column, an index, a unique constraint, a self-referencing foreign
    key and a CHECK named like the column: every kind of generated name, once per column."""
    table = Table(
        table_name,
        metadata,
        Column("id", Integer, primary_key=True),
        *(Column(name, Integer) for name in columns),
    )
    for name in columns:
        column = table.c[name]
        Index(None, column)
        UniqueConstraint(column)
        ForeignKeyConstraint([column], [table.c.id])
        if byte_length(name) <= MAX_IDENTIFIER_BYTES:  # longer written names are refused
            CheckConstraint(column > 0, name=name)
    return table


def generated_names(table: Table) -> list[str]:
    """Every constraint and index name of ``table``."""
    found = [str(c.name) for c in table.constraints] + [str(i.name) for i in table.indexes]
    assert all(name not in {"None", ""} for name in found)
    return found


def test_the_standards_examples() -> None:
    metadata = new_metadata()
    users = Table(
        "users",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("email", Text, unique=True),
        CheckConstraint("email like '%@%'", name="email_format"),
    )
    posts = Table(
        "posts",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("user_id", ForeignKey("users.id")),
        Column("created_at", Integer),
        Index(None, "user_id", "created_at"),
    )
    assert {c.name for c in users.constraints} == {
        "pk_users",
        "uq_users_email",
        "chk_users_email_format",
    }
    assert {c.name for c in posts.constraints} == {"pk_posts", "fk_posts_user_id"}
    assert {i.name for i in posts.indexes} == {"idx_posts_user_id_created_at"}


def test_unique_index_is_named_like_a_unique_rule() -> None:
    table = Table("accounts", new_metadata(), Column("login", Text, index=True, unique=True))
    assert {i.name for i in table.indexes} == {"uq_accounts_login"}
    assert index_name("accounts", ["login"], unique=True) == "uq_accounts_login"


def test_long_name_keeps_a_readable_prefix_and_a_stable_hash() -> None:
    name = "idx_" + "order_line_items_" * 3 + "warehouse_location_id_created_at"
    fitted = fit_identifier(name)
    assert byte_length(fitted) == MAX_IDENTIFIER_BYTES
    assert fitted.startswith("idx_order_line_items_order_line_items_order_line_")
    # A fixed value: if this changes, every existing database's names would churn.
    assert fitted == "idx_order_line_items_order_line_items_order_line_items_9b26c6e4"


def test_a_multibyte_character_is_never_cut_in_half() -> None:
    fitted = fit_identifier("idx_" + "ü" * 40)  # 84 bytes
    assert byte_length(fitted) <= MAX_IDENTIFIER_BYTES
    assert fitted.encode().decode() == fitted
    assert fitted.startswith("idx_üüü")


NOUNS = [
    ("User", "users"),
    ("Person", "people"),
    ("Child", "children"),
    ("Category", "categories"),
    ("Address", "addresses"),
    ("Status", "statuses"),
    ("Analysis", "analyses"),
    ("Datum", "data"),
    ("Data", "data"),
    ("Man", "men"),
    ("Woman", "women"),
    ("Mouse", "mice"),
    ("Goose", "geese"),
    ("Tooth", "teeth"),
    ("Foot", "feet"),
    ("Criterion", "criteria"),
    ("Phenomenon", "phenomena"),
    ("Crisis", "crises"),
    ("Thesis", "theses"),
    ("Leaf", "leaves"),
    ("Knife", "knives"),
    ("Life", "lives"),
    ("Shelf", "shelves"),
    ("Company", "companies"),
    ("Day", "days"),
    ("Key", "keys"),
    ("Box", "boxes"),
    ("Bus", "buses"),
    ("Quiz", "quizzes"),
    ("Hero", "heroes"),
    ("Potato", "potatoes"),
    ("Photo", "photos"),
    ("Sheep", "sheep"),
    ("Fish", "fish"),
    ("Series", "series"),
    ("Species", "species"),
    ("News", "news"),
    ("Equipment", "equipment"),
    ("Software", "software"),
    ("Feedback", "feedback"),
    ("Invoice", "invoices"),
    ("Batch", "batches"),
    ("Tax", "taxes"),
    ("Entry", "entries"),
    ("Process", "processes"),
    ("Class", "classes"),
    ("Alias", "aliases"),
    ("Ox", "oxen"),
    ("Metadata", "metadata"),
    ("WorkflowStep", "workflow_steps"),
    ("OrderItem", "order_items"),
    ("UserAddress", "user_addresses"),
    ("ProductCategory", "product_categories"),
    ("SalesPerson", "sales_people"),
    ("HTTPRequest", "http_requests"),
    ("APIKey", "api_keys"),
    ("OAuth2Token", "o_auth2_tokens"),
    ("Users", "users"),
]


@pytest.mark.parametrize(("class_name", "table_name"), NOUNS)
def test_table_name_is_plural_snake_case(class_name: str, table_name: str) -> None:
    assert table_name_for(class_name) == table_name


def test_the_noun_table_is_broad_enough() -> None:
    assert len({name for name, _ in NOUNS}) >= 30


@pytest.mark.parametrize("plural", ["people", "children", "categories", "data", "news"])
def test_a_plural_noun_stays_plural(plural: str) -> None:
    assert pluralize(plural) == plural


SNAKE_CASE = re.compile(r"^[a-z_][a-z0-9_]*$")
"""What ``is_snake_case`` accepts, as the pattern it was first written with (``$`` included)."""


SNAKE_CASE_EDGES = [
    *("order_items", "events_2024", "_", "_1", "a", "", "1st", "orderItems", "Order", "a-b"),
    *("a b", "\u00e9", "\u212a", "a\n", "a\n\n", "\n", "a\t", "_\n"),  # \u212a: Kelvin sign
]


@pytest.mark.parametrize("name", SNAKE_CASE_EDGES)
def test_is_snake_case_accepts_what_its_pattern_matches(name: str) -> None:
    assert is_snake_case(name) is bool(SNAKE_CASE.match(name))


@settings(max_examples=500, deadline=None)
@given(name=st.text(st.sampled_from("az_09AZ\n -\u00e9\u0131\u212a"), max_size=6) | names(12))
def test_is_snake_case_accepts_what_its_pattern_matches_for_any_name(name: str) -> None:
    assert is_snake_case(name) is bool(SNAKE_CASE.match(name))


@settings(max_examples=300, deadline=None)
@given(table_name=names(), columns=st.lists(names(), min_size=1, max_size=4, unique=True))
def test_every_generated_name_fits_63_bytes(table_name: str, columns: list[str]) -> None:
    table = build_table(new_metadata(), table_name, [c for c in columns if c != "id"] or ["c"])
    for name in generated_names(table):
        assert byte_length(name) <= MAX_IDENTIFIER_BYTES, name


@settings(max_examples=300, deadline=None)
@given(table_name=names(), columns=st.lists(names(), min_size=2, max_size=6, unique=True))
def test_different_inputs_never_share_a_name_within_a_table(
    table_name: str, columns: list[str]
) -> None:
    table = build_table(new_metadata(), table_name, [c for c in columns if c != "id"])
    found = generated_names(table)
    assert len(found) == len(set(found))


@settings(max_examples=300, deadline=None)
@given(first=names(), second=names())
def test_fitting_never_merges_two_names(first: str, second: str) -> None:
    assert (fit_identifier(first) == fit_identifier(second)) == (first == second)


def _random_name(rng: random.Random) -> str:
    pools = ["abcdefghijklmnopqrstuvwxyz_0123456789", "äöüßéèçñåø", "日本語表名列", "🙂🚀∑ß"]
    pool = "".join(rng.sample(pools, rng.randint(1, len(pools))))
    name = "".join(rng.choice(pool) for _ in range(rng.randint(1, 120)))
    return name.encode()[: rng.randint(1, 200)].decode(errors="ignore") or "x"


def names_for(inputs: list[list[str]]) -> list[list[str]]:
    """The generated names of one table per input (table name first, then columns)."""
    metadata = new_metadata()
    return [
        sorted(generated_names(build_table(metadata, f"{n}_{table}", columns)))
        for n, (table, *columns) in enumerate(inputs)
    ]


_CHILD = """
import json, sys
from tests.models.test_naming import names_for
print(json.dumps(names_for(json.load(sys.stdin))))
"""


def test_names_are_identical_in_another_process() -> None:
    rng = random.Random(20240607)  # noqa: S311  # reproducible test inputs, not secrets
    inputs = [
        [_random_name(rng), *{_random_name(rng) for _ in range(3)} - {"id"}] for _ in range(200)
    ]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # a different str hash seed than ours
    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=ROOT,
        input=json.dumps(inputs),
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert json.loads(child.stdout) == names_for(inputs)


def catalog_names(connection: Connection, table: Table) -> tuple[set[str], set[str]]:
    """(constraint names, index names) of ``table`` as PostgreSQL stores them."""
    oid = connection.execute(
        text("select c.oid from pg_class c where c.relname = :name and pg_table_is_visible(c.oid)"),
        {"name": table.name},
    ).scalar_one()
    constraints = connection.execute(
        text("select conname from pg_constraint where conrelid = :oid"), {"oid": oid}
    ).scalars()
    indexes = connection.execute(
        text(
            "select i.relname from pg_index x join pg_class i on i.oid = x.indexrelid "
            "where x.indrelid = :oid"
        ),
        {"oid": oid},
    ).scalars()
    return set(constraints), set(indexes)


def metadata_names(table: Table) -> tuple[set[str], set[str]]:
    """(constraint names, index names) of ``table`` as pgkeel's metadata has them."""
    constraints = {str(c.name) for c in table.constraints}
    backing = {
        str(c.name)
        for c in table.constraints
        if c.__visit_name__ in {"primary_key_constraint", "unique_constraint"}
    }
    return constraints, {str(i.name) for i in table.indexes} | backing


def assert_catalog_matches(connection: Connection, tables: list[Table]) -> None:
    metadata = tables[0].metadata
    savepoint = connection.begin_nested()
    try:
        metadata.create_all(connection, tables=tables)
        for table in tables:
            assert catalog_names(connection, table) == metadata_names(table)
    finally:
        savepoint.rollback()


def test_catalog_names_equal_metadata_names(connection: Connection) -> None:
    metadata = new_metadata()
    long_table = "warehouse_inventory_adjustment_line_items_with_a_long_name_xy"  # 62 bytes
    umlauts = "bestandsänderungen_für_lagerplätze_und_regalböden_ü"  # 56 bytes, 51 characters
    tables = [
        build_table(metadata, long_table, ["product_variant_identifier_in_catalog", "qty"]),
        build_table(metadata, umlauts, ["größe_in_millimetern_über_null", "Mixed Case"]),
        build_table(metadata, "t", ["日本語の列名", "emoji 🙂 column"]),
        build_table(metadata, 'Odd "Name" %s', ["100% done", "it's", 'quo"te', ":colon", "%(x)s"]),
    ]
    assert_catalog_matches(connection, tables)
    assert any(byte_length(name) == MAX_IDENTIFIER_BYTES for name in generated_names(tables[0]))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    table_name=names(MAX_IDENTIFIER_BYTES),
    columns=st.lists(names(MAX_IDENTIFIER_BYTES), min_size=1, max_size=3, unique=True),
)
def test_catalog_names_equal_metadata_names_for_random_names(
    connection: Connection, table_name: str, columns: list[str]
) -> None:
    table = build_table(new_metadata(), table_name, [c for c in columns if c != "id"] or ["c"])
    assert_catalog_matches(connection, [table])
