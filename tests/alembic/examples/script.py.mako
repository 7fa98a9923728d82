"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

<%
    # Only the imports the migration uses, sorted as isort/ruff sort them.
    body = (upgrades or "") + (downgrades or "")
    lines = set(imports.splitlines() if imports else [])
    if "op." in body:
        lines.add("from alembic import op")
    if "sa." in body:
        lines.add("import sqlalchemy as sa")
    ordered = sorted(lines, key=lambda line: (line.startswith("from "), line.split()[1].lower()))
%>\
from collections.abc import Sequence
% if ordered:

${"\n".join(ordered)}
% endif

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    """Upgrade schema."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Downgrade schema."""
    ${downgrades if downgrades else "pass"}
