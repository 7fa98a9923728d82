"""Every rule id pgkeel knows, in one place.

A rule id names one standard. It is what a report prints in brackets (``[jsonb] orders.data:
...``), what an object lists to opt out of that standard (``info=pgkeel.naming.allow("jsonb")``)
and what ``[tool.pgkeel.rules]`` in pyproject.toml turns off or down to a warning for the whole
project (see ``pgkeel.settings``). An id that is not listed here is an error wherever it is
written, so a typo can never silently turn a rule off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from pgkeel._values import Value
from pgkeel.errors import UnknownRuleError

if TYPE_CHECKING:
    from collections.abc import Iterable


class Rule(Value):
    """One standard: its id, what it asks, and whether ``[tool.pgkeel.rules]`` may set it.

    ``settable`` rules are the checks a report lists; the others are opt-outs of something
    pgkeel builds or refuses (an index it adds, a refusal with its recipe), which only the object
    concerned can opt out of.
    """

    id: str
    summary: str
    settable: bool = True


TIMESTAMPTZ: Final = "timestamptz"
UUID_PRIMARY_KEY: Final = "uuid-primary-key"
PLURAL_TABLE_NAME: Final = "plural-table-name"
SNAKE_CASE_COLUMN: Final = "snake-case-column"
IDENTIFIER_LENGTH: Final = "identifier-length"
TENANT_LEADING_COLUMN: Final = "tenant-leading-column"
JSONB: Final = "jsonb"
TENANT_RLS: Final = "tenant-rls"
TENANT_FOREIGN_KEY: Final = "tenant-foreign-key"
FOREIGN_KEY_TARGET: Final = "foreign-key-target"
TIMESTAMPS: Final = "timestamps"
FK_INDEX: Final = "fk-index"
ALL_ROWS_UNIQUE: Final = "all-rows-unique"
NOT_NULL_DEFAULT: Final = "not-null-default"
DROP_COLUMN: Final = "drop-column"
DROP_TABLE: Final = "drop-table"
DROP_UNIQUE: Final = "drop-unique"
RENAME: Final = "rename"
TABLE_REWRITE: Final = "table-rewrite"
TYPE_CHANGE: Final = "type-change"
ENUM_VALUES: Final = "enum-values"
TENANT_BACKFILL: Final = "tenant-backfill"
ADD_COLUMN_REWRITE: Final = "add-column-rewrite"
SET_NOT_NULL: Final = "set-not-null"
PRIMARY_KEY_CHANGE: Final = "primary-key-change"
NOT_NULL_PROVEN: Final = "not-null-proven"
CONSTRAINT_REPLACED: Final = "constraint-replaced"
GENERATED_COLUMN: Final = "generated-column"

RULES: Final[dict[str, Rule]] = {
    rule.id: rule
    for rule in (
        Rule(TIMESTAMPTZ, "timestamps carry a time zone (timestamptz)"),
        Rule(UUID_PRIMARY_KEY, "primary keys are UUIDs, not integers"),
        Rule(PLURAL_TABLE_NAME, "table names are plural snake_case"),
        Rule(SNAKE_CASE_COLUMN, "column names are snake_case"),
        Rule(IDENTIFIER_LENGTH, "names fit PostgreSQL's 63 bytes"),
        Rule(TENANT_LEADING_COLUMN, "indexes and unique keys of tenant tables lead with tenant_id"),
        Rule(JSONB, "JSON is stored as jsonb"),
        Rule(TENANT_RLS, "tenant tables have row-level security and the tenant policy"),
        Rule(
            TENANT_FOREIGN_KEY,
            "a reference between two tenant tables includes tenant_id (tenant_foreign_key)",
        ),
        Rule(
            FOREIGN_KEY_TARGET,
            "a foreign key references columns unique over all rows (not a live-rows rule)",
        ),
        Rule(TIMESTAMPS, "tables have the created and updated timestamp columns"),
        Rule(FK_INDEX, "pgkeel adds the index each foreign key needs", settable=False),
        Rule(
            ALL_ROWS_UNIQUE,
            "a soft-delete or tenant table's unique rule is rewritten for live rows / per tenant",
            settable=False,
        ),
        Rule(
            NOT_NULL_DEFAULT,
            "a new NOT NULL column on an existing table has a server default",
            settable=False,
        ),
        Rule(
            TENANT_BACKFILL,
            "TenantMixin reaches a table with rows by expand, backfill, contract",
            settable=False,
        ),
        Rule(DROP_COLUMN, "a migration drops a column only when acknowledged", settable=False),
        Rule(DROP_TABLE, "a migration drops a table only when acknowledged", settable=False),
        Rule(
            DROP_UNIQUE,
            "a migration drops a unique rule that nothing replaces only when acknowledged",
            settable=False,
        ),
        Rule(RENAME, "a rename is written as a rename, never as a drop and an add", settable=False),
        Rule(
            TABLE_REWRITE,
            "a column type change that rewrites the table happens only when acknowledged",
            settable=False,
        ),
        Rule(
            ENUM_VALUES,
            "an enum type's values are only added, never removed, renamed or reordered",
            settable=False,
        ),
        Rule(
            ADD_COLUMN_REWRITE,
            "a new column that rewrites the table (volatile default, identity, generated) is"
            " added only when acknowledged",
            settable=False,
        ),
        Rule(
            SET_NOT_NULL,
            "NOT NULL is set on an existing column once a valid CHECK proves it, or acknowledged",
            settable=False,
        ),
        Rule(
            NOT_NULL_PROVEN,
            "NOT NULL set where a valid CHECK proves it: no scan (checked, acknowledged)",
            settable=False,
        ),
        Rule(
            CONSTRAINT_REPLACED,
            "a changed foreign key or check is dropped and added again in one transaction",
            settable=False,
        ),
        Rule(
            GENERATED_COLUMN,
            "an existing column becomes or stops being generated (identity, computed) by the"
            " recipe",
            settable=False,
        ),
        Rule(
            PRIMARY_KEY_CHANGE,
            "a primary key changes only by the recipe, or acknowledged",
            settable=False,
        ),
        Rule(
            TYPE_CHANGE,
            "a column type change PostgreSQL makes without a rewrite (checked, acknowledged)",
            settable=False,
        ),
    )
}
"""Every rule, by id."""

RULE_IDS: Final = tuple(RULES)
"""Every rule id, in the order reports and docs list them."""


def _suggestion(rule_id: str, candidates: Iterable[str]) -> str:
    import difflib  # noqa: PLC0415  # only to word an error

    close = difflib.get_close_matches(rule_id, list(candidates), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_rule_id(rule_id: object, where: str, *, settable: bool = False) -> str:
    """``rule_id`` if pgkeel knows it (and, with ``settable``, a project may set it), else raise.

    ``where`` says where the id was written (``pgkeel_allow of column orders.data``,
    ``[tool.pgkeel.rules] in /srv/app/pyproject.toml``); the error names it and the valid ids.
    """
    valid = [rule.id for rule in RULES.values() if rule.settable or not settable]
    if isinstance(rule_id, str) and rule_id in valid:
        return rule_id
    if isinstance(rule_id, str) and rule_id in RULES:
        raise UnknownRuleError(
            f"Rule {rule_id!r} in {where} cannot be set for the whole project: it is an opt-out "
            "of something pgkeel builds or refuses, decided object by object. Fix: remove it "
            f"there and opt the objects out with info=pgkeel.naming.allow({rule_id!r}). Rules "
            f"a project can set: {', '.join(valid)}."
        )
    suggestion = _suggestion(rule_id, valid) if isinstance(rule_id, str) else ""
    raise UnknownRuleError(
        f"Unknown rule id {rule_id!r} in {where}: a misspelled id would silently leave the rule "
        f"on (or off).{suggestion} Fix: use one of {', '.join(valid)}."
    )
