"""A rule changed only inside a string literal, a quoted name or its grouping is migrated.

Checks, partial-index predicates and server defaults are compared first as text in one canonical
spelling, then as PostgreSQL stores them. A change of letter case or spaces inside a literal, or
parentheses that regroup ``AND`` and ``OR``, is a new rule: it must reach the database. The same
rules spelt as PostgreSQL stores them are no change at all.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic_project import Project
from sqlalchemy.exc import IntegrityError

from alembic_extensions.errors import UnsafeMigrationError

MakeProject = Callable[[str], Project]


def upgrade_section(source: str) -> str:
    """The ``upgrade()`` body of a migration's source."""
    return source[: source.index("def downgrade")]


def migrated_codes(make_project: MakeProject) -> Project:
    """The first version of the example's rules, migrated."""
    project = make_project("literal_rules")
    project.revision("create codes")
    project.upgrade()
    return project


def test_rules_changed_inside_literals_and_grouping_are_migrated(
    make_project: MakeProject,
) -> None:
    project = migrated_codes(make_project)
    project.use("models_v2")
    with pytest.raises(UnsafeMigrationError, match=r"\[drop-unique\] codes\.uq_codes_code:"):
        project.revisions("upper case")  # 'active' codes are no longer unique: a narrower rule
    written = project.revisions("upper case", "acknowledge=codes.uq_codes_code")
    upgrade = "".join(upgrade_section(path.read_text()) for path in written)
    for name in ("chk_codes_code_shape", "chk_codes_amounts", "chk_codes_kind"):
        assert f"op.drop_constraint(op.f('{name}')" in upgrade
    assert "status = 'ACTIVE'" in upgrade
    assert "'Pending'" in upgrade
    project.upgrade()
    project.check()
    project.execute("INSERT INTO codes (code, status, a, b, c) VALUES ('XYZ', 'ACTIVE', 0, 1, 1)")
    (status,) = project.query(
        "SELECT column_default FROM information_schema.columns"
        " WHERE table_name = 'codes' AND column_name = 'status'"
    )
    assert status == "'Pending'::text"
    refused = {
        "the old shape": "INSERT INTO codes (code) VALUES ('xyz')",
        "the new grouping": "INSERT INTO codes (code, a, b, c) VALUES ('QRS', 1, 0, 0)",
        "the quoted column": "INSERT INTO codes (code, \"Kind\") VALUES ('QRT', 'X')",
        "the active code again": "INSERT INTO codes (code, status) VALUES ('XYZ', 'ACTIVE')",
    }
    for statement in refused.values():
        with pytest.raises(IntegrityError):
            project.execute(statement)


def test_the_rules_as_postgresql_spells_them_are_no_change(make_project: MakeProject) -> None:
    project = migrated_codes(make_project)
    project.use("models_server_spelling")
    assert project.revisions("nothing") == []
    project.check()


def test_a_cast_to_text_of_an_enum_or_a_number_is_part_of_the_rule(
    make_project: MakeProject,
) -> None:
    """``status::text <= 'closed'`` is no ``status <= 'closed'``, ``n::text >= '5'`` no ``n >= 5``.

    PostgreSQL writes ``(name)::text`` itself for a varchar column, so the canonical spelling
    leaves that cast out; for an enum or a number the cast changes the order compared.
    """
    project = make_project("text_casts")
    project.revision("create tickets")
    project.upgrade()
    insert = "INSERT INTO tickets (title, status, priority, balance) VALUES ({})"
    project.execute(insert.format("'a', 'archived', 10, 0"))
    project.execute(insert.format("'a', 'archived', 10, 0"))  # no rule holds these
    with pytest.raises(IntegrityError):
        project.execute(insert.format("'o', 'open', 1, 1"))
    project.use("models_server_spelling")
    assert project.revisions("nothing") == []
    project.use("models_v2")
    project.execute("DELETE FROM tickets")
    written = project.revisions("the enum's order")
    upgrade = "".join(upgrade_section(path.read_text()) for path in written)
    assert "op.drop_constraint(op.f('chk_tickets_status_order')" in upgrade
    assert "priority >= '5'" in upgrade
    assert "abs(balance) = '0'" in upgrade
    project.upgrade()
    project.check()
    project.execute(insert.format("'o', 'open', 1, 1"))
    project.execute(insert.format("'t', 'open', 10, 1"))
    with pytest.raises(IntegrityError):  # 10 >= 5 as a number: the title is unique now
        project.execute(insert.format("'t', 'open', 10, 1"))
    with pytest.raises(IntegrityError):  # archived comes after closed in the enum's order
        project.execute(insert.format("'x', 'archived', 1, 1"))
    project.execute(insert.format("'z', 'open', 1, 0"))
    with pytest.raises(IntegrityError):  # a zero balance: unique among the empty tickets
        project.execute(insert.format("'z', 'open', 1, 0"))
