"""One finding of the runtime-role check."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoleProblem:
    """One reason row-level security would not protect tenant data on this role."""

    rule: str
    """``superuser``, ``bypassrls``, ``member-of-bypassing-role``, ``createrole``, ``owner``,
    ``no-rls``, ``extra-policy``, ``altered-policy``, ``privilege``, ``definer-view``,
    ``definer-function``, ``materialized-view``."""
    message: str
    """What is wrong, where, why it leaks, and the SQL or step that fixes it."""
