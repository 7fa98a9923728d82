"""A statement's first words as PostgreSQL reads them: past leading blanks and comments.

The hooks tell a few kinds of statement apart by how they begin (transaction control, a
``ROLLBACK TO SAVEPOINT`` that may restore an earlier setting, the commands PostgreSQL refuses in
a transaction block). ``/* retry */ ROLLBACK TO SAVEPOINT s`` or a ``-- comment`` line ahead of
``VACUUM`` begins the same way for PostgreSQL, so it must for the hooks too. Words further in
(a string literal, a comment after the command) never decide the kind.
"""

from __future__ import annotations

import re
from typing import Final

_LEADING_COMMENTS: Final = re.compile(r"(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
"""Blanks, ``--`` line comments and ``/* */`` block comments ahead of the first word.

A nested block comment (``/* a /* b */ c */``) stops the match inside it: the statement then
begins with comment text that no kind matches, which the callers treat as an ordinary statement
(wrapped, or followed by the tenant setting), the side that keeps a tenant's value right.
"""
_COMMENT_STARTS: Final = ("-", "/")


def statement_head(statement: str) -> str:
    """``statement`` from its first word on: leading blanks and comments skipped.

    Nearly every statement starts with its first word, or with blanks: one ``lstrip()``; the
    comment pattern runs only on a statement that starts with ``-`` or ``/`` after it.
    """
    head = statement.lstrip()
    if not head.startswith(_COMMENT_STARTS):
        return head
    skipped = _LEADING_COMMENTS.match(head)
    return head[skipped.end() :] if skipped else head
