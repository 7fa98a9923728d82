"""A dropped unique rule counts as replaced only by a new rule that enforces at least as much."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic_project import Project
from sqlalchemy.exc import IntegrityError

from alembic_extensions.dependents import RuleShape, replaces, rule_shape
from alembic_extensions.errors import UnsafeMigrationError

MakeProject = Callable[[str], Project]
ROWS = (
    "INSERT INTO accounts (email, code, region)"
    " SELECT 'a' || n || '@x', 'c' || n, 'r' || n FROM generate_series(1, 50) n"
)


def shape(*key: str, predicate: str | None = None, soft_delete: bool = False) -> RuleShape:
    """A rule's shape from its key elements and predicate, as the model or catalog write them."""
    made = rule_shape("uq", key, predicate, soft_delete=soft_delete)
    assert made is not None
    return made


# --- what enforces at least as much (no database) ------------------------------------------


@pytest.mark.parametrize(
    ("new", "old"),
    [
        (shape("email"), shape("email")),
        (shape("code"), shape("code", "region")),
        (shape("tenant_id", "email"), shape("email")),
        (shape("email"), shape("email", predicate="(code)::text = 'vip'::text")),
        (
            shape("email", predicate="code = 'vip'"),
            shape("email", predicate="((code)::text = 'vip'::text)"),
        ),
        (shape("email", predicate="deleted_at IS NULL", soft_delete=True), shape("email")),
        (
            shape("email", predicate="deleted_at IS NULL AND (code = 'vip')", soft_delete=True),
            shape("email", predicate="(code)::text = 'vip'::text"),
        ),
        (shape("lower(email)"), shape("lower((email)::text)")),
        (  # live rows only, as soft delete writes its rules
            shape("email", predicate="deleted_at IS NULL", soft_delete=True),
            shape("email", predicate="NOT archived"),
        ),
    ],
)
def test_a_rule_that_enforces_as_much_replaces(new: RuleShape, old: RuleShape) -> None:
    assert replaces(new, old)


@pytest.mark.parametrize(
    ("new", "old"),
    [
        (shape("code"), shape("email")),  # the same name, other columns
        (shape("email", "code"), shape("email")),
        (shape("email", predicate="code = 'vip'"), shape("email")),
        (shape("email", predicate="code = 'vip'"), shape("email", predicate="code <> ''")),
        (shape("tenant_id"), shape("email")),  # tenant_id alone replaces nothing
        (shape("email", predicate="deleted_at IS NULL"), shape("email")),  # not soft-delete
        (shape("lower(email)"), shape("email")),
    ],
)
def test_a_rule_that_enforces_less_does_not_replace(new: RuleShape, old: RuleShape) -> None:
    assert not replaces(new, old)


# --- on a table with rows -----------------------------------------------------------------


def created(make_project: MakeProject) -> Project:
    """The accounts example, upgraded, with rows."""
    project = make_project("replaced_rules")
    project.revision("create accounts")
    project.upgrade()
    project.execute(ROWS)
    return project


def refusal(project: Project, module: str) -> str:
    """The refusal of the revision to ``module``'s models."""
    project.use(module)
    with pytest.raises(UnsafeMigrationError) as refused:
        project.revisions("change the rules")
    assert project.versions()[1:] == []
    return str(refused.value)


def test_a_rule_of_the_same_name_on_other_columns_is_refused(make_project: MakeProject) -> None:
    project = created(make_project)
    message = refusal(project, "models_other_columns")
    assert "[drop-unique] accounts.uq_accounts_key:" in message
    assert "uq_accounts_key does not replace it" in message
    assert "-x acknowledge=accounts.uq_accounts_key" in message
    project.revisions("change the rules", "acknowledge=accounts.uq_accounts_key")
    project.upgrade()
    project.check()
    project.execute("INSERT INTO accounts (email, code, region) VALUES ('new@x', 'c1', 'r1')")


def test_a_narrower_predicate_is_refused(make_project: MakeProject) -> None:
    project = created(make_project)
    message = refusal(project, "models_narrower")
    assert "[drop-unique] accounts.uq_accounts_email:" in message
    assert "uq_accounts_email_vip does not replace it" in message
    project.revisions("vip emails", "acknowledge=accounts.uq_accounts_email")
    project.upgrade()
    project.check()
    project.execute("INSERT INTO accounts (email, code, region) VALUES ('a1@x', 'other', 'r0')")
    with pytest.raises(IntegrityError):
        project.execute(
            "INSERT INTO accounts (email, code, region) VALUES ('v@x', 'vip', 'r-1'), "
            "('v@x', 'vip', 'r-2')"
        )


def test_a_stricter_rule_replaces_and_the_drop_waits_for_it_alone(
    make_project: MakeProject,
) -> None:
    project = created(make_project)
    project.use("models_stricter")
    (path,) = project.revisions("code alone")
    source = path.read_text()
    upgrade = source[: source.index("def downgrade")]
    assert "op.acknowledge('drop-unique'" not in source
    assert (
        "op.drop_replaced_unique(\n            'uq_accounts_key',\n            'accounts',\n"
        "            replaced_by=['uq_accounts_code'],"
    ) in upgrade
    project.upgrade()
    project.check()
    with pytest.raises(IntegrityError):
        project.execute("INSERT INTO accounts (email, code, region) VALUES ('n@x', 'c1', 'rn')")
    project.downgrade("0001")
    assert project.query("SELECT count(*) FROM accounts") == [50]


def test_soft_delete_makes_the_rules_partial_without_an_acknowledgement(
    make_project: MakeProject,
) -> None:
    project = created(make_project)
    project.use("models_soft_delete")
    paths = project.revisions("soft delete")
    sources = "".join(path.read_text() for path in paths)
    assert "op.acknowledge('drop-unique'" not in sources
    assert "deleted_at IS NULL AND (code = 'vip')" in sources
    project.upgrade()
    project.check()
    predicate = project.query(
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index"
        " WHERE indexrelid = 'uq_accounts_region_vip'::regclass"
    )
    assert predicate == ["((deleted_at IS NULL) AND ((code)::text = 'vip'::text))"]
    project.downgrade("0001")
