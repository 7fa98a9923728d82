"""The hook on each statement as it reaches the driver: the tenant setting, the AUTOCOMMIT wrapper.

pgkeel listens on the dialect's ``do_execute``, ``do_execute_no_params`` and ``do_executemany``
events rather than on the engine's ``before_cursor_execute`` and ``after_cursor_execute``: any
connection-event listener on an engine makes every ``Connection`` join the engine's event
dispatcher and build a joined listener at each event point its transactions pass, about a tenth
of the client's time for a short ORM read (docs/performance.md); the dialect's events are
dispatched without that. Transactions are told apart by ``current_transaction`` rather than by
``begin``/``commit``/``rollback`` events, and a ``ROLLBACK TO SAVEPOINT`` by its text as it is
sent (``sync_tenant``).

The listeners go first among the dialect's own (``listen_first``): a listener of the application's
that runs the statement itself, and returns True so that the dialect does not, still finds the
tenant set (one on the ``Dialect`` or ``Engine`` class would run before them). They run after
every ``before_cursor_execute`` listener, right before the driver call. In ``AUTOCOMMIT`` outside
a tenant context a statement runs inside the transaction ``begin_cleared`` opened for it: the
listener runs the listeners after it and then the dialect's own call, as SQLAlchemy would, and
commits once the statement has run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from pgkeel.session._autocommit import commit_cleared
from pgkeel.session._tenant_setting import sync_tenant

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine.interfaces import ExecutionContext


def _run_in_wrapper(
    event_name: str,
    own: Callable[..., bool],
    *arguments: Any,  # noqa: ANN401  # the event's arguments, the context last
) -> None:
    """Run the statement as SQLAlchemy would: the listeners after ``own``, else the dialect."""
    context: ExecutionContext = arguments[-1]
    after_own = False
    for listener in getattr(context.dialect.dispatch, event_name):
        if after_own and listener(*arguments):
            break
        after_own = after_own or listener is own
    else:
        getattr(context.dialect, event_name)(*arguments)
    commit_cleared(context.root_connection)


def _statement_hook(event_name: str) -> Callable[..., bool]:
    """The listener for the dialect's ``event_name`` (the dialect's method of the same name).

    Its arguments are the event's: the cursor, the statement, the parameters (but for
    ``do_execute_no_params``) and the execution context. It sets the tenant first, and returns
    True when it ran the statement itself (AUTOCOMMIT, see the module).
    """

    def listener(*arguments: Any) -> bool:  # noqa: ANN401  # the event's arguments
        context: ExecutionContext = arguments[-1]
        if not sync_tenant(context.root_connection, arguments[1]):
            return False
        _run_in_wrapper(event_name, listener, *arguments)
        return True

    listener.__name__ = listener.__qualname__ = f"on_{event_name}"
    return listener


on_execute: Final = _statement_hook("do_execute")
on_execute_no_params: Final = _statement_hook("do_execute_no_params")
on_executemany: Final = _statement_hook("do_executemany")
