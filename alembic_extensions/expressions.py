"""SQL expressions in one canonical spelling, to compare a model's with the catalog's cheaply.

PostgreSQL stores a check, an index predicate or a default in its own spelling: every operator
expression in parentheses, keywords in lower or upper case, ``'a'::text`` for a literal,
``(kind)::text`` for a ``varchar`` column, ``<>`` for ``!=`` and ``~~`` for ``LIKE``. Comparing
that with the model's text needs a spelling both share, and one that keeps every difference
that changes the rule: the contents of string literals (case and spaces included), quoted
identifiers, and parentheses that change how the expression groups.

``canonical_expression`` parses the common forms with PostgreSQL's operator precedence and
writes them back with one pair of parentheses per operator: ``a > 0 OR (b > 0 AND c > 0)`` and
``((a > 0) OR ((b > 0) AND (c > 0)))`` compare equal, ``(a > 0 OR b > 0) AND c > 0`` does not.
The casts PostgreSQL writes where the model may leave them out are left out too, as long as
they cannot change a value: to ``text`` and ``character varying`` (without a length; of a
column, only when the caller does not say its type keeps them: see ``kept_casts``), a string
literal's to a type named without a length (``'{}'::jsonb``, not ``'a'::varchar(1)`` or
``'a'::bpchar``), an integer literal's to a numeric type and a decimal one's to ``numeric``
(``(0)::numeric``, not ``(1.5)::integer``). A form it does not parse (``CASE``,
``IN``, ``BETWEEN``, a subquery...) is written as its tokens, parentheses and casts kept: two
texts that differ only in spaces or the case of keywords still compare equal, and any other
difference is left to PostgreSQL (see ``probes``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["canonical_expression", "identifiers", "literal_of_cast", "with_columns_renamed"]

# The lexer is compiled by ``re`` on first use (and kept in its cache): a run whose expressions
# all match as written, or are literals with their casts, never compiles it. The other forms
# (a literal, a name) are read with string methods: each pattern would cost its compilation
# (0.1 to 0.2 ms) in the first run of every process.
_LEXEMES = r"""
    (?P<space>\s+)
    | (?P<prefixed>[A-Za-z]&?')
    | (?P<string>'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")+")
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<word>[^\W\d][\w$]*)
    | (?P<punct>::|[(),\[\].])
    | (?P<operator>[-+*/<>=~!@#%^&|`?]+)
    """
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyz_")
_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz_0123456789$"
_KEYWORDS = frozenset(
    [
        "all",
        "and",
        "any",
        "array",
        "asymmetric",
        "at",
        "between",
        "both",
        "case",
        "cast",
        "collate",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "distinct",
        "else",
        "end",
        "escape",
        "exists",
        "false",
        "from",
        "ilike",
        "in",
        "is",
        "isnull",
        "leading",
        "like",
        "localtime",
        "localtimestamp",
        "not",
        "notnull",
        "null",
        "or",
        "overlaps",
        "select",
        "session_user",
        "similar",
        "some",
        "symmetric",
        "then",
        "trailing",
        "true",
        "unknown",
        "user",
        "when",
    ]
)
"""Words that mean something else unquoted: ``"true"`` is a column, ``true`` a value."""
_OPERATOR_SPECIALS = frozenset("~!@#%^&|`?")
_TEXT_CASTS = frozenset({"text", "character varying", "varchar", "text[]", "character varying[]"})
_INTEGER_CASTS = frozenset({"smallint", "integer", "bigint", "numeric", "double precision"})
_DECIMAL_CASTS = frozenset({"numeric"})
_PADDED_TYPES = frozenset({"bpchar", "character", "char", '"char"', "name"})
"""Types whose value differs from the literal's text (blank-padded, truncated): casts kept."""
_TYPE_WORDS = frozenset({"varying", "precision", "with", "without", "time", "zone"})
_INFIXES_NOT_PARSED = frozenset(
    {"in", "between", "similar", "escape", "collate", "at", "overlaps", "not"}
)
_ATOMS_NOT_PARSED = frozenset(
    {"case", "select", "cast", "exists", "or", "and", "is", "isnull", "notnull", "like", "ilike"}
)
_IS_OPERANDS = frozenset({"null", "true", "false", "unknown"})
_WORD_POWERS = {"or": 1, "and": 2, "is": 4, "isnull": 4, "notnull": 4, "like": 6, "ilike": 6}
_OPERATOR_POWERS = {"<": 5, ">": 5, "=": 5, "<=": 5, ">=": 5, "<>": 5, "+": 8, "-": 8}
_OPERATOR_POWERS |= {"*": 9, "/": 9, "%": 9, "^": 10}
_OTHER_OPERATOR = 7
_NOT_POWER = 3
_UNARY_POWER = 11
_CAST_POWER = 13
_LIKE_OPERATORS = {"like": "~~", "ilike": "~~*", "not like": "!~~", "not ilike": "!~~*"}


class _UnparsedError(Exception):
    """A form the canonical spelling does not cover: the tokens are compared instead."""


class _Token:
    """A lexeme: its kind and its text.

    A class with slots: light to build (one per lexeme of every expression), and to define,
    where a ``NamedTuple`` costs a tenth of a millisecond when the module is first imported.
    """

    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        self.text = text


def _operator_tokens(text: str) -> list[_Token]:
    """An operator as PostgreSQL's lexer splits it: ``>-`` is ``>`` then ``-``."""
    if "--" in text or "/*" in text:
        raise _UnparsedError(text)
    split: list[_Token] = []
    while len(text) > 1 and text[-1] in "+-" and not _OPERATOR_SPECIALS & set(text):
        split.insert(0, _Token("operator", text[-1]))
        text = text[:-1]
    return [_Token("operator", "<>" if text == "!=" else text), *split]


def _token(kind: str, text: str) -> list[_Token]:
    if kind == "prefixed":  # E'...', B'...', U&'...': escapes this module does not read
        raise _UnparsedError(text)
    if kind == "operator":
        return _operator_tokens(text)
    if kind == "word":
        return [_Token(kind, text.lower())]
    if kind == "quoted" and _is_folded(text[1:-1]) and text[1:-1] not in _KEYWORDS:
        return [_Token("word", text[1:-1])]  # "status" is status
    return [_Token(kind, text)]


def _tokens(text: str) -> list[_Token]:
    """The tokens of ``text``; unquoted words in lower case, as PostgreSQL folds them."""
    found: list[_Token] = []
    position = 0
    lexer = re.compile(_LEXEMES, re.VERBOSE)
    while position < len(text):
        match = lexer.match(text, position)
        if match is None or match.lastgroup is None:
            raise _UnparsedError(text[position:])
        if match.lastgroup != "space":
            found += _token(match.lastgroup, match.group())
        position = match.end()
    return found


class _Parser:
    """PostgreSQL's precedence over a common subset of expressions, written back canonically."""

    def __init__(
        self, tokens: list[_Token], kept_casts: frozenset[str], *, keep_expression_casts: bool
    ) -> None:
        self.tokens = tokens
        self.position = 0
        self.kept_casts = kept_casts
        self.keep_expression_casts = keep_expression_casts

    def peek(self, ahead: int = 0) -> _Token:
        index = self.position + ahead
        return self.tokens[index] if index < len(self.tokens) else _Token("end", "")

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if token.kind == "end" or (text is not None and token.text != text):
            raise _UnparsedError(text or "end")
        self.position += 1
        return token

    def whole(self) -> str:
        written = self.expression(0)
        self.take_end()
        return written

    def take_end(self) -> None:
        if self.peek().kind != "end":
            raise _UnparsedError(self.peek().text)

    def expression(self, weakest: int) -> str:
        """An expression whose operators bind at least as tightly as ``weakest``."""
        written = self.prefix()
        while (power := self.infix_power()) is not None and power >= weakest:
            written = self.infix(written, power)
        return written

    def infix_power(self) -> int | None:
        token = self.peek()
        if token.kind == "punct":
            return _CAST_POWER if token.text == "::" else None
        if token.kind == "operator":
            return _OPERATOR_POWERS.get(token.text, _OTHER_OPERATOR)
        if token.kind == "word" and token.text == "not" and self.peek(1).text in _LIKE_OPERATORS:
            return _WORD_POWERS[self.peek(1).text]
        if token.kind == "word" and token.text in _INFIXES_NOT_PARSED:
            raise _UnparsedError(token.text)
        return _WORD_POWERS.get(token.text) if token.kind == "word" else None

    def infix(self, left: str, power: int) -> str:
        word = self.take().text
        if word == "::":
            return self.cast(left)
        if word in {"is", "isnull", "notnull"}:
            return self.is_test(left, word)
        if word == "not":
            word = "not " + self.take().text
        operator = _LIKE_OPERATORS.get(word, word)
        return f"({left} {operator} {self.expression(power + 1)})"

    def is_test(self, left: str, word: str) -> str:
        if word != "is":
            return f"({left} IS {'NULL' if word == 'isnull' else 'NOT NULL'})"
        negated = " NOT" if self.peek().text == "not" else ""
        self.position += bool(negated)
        if self.peek().text == "distinct":
            self.take("distinct")
            self.take("from")
            return f"({left} IS{negated} DISTINCT FROM {self.expression(5)})"
        operand = self.take().text
        if operand not in _IS_OPERANDS:
            raise _UnparsedError(operand)
        return f"({left} IS{negated} {operand.upper()})"

    def cast(self, operand: str) -> str:
        """``operand::type``, without the cast when it is one PostgreSQL adds itself."""
        words = [self.take().text]
        while self.peek().text in _TYPE_WORDS | {"."}:
            token = self.take()
            if token.text == ".":
                words[-1] += "." + self.take().text
            else:
                words.append(token.text)
        type_name = " ".join(words)
        if self.peek().text == "(":
            type_name += self.arguments()
        while self.peek().text == "[":
            self.take("[")
            self.take("]")
            type_name += "[]"
        implied = _implied(operand, type_name) and self._text_cast_implied(operand, type_name)
        return operand if implied else f"({operand})::{type_name}"

    def _text_cast_implied(self, operand: str, type_name: str) -> bool:
        """A cast to text left out: of a literal, a string column, or (lenient) an expression."""
        if type_name not in _TEXT_CASTS or _is_string_literal(operand):
            return True
        if _is_name(operand):
            return _column_name(operand) not in self.kept_casts
        return not self.keep_expression_casts

    def prefix(self) -> str:
        token = self.peek()
        if token.text == "not":
            self.take()
            return f"(NOT {self.expression(_NOT_POWER)})"
        if token.kind == "operator" and token.text in {"-", "+"}:
            self.take()
            return f"({token.text} {self.expression(_UNARY_POWER)})"
        if token.text == "(":
            self.take("(")
            inner = self.expression(0)
            self.take(")")
            return inner
        return self.atom()

    def atom(self) -> str:
        token = self.take()
        if token.kind in {"string", "number"}:
            return token.text
        if token.kind not in {"word", "quoted"} or token.text in _ATOMS_NOT_PARSED:
            raise _UnparsedError(token.text)
        if token.text == "array" and self.peek().text == "[":
            return "array" + self.elements("[", "]")
        name = token.text
        while self.peek().text == ".":
            self.take(".")
            name += "." + self.take().text
        return name + self.arguments() if self.peek().text == "(" else name

    def arguments(self) -> str:
        return self.elements("(", ")")

    def elements(self, opening: str, closing: str) -> str:
        """A list of expressions between ``opening`` and ``closing``, separated by commas."""
        self.take(opening)
        written: list[str] = []
        while self.peek().text != closing:
            if written:
                self.take(",")
            written.append(self.expression(0))
        self.take(closing)
        return opening + ", ".join(written) + closing


def _is_folded(name: str) -> bool:
    """Whether ``name`` reads the same unquoted: ``[a-z_][a-z0-9_$]*``, in ASCII."""
    return name[:1] in _NAME_START and not name.strip(_NAME_CHARACTERS)


def _is_name(operand: str) -> bool:
    """Whether ``operand`` is a column's name as the parser writes it back, maybe qualified.

    Its parts are joined by dots, each unquoted in lower case (``_is_folded``) or quoted
    (``"..."``, not empty, no quote inside).
    """
    rest = operand
    while True:
        if rest[:1] == '"':
            closing = rest.find('"', 1)
            if closing < 2:  # not closed, or nothing quoted
                return False
            rest = rest[closing + 1 :]
        else:
            part = rest.partition(".")[0]
            if not _is_folded(part):
                return False
            rest = rest[len(part) :]
        if not rest:
            return True
        if rest[0] != ".":
            return False
        rest = rest[1:]


def _is_string_literal(operand: str) -> bool:
    """Whether ``operand`` is one string literal: ``'...'``, each quote inside doubled."""
    if len(operand) < 2 or operand[0] != "'" or operand[-1] != "'":
        return False
    return "'" not in operand[1:-1].replace("''", "")


def _is_decimal(operand: str) -> bool:
    """Whether ``operand`` is a decimal literal: digits with a point (``1.5``, ``.5``, ``1.``)."""
    whole, point, fraction = operand.partition(".")
    return bool(point) and (whole + fraction).isdecimal()


def _column_name(operand: str) -> str:
    """The column an operand names (``t.status`` and ``"status"`` name ``status``), else itself."""
    name = operand.rpartition(".")[2]
    return name[1:-1] if len(name) > 1 and name[0] == name[-1] == '"' else name


def _implied(operand: str, type_name: str) -> bool:
    """Whether PostgreSQL writes the cast where the model may leave it out, the value unchanged.

    A cast to text; a string literal's cast to a type without a length (PostgreSQL writes the
    type of every literal: ``'{}'::jsonb``, ``'open'::status``); an integer literal's cast to a
    numeric type, a decimal one's to ``numeric`` (``(0)::numeric``).
    """
    if type_name in _TEXT_CASTS:
        return True
    if _is_string_literal(operand):
        return _keeps_string(type_name)
    if operand.isdecimal():  # an integer literal: digits only
        return type_name in _INTEGER_CASTS
    return _is_decimal(operand) and type_name in _DECIMAL_CASTS


def _keeps_string(type_name: str) -> bool:
    """Whether a string literal cast to ``type_name`` keeps the literal's value."""
    if type_name in _TEXT_CASTS:
        return True
    return "(" not in type_name and type_name.removesuffix("[]") not in _PADDED_TYPES


def literal_of_cast(expression: str) -> str | None:
    """The literal of ``'text'::type`` when ``canonical_expression`` leaves the cast out.

    How PostgreSQL stores a literal default (``'-1'::integer``, ``'open'::character varying``):
    a literal without quotes inside, cast to a type named by words (no length, not
    blank-padded). Read without the lexer; anything else gives None.
    """
    literal, cast, type_name = expression.partition("::")
    quoted = len(literal) >= 2 and literal[0] == literal[-1] == "'"  # opening and closing
    if not cast or not quoted or "'" in literal[1:-1]:
        return None
    first, *more = type_name.split(" ")
    named = first.isascii() and first.isidentifier() and first == first.lower()
    if not named or any(word not in _TYPE_WORDS for word in more):
        return None
    return literal if _keeps_string(type_name) else None


def _token_spelling(tokens: list[_Token]) -> str:
    return " ".join(token.text for token in tokens)


@lru_cache(maxsize=4096)
def canonical_expression(
    expression: str,
    kept_casts: frozenset[str] = frozenset(),
    *,
    keep_expression_casts: bool = False,
) -> str:
    """``expression`` in the spelling two equal expressions share (see the module's notes).

    ``kept_casts``: the columns whose cast to ``text`` is kept, those of a type PostgreSQL
    never casts to text on its own (an enum, a uuid, a number): ``status::text > 'b'`` compares
    names in alphabetical order, ``status > 'b'`` in the enum's order, and the two must not
    share a spelling. PostgreSQL writes ``(name)::text`` itself for a ``varchar`` column.
    ``keep_expression_casts``: keep the cast to text of an expression too (``abs(n)::text =
    '0'`` is not ``abs(n) = '0'``), for a caller that asks PostgreSQL when spellings differ
    (PostgreSQL also writes it itself on a ``varchar`` expression, ``(COALESCE(name, ''))::text``).

    Remembered per text: the catalog's texts (``now()``, ``deleted_at IS NULL``...) come back on
    every column and every run.
    """
    try:
        tokens = _tokens(expression)
    except _UnparsedError:
        return expression.strip()
    try:
        parser = _Parser(tokens, kept_casts, keep_expression_casts=keep_expression_casts)
        return parser.whole()
    except _UnparsedError:
        return "tokens: " + _token_spelling(tokens)


def identifiers(expression: str) -> frozenset[str] | None:
    """The names ``expression`` mentions outside its string literals; None if it cannot tell.

    Unquoted names come back in lower case, as PostgreSQL folds them, quoted ones as written.
    """
    try:
        tokens = _tokens(expression)
    except _UnparsedError:
        return None
    names = {token.text for token in tokens if token.kind == "word"}
    return frozenset(names | {token.text[1:-1] for token in tokens if token.kind == "quoted"})


def with_columns_renamed(expression: str, renames: Mapping[str, str]) -> str | None:
    """``expression`` with the columns ``renames`` names renamed; None if it cannot be read.

    What PostgreSQL does to an index's expression or predicate when a column is renamed (it
    stores the column, not its name). A function's name (a word before ``(``) and the contents
    of string literals are left as they are. The result is tokens separated by spaces, for
    ``canonical_expression``.
    """
    try:
        tokens = _tokens(expression)
    except _UnparsedError:
        return None
    written: list[str] = []
    for position, token in enumerate(tokens):
        following = tokens[position + 1].text if position + 1 < len(tokens) else ""
        name = token.text[1:-1].replace('""', '"') if token.kind == "quoted" else token.text
        if token.kind in {"word", "quoted"} and following != "(" and name in renames:
            written.append('"' + renames[name].replace('"', '""') + '"')
        else:
            written.append(token.text)
    return " ".join(written)
