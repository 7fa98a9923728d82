"""How pgkeel's operations and custom column types are written into a migration file.

Calls are laid out as ``ruff format`` would lay them out (one line when it fits in 88
characters at the body's indentation, else one argument per line with a trailing comma), so a
generated migration passes ``ruff check`` and ``ruff format --check`` as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alembic_extensions.ops import OBJECT_OPERATIONS
from pgkeel.dbobjects import DatabaseObject, Policy, RowLevelSecurity, Trigger, TriggerFunction

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext

    from alembic_extensions.ops import (
        AutocommitBlockOp,
        ConcurrentCreateIndexOp,
        ConcurrentDropIndexOp,
        CreateObjectOp,
        DropObjectOp,
        DroppedWithTableOp,
        NoOp,
        ReplaceFunctionOp,
        ValidateConstraintOp,
    )

LINE_LENGTH = 88
BODY_INDENT = 4


def _prefix(autogen_context: AutogenContext) -> str:
    return str(autogen_context.opts.get("alembic_module_prefix") or "op.")


def _string(value: str) -> str:
    """A string literal; a multi-line one as parenthesised implicit concatenation."""
    lines = value.splitlines(keepends=True)
    if len(lines) <= 1:
        return repr(value)
    inner = "\n".join(f"    {line!r}" for line in lines)
    return f"(\n{inner}\n)"


def _value(value: object) -> str:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return repr(value)


def call(function: str, args: list[object], kwargs: list[tuple[str, object]]) -> str:
    """``function(args..., key=value...)`` on one line if it fits, else one argument per line."""
    parts = [_value(arg) for arg in args]
    parts += [f"{key}={_value(value)}" for key, value in kwargs if value is not None]
    one_line = f"{function}({', '.join(parts)})"
    if "\n" not in one_line and len(one_line) + BODY_INDENT <= LINE_LENGTH:
        return one_line
    indented = ["    " + part.replace("\n", "\n    ") + "," for part in parts]
    return "\n".join([f"{function}(", *indented, ")"])


def _object_arguments(obj: DatabaseObject) -> tuple[list[object], list[tuple[str, object]]]:
    """Positional and keyword arguments that rebuild ``obj`` in a migration."""
    if isinstance(obj, TriggerFunction):
        return [obj.name], [("body", obj.body), ("schema", obj.schema)]
    if isinstance(obj, Trigger):
        return [obj.table, obj.name], [
            ("function", obj.function.name),
            ("timing", None if obj.timing == "BEFORE" else obj.timing),
            ("events", None if obj.events == ("UPDATE",) else list(obj.events)),
            ("schema", obj.schema),
            ("function_schema", obj.function.schema),
        ]
    if isinstance(obj, RowLevelSecurity):
        return [obj.table], [("schema", obj.schema)]
    if isinstance(obj, Policy):
        return [obj.table, obj.name], [
            ("using", obj.using),
            ("with_check", obj.with_check),
            ("schema", obj.schema),
        ]
    raise TypeError(f"pgkeel cannot render a migration operation for {obj!r}")


def _render_object(autogen_context: AutogenContext, action: str, obj: DatabaseObject) -> str:
    names = OBJECT_OPERATIONS[obj.identity[0]]
    name = names.create if action == "create" else names.drop
    args, kwargs = _object_arguments(obj)
    return call(_prefix(autogen_context) + name, args, kwargs)


def render_create(autogen_context: AutogenContext, op: CreateObjectOp) -> str:
    """``op.create_trigger(...)``, ``op.enable_row_level_security(...)``..."""
    return _render_object(autogen_context, "create", op.target)


def render_drop(autogen_context: AutogenContext, op: DropObjectOp) -> str:
    """``op.drop_trigger(...)``, ``op.disable_row_level_security(...)``..."""
    return _render_object(autogen_context, "drop", op.target)


def render_replace(autogen_context: AutogenContext, op: ReplaceFunctionOp) -> str:
    """``op.replace_trigger_function(name, body=..., old_body=...)``."""
    new, old = op.target, op.old
    assert isinstance(new, TriggerFunction)  # noqa: S101  # ReplaceFunctionOp holds functions
    return call(
        _prefix(autogen_context) + "replace_trigger_function",
        [new.name],
        [("body", new.body), ("old_body", old.body), ("schema", new.schema)],
    )


def render_validate(autogen_context: AutogenContext, op: ValidateConstraintOp) -> str:
    """``op.validate_constraint(name, table)``."""
    return call(
        _prefix(autogen_context) + "validate_constraint",
        [op.constraint_name, op.table_name],
        [("schema", op.schema)],
    )


def render_concurrent_create(
    autogen_context: AutogenContext, op: ConcurrentCreateIndexOp
) -> list[str]:
    """Drop a leftover of a failed build, then build the index (both ``CONCURRENTLY``)."""
    from alembic.autogenerate.render import render_op_text  # noqa: PLC0415  # loaded with Alembic

    leftover = [render_op_text(autogen_context, op.leftover())] if op.drop_leftover else []
    return [*leftover, render_op_text(autogen_context, op.create)]


def render_concurrent_drop(autogen_context: AutogenContext, op: ConcurrentDropIndexOp) -> str:
    """``op.drop_index(..., if_exists=True, postgresql_concurrently=True)``."""
    from alembic.autogenerate.render import render_op_text  # noqa: PLC0415  # loaded with Alembic

    return render_op_text(autogen_context, op.drop)


def render_dropped_with_table(_autogen_context: AutogenContext, op: DroppedWithTableOp) -> str:
    """A comment: the index goes with its table."""
    return f"# index {op.drop.index_name!r} goes with table {op.drop.table_name!r}"


def render_nothing(_autogen_context: AutogenContext, _op: NoOp) -> list[str]:
    """No lines."""
    return []


def render_autocommit_block(autogen_context: AutogenContext, op: AutocommitBlockOp) -> list[str]:
    """``with op.get_context().autocommit_block():`` and the operations inside, one per line."""
    from alembic.autogenerate.render import render_op  # noqa: PLC0415  # loaded with Alembic

    inner = [
        physical
        for item in op.ops
        for rendered in render_op(autogen_context, item)
        for physical in rendered.splitlines()
    ]
    if not inner:
        return []
    # Alembic's printer indents lines after one ending in ":" and dedents at a blank line.
    return [f"with {_prefix(autogen_context)}get_context().autocommit_block():", *inner, ""]


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:  # noqa: ANN401  # Alembic's render_item signature
    """Render a column type from outside SQLAlchemy as ``module.Type(...)`` and import its module.

    Alembic's default writes ``module.Type()`` without the import, so the migration fails
    with ``NameError``; SQLAlchemy's own types keep Alembic's rendering.
    """
    if type_ != "type":
        return False
    module = type(obj).__module__
    if module.startswith("sqlalchemy.") or module == "builtins":
        return False
    autogen_context.imports.add(f"import {module}")
    return f"{module}.{obj!r}"
