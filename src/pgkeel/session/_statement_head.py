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


_LEXEMES_HIDING_SEMICOLONS: Final = re.compile(
    r"[Ee]'(?:[^'\\]|\\.|'')*'"  # E'...': backslash escapes
    r"|'(?:[^']|'')*'"  # a string literal
    r'|"(?:[^"]|"")*"'  # a quoted name
    r"|\$(?P<tag>(?:[A-Za-z_][A-Za-z_0-9]*)?)\$.*?\$(?P=tag)\$"  # a dollar-quoted body
    r"|--[^\n]*"  # a line comment
    r"|/\*.*?\*/",  # a block comment
    re.DOTALL,
)
"""What may hold a ``;`` that ends no statement: literals, quoted names, bodies, comments."""


def statement_heads(text: str) -> list[str]:
    """The first words of each statement of a text that holds several (``SELECT 1; COMMIT``).

    Only for a text with a ``;`` in it (the callers test that first: the ORM's statements have
    none). Literals, quoted names, dollar-quoted bodies and comments are blanked out first, so
    a ``;`` inside one ends nothing; an unterminated one blanks nothing, and its ``;`` counts,
    which errs towards seeing one statement more.
    """
    bare = _LEXEMES_HIDING_SEMICOLONS.sub(" ", text)
    return [part.lstrip()[:40] for part in bare.split(";") if part.strip()]
