"""The runtime-role check: what ``pgkeel.roles`` finds wrong with the role the service uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text

from pgkeel.doctor.context import Check, Problem
from pgkeel.roles import runtime_role_problems

if TYPE_CHECKING:
    from pgkeel.doctor.context import Context

COVERED_ELSEWHERE = frozenset({"no-rls"})
"""Role rules another check reports already: ``tenant-table-without-rls`` names those tables."""


def runtime_role(ctx: Context) -> list[Problem]:
    """Each reason row-level security would not bind the role at ``--runtime-url``."""
    if ctx.runtime_url is None:
        ctx.note("runtime-role", "not-applicable", "no runtime URL was given (--runtime-url).")
        return []
    engine = create_engine(ctx.runtime_url, connect_args={"application_name": "pgkeel doctor"})
    try:
        with engine.connect() as connection:
            role = str(connection.scalar(text("SELECT current_user")))
            problems = runtime_role_problems(connection)
    finally:
        engine.dispose()
    found = []
    for problem in problems:
        if problem.rule in COVERED_ELSEWHERE:
            continue
        message, _, fix = problem.message.partition(" Fix: ")
        found.append(
            Problem(f"role {role}", message, {"rule": problem.rule, "role": role}, fix or message)
        )
    return found


RUNTIME_CHECKS = (
    Check("runtime-role", "schema", "error", "The runtime role bypasses RLS", runtime_role),
)
