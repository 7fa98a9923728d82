"""Foreign tables and user mappings: another session, with another login, for the runtime role.

A query on a foreign table (``postgres_fdw``), or a ``dblink`` call on a foreign server, runs in a
session the foreign-data wrapper opens with the login of the user mapping that applies to the
role querying: its own, or ``PUBLIC``'s. When that server is this database, the other session
has none of this transaction's tenant and the mapping's login decides what it sees: a superuser
or a ``BYPASSRLS`` login sees every tenant's rows, the tables' owner may switch row-level security
off, and any login may be given another tenant (a server's ``options``, a role's settings). The
check therefore names each mapping the runtime role can use, through a foreign table it may use
or ``USAGE`` on the server, when the server may be this database or the mapping logs in as a
role that bypasses row-level security or owns a tenant table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import text

from pgkeel.roles._problem import RoleProblem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Connection

_HERE = text(
    "SELECT current_database(), current_setting('port'), host(inet_server_addr()), "
    "  (SELECT setting FROM pg_settings WHERE name = 'listen_addresses'), "
    "  (SELECT setting FROM pg_settings WHERE name = 'unix_socket_directories')"
)
"""Where this server listens; a setting the runtime role may not read is NULL (``pg_settings``)."""
_USES = ("SELECT", "INSERT", "UPDATE", "DELETE")
_USED = " OR ".join(
    f"has_{'any_column' if use != 'DELETE' else 'table'}_privilege(r.oid, ft.ftrelid, '{use}')"
    for use in _USES
)
_MAPPINGS_SQL = (
    "SELECT quote_ident(s.srvname), coalesce(s.srvoptions, '{{}}'), "
    "  (SELECT p.proname::text FROM pg_proc p WHERE p.oid = w.fdwvalidator), "
    "  CASE WHEN m.umuser = 0 THEN 'PUBLIC' ELSE quote_ident(m.usename) END, m.umoptions, "
    "  r.rolname, has_server_privilege(r.oid, s.oid, 'USAGE'), "
    "  ARRAY(SELECT ft.ftrelid::regclass::text FROM pg_foreign_table ft "
    "        WHERE ft.ftserver = s.oid AND ({used}) ORDER BY 1), "
    "  l.rolname, l.rolsuper OR l.rolbypassrls, "
    "  EXISTS (SELECT 1 FROM unnest(CAST(:owners AS oid[])) o "
    "          WHERE pg_has_role(l.oid, o, 'USAGE')) "
    "FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw "
    "JOIN pg_roles r ON pg_has_role(current_user, r.oid, 'MEMBER') "
    "JOIN pg_user_mappings m ON m.srvid = s.oid AND (m.umuser = r.oid OR (m.umuser = 0 "
    "  AND NOT EXISTS (SELECT 1 FROM pg_user_mappings x WHERE x.srvid = s.oid "
    "                  AND x.umuser = r.oid))) "
    "LEFT JOIN pg_roles l ON l.rolname = (SELECT option_value FROM "
    "  pg_options_to_table(m.umoptions) WHERE option_name = 'user') "
    "ORDER BY 1, 4, r.rolname = current_user DESC, 6"
)
"""Each user mapping that applies to the runtime role, or to a role it is a member of."""
_MAPPINGS = text(_MAPPINGS_SQL.format(used=_USED))
_LIBPQ_WRAPPERS = frozenset({"postgres_fdw_validator", "dblink_fdw_validator"})
"""Validators of the wrappers whose servers are PostgreSQL servers named by libpq options."""
_LOOPBACK = frozenset({"", "localhost", "::1"})


@dataclass(frozen=True)
class _Here:
    """Where this session's server listens, to tell a foreign server that may be this database."""

    database: str
    port: str
    hosts: frozenset[str]

    def may_be(self, options: dict[str, str]) -> bool:
        """Whether a server with these libpq options may be this database."""
        target = options.get("dbname", "")
        if "=" in target or "://" in target:
            return True  # a connection string: it may say anything
        hosts = _listed(options.get("host")) + _listed(options.get("hostaddr"))
        ports = _listed(options.get("port"))
        return (
            (not hosts or any(self._local(host) for host in hosts))
            and (not ports or self.port in ports)
            and target in ("", self.database)
        )

    def _local(self, host: str) -> bool:
        return host in _LOOPBACK or host.startswith(("/", "@", "127.")) or host in self.hosts


def _listed(value: str | None) -> list[str]:
    return [] if value is None else [part.strip() for part in value.split(",")]


def _options(pairs: list[str] | None) -> dict[str, str]:
    return dict(pair.partition("=")[::2] for pair in pairs or [])


@dataclass(frozen=True)
class _Mapping:
    """A user mapping that applies to ``acting`` (the runtime role, or a role it is a member of)."""

    server: str
    server_options: dict[str, str]
    libpq: bool
    mapped: str
    """The role the mapping is for, quoted, or ``PUBLIC``."""
    visible: bool
    """Whether the runtime role may read the mapping's options (its login)."""
    acting: str
    usage: bool
    tables: tuple[str, ...]
    login: str | None
    bypasses: bool
    owns: bool

    @property
    def reached(self) -> bool:
        """Whether ``acting`` can use the mapping: through a foreign table, or ``USAGE``."""
        return self.usage or bool(self.tables)

    @property
    def dangerous_login(self) -> bool:
        """Whether the mapping logs in as a role that bypasses row-level security or owns data."""
        return self.bypasses or self.owns


def _mappings(connection: Connection, owners: list[int]) -> list[_Mapping]:
    found = []
    for row in connection.execute(_MAPPINGS, {"owners": owners}):
        server, srvoptions, validator, mapped, umoptions, acting, usage, tables, *login = row
        name, bypasses, owns = login
        found.append(
            _Mapping(
                server,
                _options(srvoptions),
                validator in _LIBPQ_WRAPPERS,
                mapped,
                umoptions is not None,
                acting,
                usage,
                tuple(tables),
                name,
                bool(bypasses),
                bool(owns),
            )
        )
    return found


def _here(connection: Connection) -> _Here:
    database, port, address, listen, sockets = connection.execute(_HERE).one()
    hosts = {address or "", *_listed(listen), *_listed(sockets)} - {"*", "0.0.0.0", "::"}  # noqa: S104  # compared, not bound
    return _Here(database, port, frozenset(hosts))


def _login(mapping: _Mapping) -> str:
    if not mapping.visible:
        return "a login role the runtime role may not see"
    if mapping.login is None:
        return (
            "no 'user' option (libpq's default: the server's operating-system user, often a "
            "superuser)"
        )
    what = [
        *(["a superuser or BYPASSRLS role"] if mapping.bypasses else []),
        *(["the owner (or a member of the owner) of tenant tables"] if mapping.owns else []),
    ]
    return f"{mapping.login!r}" + (f", {' and '.join(what)}" if what else "")


def _reach(mapping: _Mapping, role: str) -> str:
    who = (
        f"role {role!r}"
        if mapping.acting == role
        else f"role {role!r} (after SET ROLE {mapping.acting})"
    )
    ways = [f"may use foreign table(s) {', '.join(mapping.tables)}"] if mapping.tables else []
    if mapping.usage:
        ways.append("has USAGE on the server (it may create foreign tables, or call dblink)")
    return f"{who} {' and '.join(ways)}"


def _fix(mapping: _Mapping) -> str:
    fixes = [f"DROP USER MAPPING FOR {mapping.mapped} SERVER {mapping.server}"]
    fixes.extend(
        f"REVOKE {', '.join(_USES)} ON {table} FROM {mapping.acting}" for table in mapping.tables
    )
    if mapping.usage:
        fixes.append(f"REVOKE USAGE ON FOREIGN SERVER {mapping.server} FROM {mapping.acting}")
    return "; ".join(fixes)


def _problem(mapping: _Mapping, role: str, *, here: bool) -> RoleProblem:
    where = (
        "may be this very database (its host, port and dbname options do not say otherwise)"
        if here
        else "may be another database"
    )
    return RoleProblem(
        "foreign-table-mapping",
        f"user mapping for {mapping.mapped} on foreign server {mapping.server}, which {where}, "
        f"logs in as {_login(mapping)}, and {_reach(mapping, role)}: a foreign table is read "
        "in another session, with the mapping's login and without this transaction's tenant, so "
        "row-level security there does not keep role "
        f"{role!r} to its tenant (a superuser, BYPASSRLS or owner login sees every tenant's "
        f"rows). Fix: {_fix(mapping)}; the runtime role needs no foreign server "
        "(see docs/security.md).",
    )


def foreign_problems(connection: Connection, role: str, owners: Iterable[int]) -> list[RoleProblem]:
    """User mappings through which ``role`` reads rows in another session, past its tenant.

    ``owners`` are the oids of the tenant relations' owners: a mapping that logs in as one of
    them (or a member) is named wherever its server is.
    """
    here = _here(connection)
    problems = []
    for mapping in _mappings(connection, sorted(set(owners))):
        local = mapping.libpq and here.may_be(mapping.server_options)
        if mapping.reached and (local or mapping.dangerous_login):
            problems.append(_problem(mapping, role, here=local))
    return problems
