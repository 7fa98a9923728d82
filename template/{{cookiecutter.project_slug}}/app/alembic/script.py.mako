<%
    # Import only what the operations use, sorted the way ruff's isort rule expects.
    body = (upgrades or "") + "\n" + (downgrades or "")
    wanted = {line for line in (imports or "").splitlines() if line.strip()}
    if "sa." in body:
        wanted.add("import sqlalchemy as sa")
    if "op." in body:
        wanted.add("from alembic import op")
    if isinstance(down_revision, (tuple, list)):
        revises = ", ".join(down_revision)
    else:
        revises = down_revision or "nothing (the first revision)"
    third_party = sorted(line for line in wanted if line.startswith("import ")) + sorted(
        line for line in wanted if line.startswith("from ")
    )
%>"""${message}

Revision ID: ${up_revision}
Revises: ${revises}
"""

from collections.abc import Sequence
% if third_party:

% for line in third_party:
${line}
% endfor
% endif

revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
