"""How pgkeel's operations and custom column types are written into a migration file.

Calls are laid out as ``ruff format`` would lay them out (one line when it fits in 88
characters at the body's indentation, else one argument per line with a trailing comma), so a
generated migration passes ``ruff check`` and ``ruff format --check`` as it is.
"""

from __future__ import annotations

import copy
import enum
import inspect
import textwrap
import types
from typing import TYPE_CHECKING, Any

from alembic.util import CommandError
from sqlalchemy import Enum
from sqlalchemy.sql.naming import conv
from sqlalchemy.types import TypeDecorator, TypeEngine

from alembic_extensions.ops import OBJECT_OPERATIONS
from pgkeel.dbobjects import DatabaseObject, Policy, RowLevelSecurity, Trigger, TriggerFunction

if TYPE_CHECKING:
    from alembic.autogenerate.api import AutogenContext

    from alembic_extensions.acknowledge import AcknowledgeOp
    from alembic_extensions.backfill import BackfillOp
    from alembic_extensions.enums import AddEnumValueOp, CreateEnumOp, DropEnumOp
    from alembic_extensions.generated import GeneratedChangeOp, IdentityChangeOp
    from alembic_extensions.keys import PrimaryKeyOp
    from alembic_extensions.loss import AlterColumnUsingOp, RenameColumnOp
    from alembic_extensions.not_null import AddNotNullCheckOp, NotNullStepsOp, SetNotNullOp
    from alembic_extensions.ops import (
        AutocommitBlockOp,
        CommentOp,
        ConcurrentCreateIndexOp,
        ConcurrentDropIndexOp,
        CreateObjectOp,
        DropColumnAfterRulesOp,
        DropObjectOp,
        DroppedWithTableOp,
        DropReplacedRuleOp,
        NoOp,
        RenameIndexOp,
        ReplaceFunctionOp,
        UniqueUsingIndexOp,
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


def _value(value: object, *, exploded: bool = False) -> str:
    """A literal; a list one item per line when ``exploded``."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, tuple | list):
        items = [_value(item) for item in value]
        if exploded:
            return "[\n" + "".join(f"    {item},\n" for item in items) + "]"
        return "[" + ", ".join(items) + "]"
    return repr(value)


def _call_argument(key: str | None, value: object) -> str:
    """``value`` or ``key=value`` on one line of a split call; a long list one item per line."""
    prefix = "" if key is None else f"{key}="
    flat = prefix + _value(value)
    if len(flat) + 2 * BODY_INDENT + 1 <= LINE_LENGTH or not isinstance(value, tuple | list):
        return flat
    return prefix + _value(value, exploded=True)


def call(function: str, args: list[object], kwargs: list[tuple[str, object]]) -> str:
    """``function(args..., key=value...)`` on one line if it fits, else one argument per line."""
    named = [(key, value) for key, value in kwargs if value is not None]
    parts = [_value(arg) for arg in args] + [f"{key}={_value(value)}" for key, value in named]
    one_line = f"{function}({', '.join(parts)})"
    if "\n" not in one_line and len(one_line) + BODY_INDENT <= LINE_LENGTH:
        return one_line
    split = [_call_argument(None, a) for a in args] + [_call_argument(k, v) for k, v in named]
    indented = ["    " + part.replace("\n", "\n    ") + "," for part in split]
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
        [("schema", op.schema), ("new_table", op.new_table or None)],
    )


def render_primary_key(autogen_context: AutogenContext, op: PrimaryKeyOp) -> str:
    """``op.create_primary_key(name, table, [columns])``, the name as the model writes it."""
    name = op.constraint_name
    rendered = f"op.f({str(name)!r})" if isinstance(name, conv) else repr(name)
    args = ", ".join([rendered, repr(op.table_name), repr(list(op.columns))])
    schema = f", schema={op.schema!r}" if op.schema else ""
    return f"{_prefix(autogen_context)}create_primary_key({args}{schema})"


def render_generated_change(_autogen_context: AutogenContext, op: GeneratedChangeOp) -> str:
    """A comment: Alembic cannot write the change (``safe_ddl=False`` lets it through)."""
    where = ".".join(filter(None, (op.schema, op.table, op.column)))
    return f"# pgkeel: the generation of {where} changed; write it by hand (generated-column)"


def render_identity_change(autogen_context: AutogenContext, op: IdentityChangeOp) -> str:
    """Alembic's ``op.alter_column(...)``, with the identity it changes or drops named.

    Alembic decides from ``existing_server_default`` whether to ``ADD`` an identity, ``SET``
    its options or ``DROP`` it: without it, a changed identity is added again (refused).
    """
    from alembic.autogenerate.render import (  # noqa: PLC0415  # loaded with Alembic
        _render_server_default,
        render_op_text,
    )
    from alembic.operations.ops import AlterColumnOp  # noqa: PLC0415

    plain: AlterColumnOp = copy.copy(op)
    plain.__class__ = AlterColumnOp
    rendered = render_op_text(autogen_context, plain)
    existing = op.existing_server_default
    if existing is None or existing is False:
        return rendered
    identity = _render_server_default(existing, autogen_context)
    return f"{rendered[:-1]},\n               existing_server_default={identity})"


def render_acknowledge(autogen_context: AutogenContext, op: AcknowledgeOp) -> str:
    """``op.acknowledge(rule, where, reason=...)``."""
    return call(
        _prefix(autogen_context) + "acknowledge", [op.rule, op.where], [("reason", op.reason)]
    )


def render_alter_using(autogen_context: AutogenContext, op: AlterColumnUsingOp) -> str:
    """Alembic's ``op.alter_column(...)`` with ``postgresql_using=...`` added."""
    from alembic.autogenerate.render import render_op_text  # noqa: PLC0415  # loaded with Alembic

    rendered = render_op_text(autogen_context, op.alter)
    return f"{rendered[:-1]},\n               postgresql_using={op.using!r})"


def render_rename_column(autogen_context: AutogenContext, op: RenameColumnOp) -> str:
    """``op.alter_column(table, old, new_column_name=new, ...)``."""
    from alembic.autogenerate.render import render_op_text  # noqa: PLC0415  # loaded with Alembic

    return render_op_text(autogen_context, op.alter())


def render_enum_type(autogen_context: AutogenContext, op: CreateEnumOp | DropEnumOp) -> str:
    """``op.create_enum_type(name, [values])`` or ``op.drop_enum_type(name, [values])``."""
    verb = "create" if op.verb == "add" else "drop"
    target = op.target
    return call(
        f"{_prefix(autogen_context)}{verb}_enum_type",
        [target.name, list(target.values)],
        [("schema", target.schema)],
    )


def render_add_enum_value(autogen_context: AutogenContext, op: AddEnumValueOp) -> str:
    """``op.add_enum_value(name, value, before=...)``."""
    return call(
        f"{_prefix(autogen_context)}add_enum_value",
        [op.name, op.value],
        [("before", op.before), ("after", op.after), ("schema", op.schema)],
    )


def _render_enum(autogen_context: AutogenContext, type_: Enum) -> str:
    """A native enum column type that the migration's ``create_enum_type`` creates."""
    autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
    values = ", ".join(repr(value) for value in type_.enums)
    schema = f", schema={type_.schema!r}" if type_.schema else ""
    return f"postgresql.ENUM({values}, name={type_.name!r}{schema}, create_type=False)"


def render_rename_index(autogen_context: AutogenContext, op: RenameIndexOp) -> str:
    """``op.rename_index(old, new)``."""
    return call(
        _prefix(autogen_context) + "rename_index",
        [op.old_name, op.new_name],
        [("schema", op.schema)],
    )


def render_unique_using_index(autogen_context: AutogenContext, op: UniqueUsingIndexOp) -> str:
    """``op.create_unique_constraint_using_index(name, table)``."""
    return call(
        _prefix(autogen_context) + "create_unique_constraint_using_index",
        [op.constraint_name, op.table_name],
        [("schema", op.schema)],
    )


def render_drop_replaced(autogen_context: AutogenContext, op: DropReplacedRuleOp) -> str:
    """``op.drop_replaced_unique(name, table, replaced_by=[...])``."""
    return call(
        _prefix(autogen_context) + "drop_replaced_unique",
        [op.name, op.table_name],
        [
            ("replaced_by", op.replaced_by),
            ("index", op.index or None),
            ("schema", op.schema),
        ],
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
    """A comment: the index goes with its table or column."""
    if op.column is not None:
        return f"# index {op.drop.index_name!r} goes with column {op.column!r}"
    return f"# index {op.drop.index_name!r} goes with table {op.drop.table_name!r}"


def render_column_drop_after_rules(
    autogen_context: AutogenContext, op: DropColumnAfterRulesOp
) -> list[str]:
    """The acknowledgement, then ``op.drop_column(...)``."""
    from alembic.autogenerate.render import render_op  # noqa: PLC0415  # loaded with Alembic

    return [line for item in op.ops for line in render_op(autogen_context, item)]


def render_nothing(_autogen_context: AutogenContext, _op: NoOp) -> list[str]:
    """No lines."""
    return []


def render_comment(_autogen_context: AutogenContext, op: CommentOp) -> list[str]:
    """The note as comment lines: ``# pgkeel: ...``, wrapped."""
    lines = textwrap.wrap(f"pgkeel: {op.text}", width=90, break_on_hyphens=False)
    return [f"# {line}" for line in lines]


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


class CustomTypeRenderError(CommandError):
    """A column type pgkeel cannot write into a migration with its constructor arguments."""


def _fix(type_name: str) -> str:
    return (
        f"Fix: give {type_name} a __repr__ that returns its constructor call as Python (for "
        f"example {type_name}(Color)), or pass render_item= to run_migrations() returning the "
        "text for it (docs/alembic.md, 'Custom column types')."
    )


def _named(value: Any, imports: set[str]) -> str | None:  # noqa: ANN401
    """``module.qualname`` of a class, function or enum member; a module's name."""
    if isinstance(value, types.ModuleType):
        imports.add(f"import {value.__name__}")
        return value.__name__
    if isinstance(value, enum.Enum):
        owner = _named(type(value), imports)
        return None if owner is None else f"{owner}.{value.name}"
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", "")
    if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType) and module:
        if "<" in qualname:  # defined inside a function: no name to import it by
            return None
        if module == "builtins":
            return qualname
        imports.add(f"import {module}")
        return f"{module}.{qualname}"
    return None


def _literal(value: Any, imports: set[str], autogen_context: AutogenContext) -> str | None:  # noqa: ANN401
    """Python source that rebuilds ``value``, or None when pgkeel knows no spelling for it."""
    from alembic.autogenerate.render import _repr_type  # noqa: PLC0415  # loaded with Alembic

    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value)
    if isinstance(value, TypeEngine):
        return _repr_type(value, autogen_context)
    if isinstance(value, list | tuple | dict):
        return _collection(value, imports, autogen_context)
    return _named(value, imports)


def _collection(
    value: list[Any] | tuple[Any, ...] | dict[Any, Any],
    imports: set[str],
    autogen_context: AutogenContext,
) -> str | None:
    """A list, tuple or dict literal, if every item has a spelling."""
    items = list(value.items()) if isinstance(value, dict) else [(item,) for item in value]
    parts = [[_literal(part, imports, autogen_context) for part in item] for item in items]
    if any(part is None for item in parts for part in item):
        return None
    body = ", ".join(": ".join(str(part) for part in item) for item in parts)
    if isinstance(value, dict):
        return "{" + body + "}"
    if isinstance(value, list):
        return f"[{body}]"
    return f"({body},)" if len(parts) == 1 else f"({body})"


def _is_default(value: Any, default: Any) -> bool:  # noqa: ANN401
    try:
        return bool(value is default or value == default)
    except Exception:  # noqa: BLE001  # a value that cannot be compared is not the default
        return False


def _argument(obj: TypeEngine[Any], name: str) -> tuple[bool, Any]:
    """Whether ``obj`` kept the constructor argument ``name`` (as ``name`` or ``_name``)."""
    for attribute in (name, f"_{name}"):
        if attribute in vars(obj):
            return True, vars(obj)[attribute]
    return False, None


def _same_impl(obj: TypeEngine[Any], value: Any) -> bool:  # noqa: ANN401
    """A ``TypeDecorator``'s ``impl`` argument left to the class's own ``impl``."""
    default = getattr(type(obj), "impl", None)
    expected = default if isinstance(default, type) else type(default)
    return isinstance(obj, TypeDecorator) and type(value) is expected


def constructor_call(obj: TypeEngine[Any], autogen_context: AutogenContext) -> str:
    """``module.Type(arg=...)``: a custom type with the arguments it was built with.

    Each parameter of the type's ``__init__`` is read back from the attribute of the same name
    (or ``_name``); arguments left at their default are not written. Raises
    ``CustomTypeRenderError`` when an argument was not kept or has no Python spelling pgkeel
    knows (a lambda, an arbitrary object).
    """
    cls = type(obj)
    imports = {f"import {cls.__module__}"}
    where = f"{cls.__module__}.{cls.__qualname__}"
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    positional, keywords = [], []
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        kept, value = _argument(obj, parameter.name)
        required = parameter.default is parameter.empty
        if not kept and required:
            raise CustomTypeRenderError(
                f"pgkeel cannot write the column type {where} into the migration: it does not "
                f"keep its required argument {parameter.name!r} as an attribute, so the "
                f"migration would call {cls.__qualname__}() without it and fail. "
                + _fix(cls.__qualname__)
            )
        if not kept or (not required and _is_default(value, parameter.default)):
            continue
        if parameter.name == "impl" and _same_impl(obj, value):
            continue
        text = _literal(value, imports, autogen_context)
        if text is None:
            raise CustomTypeRenderError(
                f"pgkeel cannot write the column type {where} into the migration: its argument "
                f"{parameter.name} = {value!r} has no Python spelling pgkeel knows (a value, a "
                "type, an importable class, function, enum member or module). "
                + _fix(cls.__qualname__)
            )
        if parameter.kind is parameter.POSITIONAL_ONLY:
            positional.append(text)
        else:
            keywords.append(f"{parameter.name}={text}")
    autogen_context.imports.update(imports)
    return f"{where}({', '.join([*positional, *keywords])})"


def _has_own_repr(obj: TypeEngine[Any]) -> bool:
    return not type(obj).__repr__.__module__.startswith("sqlalchemy.")


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:  # noqa: ANN401  # Alembic's render_item signature
    """Render a column type from outside SQLAlchemy with its import and its arguments.

    Alembic's default writes ``module.Type()`` without the import (``NameError``) and without
    the arguments the type was built with (``StringEnum()`` missing its enum); SQLAlchemy's own
    types keep Alembic's rendering. A type with a ``__repr__`` of its own is written as
    ``module.`` + that ``repr``.
    """
    if type_ != "type":
        return False
    if isinstance(obj, Enum) and obj.native_enum and obj.name:
        return _render_enum(autogen_context, obj)
    module = type(obj).__module__
    if module.startswith("sqlalchemy.") or module == "builtins":
        return False
    if _has_own_repr(obj):
        autogen_context.imports.add(f"import {module}")
        return f"{module}.{obj!r}"
    return constructor_call(obj, autogen_context)


def render_backfill(autogen_context: AutogenContext, op: BackfillOp) -> str:
    """``op.backfill(table, {column: sql}, where=...)``."""
    return call(
        _prefix(autogen_context) + "backfill",
        [op.table_name, op.values],
        [("where", op.where), ("schema", op.schema)],
    )


def render_add_not_null_check(autogen_context: AutogenContext, op: AddNotNullCheckOp) -> str:
    """``op.add_not_null_check(table, column)``."""
    return call(
        _prefix(autogen_context) + "add_not_null_check",
        [op.table_name, op.column_name],
        [("schema", op.schema)],
    )


def render_set_not_null(autogen_context: AutogenContext, op: SetNotNullOp) -> str:
    """``op.set_not_null(table, column)``."""
    return call(
        _prefix(autogen_context) + "set_not_null",
        [op.table_name, op.column_name],
        [("schema", op.alter.schema)],
    )


def render_not_null_steps(autogen_context: AutogenContext, op: NotNullStepsOp) -> list[str]:
    """Each step, one after the other."""
    from alembic.autogenerate.render import render_op  # noqa: PLC0415  # loaded with Alembic

    return [line for item in op.ops for line in render_op(autogen_context, item)]
