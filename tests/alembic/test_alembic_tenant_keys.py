"""A same-tenant foreign key to a table that already has rows migrates in a working order.

``tenant_foreign_key`` needs the unique key ``(tenant_id, id)`` on the referenced table. On a
table with rows that key is built concurrently, in the revision that follows the transactional
one; the foreign key must then come after it, not in the first revision where the key does not
exist yet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic_project import Project
from sqlalchemy import exc

from alembic_extensions.check import check_squawk

MakeProject = Callable[[str], Project]
SEED = """
INSERT INTO tenants (id, name) VALUES
  ('00000000-0000-0000-0000-00000000000a', 'a'), ('00000000-0000-0000-0000-00000000000b', 'b');
INSERT INTO users (id, tenant_id, email)
SELECT gen_random_uuid(), t, 'u' || n || '@x.test'
FROM generate_series(1, 200) n,
     unnest(ARRAY['00000000-0000-0000-0000-00000000000a',
                  '00000000-0000-0000-0000-00000000000b']::uuid[]) t;
"""
A_USER = "(SELECT id FROM users WHERE tenant_id = '{}' LIMIT 1)"
INVOICE = (
    "INSERT INTO invoices (tenant_id, user_id, number) "
    "VALUES ('00000000-0000-0000-0000-00000000000{}', " + A_USER + ", 1)"
)

NEW_TABLE_SECURITY = """
SELECT format('rls=%s forced=%s policies=%s', c.relrowsecurity, c.relforcerowsecurity,
              (SELECT count(*) FROM pg_policies p WHERE p.tablename = c.relname))
FROM pg_class c WHERE c.relname = 'invoices'
"""


def _revision_id(path: Path) -> str:
    """The ``revision = '...'`` of a written revision file."""
    for line in path.read_text().splitlines():
        if line.startswith("revision"):
            return line.split("=", 1)[1].split("#", 1)[0].strip().strip("'\"")
    message = f"{path} names no revision"
    raise AssertionError(message)


def test_a_tenant_foreign_key_to_a_table_with_rows(make_project: MakeProject) -> None:
    project = make_project("tenant_key")
    project.revision("create users")
    project.upgrade()
    project.execute(SEED)
    project.use("models_v2")
    paths = project.revisions("add invoices")
    assert len(paths) == 2
    main, following = (path.read_text() for path in paths)
    assert "ForeignKeyConstraint(['tenant_id', 'user_id']" not in main
    upgrade = following[: following.index("def downgrade")]
    key = upgrade.index("'uq_users_tenant_id_id'")
    foreign_key = upgrade.index("op.create_foreign_key(")
    validate = upgrade.index("op.validate_constraint(")
    assert key < foreign_key < validate
    assert "postgresql_not_valid=True" in upgrade
    # the new table is empty: validated in the same transaction, and squawk told why
    assert "new_table=True" in upgrade[validate:]
    # the new table is never without its policy: row-level security comes with CREATE TABLE
    for security in ("op.enable_row_level_security('invoices'", "op.create_policy("):
        assert security in main, security
        assert security not in following, security
    project.upgrade(_revision_id(paths[0]))
    assert project.query(NEW_TABLE_SECURITY) == ["rls=t forced=t policies=1"]
    project.upgrade()
    project.check()
    squawk = check_squawk(project.config())
    assert squawk.findings is None, squawk.findings
    project.execute(INVOICE.format("a", "00000000-0000-0000-0000-00000000000a"))
    with pytest.raises(exc.IntegrityError, match="fk_invoices_tenant_id_user_id"):
        project.execute(INVOICE.format("a", "00000000-0000-0000-0000-00000000000b"))
    project.downgrade("0001")
    project.upgrade()
    project.check()
