"""Unique rules under the mixins: expressions and options kept, never missing while replaced."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic import command
from alembic_project import Project, load_models
from sqlalchemy import create_engine, exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex
from test_alembic_examples import assert_clean, round_trip

MakeProject = Callable[[str], Project]
MEMBER_ROWS = 5000


def _ddl(example: str, table: str) -> dict[str, str]:
    """``CREATE INDEX`` of each index of a model table, as PostgreSQL would receive it."""
    module = __import__(load_models(example))
    indexes = module.Base.metadata.tables[table].indexes
    return {str(i.name): str(CreateIndex(i).compile(dialect=postgresql.dialect())) for i in indexes}


def test_soft_delete_keeps_expressions_options_and_predicates() -> None:
    ddl = _ddl("expressions", "members")
    assert ddl["uq_members_lower_email"] == (
        "CREATE UNIQUE INDEX uq_members_lower_email ON members (lower(email))"
        " WHERE deleted_at IS NULL"
    )
    assert ddl["uq_members_code"] == (
        "CREATE UNIQUE INDEX uq_members_code ON members (code text_pattern_ops) INCLUDE (status)"
        " WHERE deleted_at IS NULL AND (status IN ('active', 'paused'))"
    )
    assert ddl["uq_members_club_badge"] == (
        "CREATE UNIQUE INDEX uq_members_club_badge ON members (club, badge) NULLS NOT DISTINCT"
        " WHERE deleted_at IS NULL"
    )


def test_tenant_rules_lead_with_tenant_id_and_keep_expressions() -> None:
    items = _ddl("expressions", "items")
    assert items["uq_items_code_lower_label"] == (
        "CREATE UNIQUE INDEX uq_items_code_lower_label ON items (tenant_id, code, lower(label))"
    )
    assert items["uq_items_lower_label"] == (
        "CREATE UNIQUE INDEX uq_items_lower_label ON items (tenant_id, lower(label))"
    )
    documents = _ddl("expressions", "documents")
    assert documents["uq_documents_lower_title"] == (
        "CREATE UNIQUE INDEX uq_documents_lower_title ON documents (tenant_id, lower(title))"
        " WHERE deleted_at IS NULL"
    )


def _refused(project: Project, sql: str) -> bool:
    try:
        project.execute(sql)
    except exc.IntegrityError:
        return True
    return False


def test_expression_rules_migrate_and_hold_on_postgresql(make_project: MakeProject) -> None:
    project = make_project("expressions")
    source = round_trip(project, "create members")
    assert "[sa.literal_column('lower(email)')], unique=True," in source
    definitions = dict(
        project.run(
            lambda c: c.exec_driver_sql(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
                " WHERE indrelid::regclass::text IN ('members', 'items', 'documents')"
            ).all()
        )
    )
    assert definitions["uq_members_lower_email"].endswith(
        "USING btree (lower(email)) WHERE (deleted_at IS NULL)"
    )
    assert definitions["uq_members_code"].endswith(
        "USING btree (code text_pattern_ops) INCLUDE (status) WHERE ((deleted_at IS NULL) AND"
        " (status = ANY (ARRAY['active'::text, 'paused'::text])))"
    )
    assert definitions["uq_members_club_badge"].endswith(
        "USING btree (club, badge) NULLS NOT DISTINCT WHERE (deleted_at IS NULL)"
    )
    assert definitions["uq_items_lower_label"].endswith("USING btree (tenant_id, lower(label))")
    assert definitions["uq_documents_lower_title"].endswith(
        "USING btree (tenant_id, lower(title)) WHERE (deleted_at IS NULL)"
    )
    insert = (
        "INSERT INTO members (email, code, status, badge, club)"
        " SELECT 'm' || g || '@x.test', 'c' || g, 'active', NULL, NULL"
        f" FROM generate_series(1, {MEMBER_ROWS}) g"
    )
    project.execute(insert.replace("NULL, NULL", "'b' || g, NULL"))
    member = "INSERT INTO members (email, code, status, badge) VALUES ('{}', '{}', '{}', '{}')"
    assert _refused(project, member.format("M1@X.TEST", "new", "active", "x"))  # lower(email)
    assert _refused(project, member.format("new@x.test", "c1", "paused", "x"))  # code, live
    assert not _refused(project, member.format("new2@x.test", "c2", "closed", "y"))  # not active
    assert _refused(project, member.format("new3@x.test", "c3x", "active", "b1"))  # NULL club
    project.execute("UPDATE members SET deleted_at = now() WHERE email = 'm1@x.test'")
    assert project.query("SELECT is_deleted FROM members WHERE email = 'm1@x.test'") == [True]
    assert not _refused(project, member.format("M1@x.test", "c1", "active", "b1"))  # freed
    tenants = "INSERT INTO tenants (name) VALUES ('a'), ('b')"
    project.execute(tenants)
    item = "INSERT INTO items (tenant_id, code, label) SELECT id, 'k', '{}' FROM tenants {}"
    project.execute(item.format("Label", ""))  # one per tenant: each tenant has its own
    assert _refused(project, item.format("LABEL", "WHERE name = 'a'"))
    project.check()


def _relfilenode(project: Project) -> list[int]:
    return project.query("SELECT relfilenode FROM pg_class WHERE relname = 'members'")


def _converted(make_project: MakeProject) -> tuple[Project, list[int]]:
    """The convert example with rows, its soft-delete revisions generated but not applied."""
    project = make_project("convert")
    project.revision("create members")
    project.upgrade()
    project.execute(
        "INSERT INTO members (email, club, code) SELECT 'm' || g || '@x.test', 'c' || mod(g, 10),"
        f" 'k' || g FROM generate_series(1, {MEMBER_ROWS}) g"
    )
    before = _relfilenode(project)
    project.use("models_v2")
    paths = project.revisions("soft delete members")
    assert [path.name for path in paths] == [
        "0002_soft_delete_members.py",
        "0003_soft_delete_members_concurrently.py",
    ]
    assert_clean(project, *paths)
    return project, before


DUPLICATE = "INSERT INTO members (email, club, code) VALUES ('M{0}@X.test', 'c{0}', 'k{0}')"
"""The values of member number n (n < 10), in another case: each unique rule refuses it."""
OTHER_CODE = "INSERT INTO members (email, club, code) VALUES ('M{0}@X.test', 'c{0}', 'other')"
"""Member n's email in another case, a free code: only the rule on lower(email) refuses it."""


def test_a_table_with_rows_becomes_soft_delete_without_losing_a_rule(
    make_project: MakeProject,
) -> None:
    project, before = _converted(make_project)
    transactional, concurrent = (path.read_text() for path in project.versions()[1:])
    assert "drop_constraint" not in transactional
    upgrade = concurrent[: concurrent.index("def downgrade")]
    build = upgrade.index("op.create_index('uq_members_email_new', 'members', ['email'], unique")
    drop = upgrade.index(
        "    op.drop_replaced_unique(\n        'uq_members_email',\n        'members',\n"
        "        replaced_by=['uq_members_email_new'],\n    )"
    )
    rename = upgrade.index("op.rename_index('uq_members_email_new', 'uq_members_email')")
    assert build < drop < rename
    lower = upgrade.index("op.create_index('uq_members_lower_email_new'")
    assert lower < upgrade.index(
        "op.drop_replaced_unique(\n            'uq_members_lower_email',\n            'members',\n"
        "            replaced_by=['uq_members_lower_email_new'],\n            index=True,"
    )
    project.upgrade("0002")
    assert _refused(project, DUPLICATE.format(2))  # between the two revisions: rules still hold
    assert _refused(project, OTHER_CODE.format(2))
    project.upgrade()
    assert _relfilenode(project) == before  # no rewrite: is_deleted is not a generated column
    project.check()
    assert _refused(project, DUPLICATE.format(3))
    assert _refused(project, OTHER_CODE.format(3))
    project.execute("UPDATE members SET deleted_at = now() WHERE email = 'm3@x.test'")
    project.execute(DUPLICATE.format(3))  # a deleted row frees its values
    assert project.query("SELECT count(*) FROM members WHERE is_deleted") == [1]
    project.execute("DELETE FROM members WHERE email = 'M3@X.test'")
    project.downgrade("0001")
    assert _refused(project, DUPLICATE.format(5))
    assert _refused(project, OTHER_CODE.format(5))
    assert _relfilenode(project) == before


def test_a_failed_build_leaves_the_old_rule_and_runs_again(make_project: MakeProject) -> None:
    project, _ = _converted(make_project)
    project.upgrade("0002")
    engine = create_engine(project.url)
    with engine.connect() as blocker:  # a long transaction holds a lock the build needs
        blocker.exec_driver_sql("LOCK TABLE members IN SHARE UPDATE EXCLUSIVE MODE")
        config = project.config(settings={"lock_timeout": "200ms"})
        with pytest.raises(exc.OperationalError, match="lock timeout"):
            command.upgrade(config, "head")
        blocker.rollback()
    engine.dispose()
    assert _refused(project, DUPLICATE.format(6))
    constraints = "SELECT conname FROM pg_constraint WHERE conrelid = 'members'::regclass"
    assert "uq_members_email" in project.query(constraints)
    # What a build that failed half-way leaves: the new index, marked invalid.
    project.execute(
        "CREATE UNIQUE INDEX uq_members_email_new ON members (email) WHERE deleted_at IS NULL;"
        "UPDATE pg_index SET indisvalid = false"
        " WHERE indexrelid = 'uq_members_email_new'::regclass"
    )
    project.upgrade()
    project.check()
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'uq_members_email'::regclass"
    assert project.query(valid) == [True]
    assert _refused(project, OTHER_CODE.format(6))


def test_a_unique_index_made_plain_beside_a_new_unique_rule_keeps_its_index(
    make_project: MakeProject,
) -> None:
    """The plain index that takes the rule's name is no replacement: it stays after the upgrade."""
    project = make_project("made_plain")
    project.revision("create items")
    project.upgrade()
    project.execute("INSERT INTO items (sku) SELECT 's' || n FROM generate_series(1, 100) n")
    project.use("models_v2")
    project.revisions("plain sku", "acknowledge=items.idx_items_sku")
    project.upgrade()
    project.check()
    indexes = "SELECT indexrelid::regclass::text || ' ' || indisunique FROM pg_index"
    found = project.query(indexes + " WHERE indrelid = 'items'::regclass")
    assert "idx_items_sku false" in found
    assert "uq_items_code true" in found
    project.execute("INSERT INTO items (sku) VALUES ('s1')")  # skus repeat now
    project.execute("DELETE FROM items WHERE sku = 's1'")
    project.downgrade("0001")
    assert "idx_items_sku true" in project.query(indexes + " WHERE indrelid = 'items'::regclass")
