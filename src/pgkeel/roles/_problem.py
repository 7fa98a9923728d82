"""One finding of the runtime-role check, and the rules it may name."""

from __future__ import annotations

from dataclasses import dataclass

RULES = (
    "superuser",
    "bypassrls",
    "member-of-bypassing-role",
    "member-of-server-access-role",
    "createrole",
    "owner",
    "no-rls",
    "inherits-parent",
    "extra-policy",
    "altered-policy",
    "privilege",
    "definer-view",
    "definer-rule",
    "definer-function",
    "definer-trigger",
    "materialized-view",
    "foreign-table-mapping",
)
"""Every rule id a ``RoleProblem`` may carry; docs/security.md explains each."""


@dataclass(frozen=True)
class RoleProblem:
    """One reason row-level security would not protect tenant data on this role."""

    rule: str
    """One of ``RULES``."""
    message: str
    """What is wrong, where, why it leaks, and the SQL or step that fixes it."""

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown runtime-role rule {self.rule!r}; the rules are {RULES}")
