"""The runtime-role check: what ``pgkeel.roles`` finds wrong with the role the service uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from pgkeel.database import parse_database_url
from pgkeel.doctor.context import Check, DoctorError, Problem, connection_cause
from pgkeel.roles import runtime_role_problems

if TYPE_CHECKING:
    from pgkeel.doctor.context import Context

CONNECT_TIMEOUT_S = 10
"""How long the runtime URL's server may take to answer before the doctor gives up."""
COVERED_ELSEWHERE = frozenset({"no-rls"})
"""Role rules another check reports already: ``tenant-table-without-rls`` names those tables."""


def runtime_role(ctx: Context) -> list[Problem]:
    """Each reason row-level security would not bind the role at ``--runtime-url``."""
    if ctx.runtime_url is None:
        ctx.note("runtime-role", "not-applicable", "no runtime URL was given (--runtime-url).")
        return []
    url = parse_database_url(ctx.runtime_url, source="--runtime-url")
    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args={"application_name": "pgkeel doctor", "connect_timeout": CONNECT_TIMEOUT_S},
    )
    try:
        try:
            connection = engine.connect()
        except OperationalError as exc:
            shown = url.render_as_string(hide_password=True)
            raise DoctorError(
                f"cannot connect to the runtime URL {shown}: {connection_cause(exc)}. Fix: pass "
                "the URL the service connects with (--runtime-url), with a role that exists and "
                "may log in."
            ) from None
        with connection:
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
