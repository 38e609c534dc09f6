"""SQL fingerprints: statements that differ only in literal values get the same text.

``fingerprint("SELECT * FROM users WHERE id = 42 AND tag IN ('a', 'b')")`` is
``"SELECT * FROM users WHERE id = ? AND tag IN (?)"``. Literals (strings, numbers,
booleans, dollar-quoted text) and driver placeholders (``?``, ``$1``, ``%s``,
``%(name)s``, ``:name``) become ``?``; a parenthesised list of nothing but values
becomes ``(?)`` whatever its length, and repeated ``VALUES`` rows fold into one;
comments go, whitespace is normalised and keywords are upper-cased. Identifiers keep
their spelling.

It tokenizes with `sqlparse <https://pypi.org/project/sqlparse/>`_'s lexer, which knows
every DB-API parameter style, quoted identifiers, ``E''`` strings and dollar quoting
(docs/decisions.md says why not a regex, and why not sqlglot). It runs in the pipeline
thread, as the normalizer of kind ``db`` (cached per statement text), never in the bot's
call. Importing this module imports sqlparse; ``import botpulse`` does not.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlparse import lexer
from sqlparse import tokens as T  # noqa: N812 - sqlparse's own idiom

__all__ = ["StatementInfo", "fingerprint", "looks_like_sql", "normalize_name", "statement_info"]

_lex = cast("Callable[[str], Iterable[tuple[Any, str]]]", lexer.tokenize)

#: Statements longer than this are fingerprinted on their first part only.
MAX_SQL_CHARS = 20_000
_VALUE = "?"
_LIST = ("(", "?", ")")
_STATEMENT_WORDS = frozenset(
    """SELECT INSERT UPDATE DELETE WITH REPLACE MERGE UPSERT VALUES CREATE ALTER DROP
    TRUNCATE BEGIN COMMIT ROLLBACK SAVEPOINT RELEASE START SET SHOW EXPLAIN PRAGMA VACUUM
    ANALYZE COPY LOCK GRANT REVOKE DECLARE FETCH CLOSE MOVE LISTEN NOTIFY UNLISTEN CALL
    EXECUTE PREPARE DEALLOCATE DISCARD RESET REINDEX ATTACH DETACH COMMENT CLUSTER TABLE
    DO END ABORT""".split()  # noqa: SIM905 - a word list reads better this way
)
_LITERAL_WORDS = frozenset({"TRUE", "FALSE"})
# A one-letter prefix glued to a string literal: E'..', B'..', X'..', N'..', U&'..'.
_STRING_PREFIXES = frozenset({"E", "B", "X", "N", "U&", "U"})
_NO_SPACE_BEFORE = frozenset({",", ")", ".", "::", ";", "]"})
_NO_SPACE_AFTER = frozenset({"(", ".", "::", "["})
_TABLE_AFTER = frozenset({"FROM", "JOIN", "INTO", "UPDATE", "TABLE"})
# sqlparse lexes 1e+16 as the name "1e", "+", 16.
_EXPONENT_HEAD = re.compile(r"\d[\d.]*[eE]")


def _tokens(sql: str) -> list[tuple[str, bool]]:
    """Normalised tokens: (text, is_word) where is_word marks names/keywords/values."""
    out: list[tuple[str, bool]] = []
    keywords: set[str] = set()  # texts that came from keywords (not names)
    glued = False  # no whitespace between the previous token and this one
    exponent = 0  # tokens of a split "1e+16" still to swallow
    for ttype, value in _lex(sql[:MAX_SQL_CHARS]):
        if ttype in T.Whitespace or ttype in T.Newline or ttype in T.Comment:
            glued = False
            exponent = 0
            continue
        if exponent:
            exponent -= 1
            if (exponent == 1 and value in "+-") or (exponent == 0 and ttype in T.Literal.Number):
                continue
            exponent = 0
        if ttype in T.Name and _EXPONENT_HEAD.fullmatch(value):
            if not (glued and out and out[-1][0] == _VALUE):  # "1.5" "2e" "+" "16" is one
                out.append((_VALUE, True))
            exponent = 2
            glued = True
            continue
        if ttype in T.Literal.String.Symbol:  # "quoted identifier": a name, not a value
            out.append((value, True))
        elif ttype in T.Literal or ttype in T.Name.Placeholder:
            if (
                ttype in T.Literal.String
                and glued
                and out
                and out[-1][0].upper() in _STRING_PREFIXES
            ):
                out.pop()  # E'...' is one value
            if value[:1] in "+-" and ttype in T.Literal.Number:
                prev = out[-1] if out else None
                if prev is not None and (
                    prev[0] == ")" or (prev[1] and (prev[0] == _VALUE or prev[0] not in keywords))
                ):
                    out.append((value[0], False))  # a binary minus glued to the number
            out.append((_VALUE, True))
        elif ttype in T.Keyword or ttype in T.Name.Builtin:
            upper = value.upper()
            if upper in _LITERAL_WORDS:
                out.append((_VALUE, True))
            else:
                word = " ".join(upper.split())
                keywords.add(word)
                out.append((word, True))
        elif ttype in T.Name or ttype in T.Wildcard:
            out.append((value, True))
        else:
            # Operators, punctuation, errors: keep the text without inner whitespace.
            text = "".join(value.split())
            if text:
                out.append((text, False))
        glued = True
    while out and out[-1][0] == ";":  # "BEGIN;" is "BEGIN"
        out.pop()
    return _fold_lists(out)


def _fold_lists(tokens: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """``( ? , ? , ? )`` → ``(?)``; ``(?) , (?) , ...`` → ``(?)`` (VALUES rows, tuple lists)."""
    out: list[tuple[str, bool]] = []
    for tok in tokens:
        out.append(tok)
        if tok[0] != ")":
            continue
        # Walk back over "? , ? , ... ?" to the opening "(".
        i = len(out) - 2
        expect_value = True
        while i >= 0:
            text = out[i][0]
            if expect_value and text == _VALUE:
                expect_value = False
            elif not expect_value and text == ",":
                expect_value = True
            else:
                break
            i -= 1
        if i >= 0 and out[i][0] == "(" and not expect_value and i < len(out) - 2:
            del out[i:]
            out.extend((("(", False), (_VALUE, True), (")", False)))
        # A row list: "(?) , (?)" → "(?)".
        while (
            len(out) >= 7
            and tuple(t for t, _ in out[-3:]) == _LIST
            and out[-4][0] == ","
            and tuple(t for t, _ in out[-7:-4]) == _LIST
        ):
            del out[-4:]
    return out


def _join(tokens: list[tuple[str, bool]]) -> str:
    parts: list[str] = []
    prev: tuple[str, bool] | None = None
    before = ""
    for tok in tokens:
        text = tok[0]
        if prev is not None:
            space = True
            if text in _NO_SPACE_BEFORE or prev[0] in _NO_SPACE_AFTER:
                space = False
            elif (
                text == "("
                and prev[1]
                and not _is_keyword_like(prev[0])
                and before not in _TABLE_AFTER
            ):
                space = False  # a function call: count(*), not INSERT INTO t (a, b)
            if space:
                parts.append(" ")
        parts.append(text)
        before = prev[0] if prev is not None else ""
        prev = tok
    return "".join(parts)


def _is_keyword_like(text: str) -> bool:
    return text.isupper() and text.replace(" ", "").isalpha()


@functools.lru_cache(maxsize=4096)
def fingerprint(sql: str) -> str:
    """The normalised text of ``sql`` (literals and parameter lists replaced); never raises.

    Example::

        >>> fingerprint("select name from users where id = 42")
        'SELECT name FROM users WHERE id = ?'
    """
    try:
        text = _join(_tokens(sql))
        # Joining can create what lexes differently (garbage such as "#0" gives "# ?",
        # a comment): settle on a fixed point so that fingerprints are idempotent.
        for _ in range(4):
            again = _join(_tokens(text))
            if again == text:
                return text
            text = again
    except Exception:  # noqa: BLE001, S110 - never raise on any string
        pass
    return _VALUE


def looks_like_sql(text: str) -> bool:
    """True when ``text`` starts with a SQL statement keyword (after comments and parens)."""
    for ttype, value in _lex(text[:200]):
        if ttype in T.Whitespace or ttype in T.Newline or ttype in T.Comment or value == "(":
            continue
        return value.upper() in _STATEMENT_WORDS
    return False


@functools.lru_cache(maxsize=4096)
def normalize_name(name: str) -> str:
    """The stored name of a ``db`` operation: its fingerprint if it is SQL, else ``name``.

    Operations measured by hand (``measure("db.get_player", kind="db")``) keep their names.
    """
    try:
        return fingerprint(name) if looks_like_sql(name) else name
    except Exception:  # noqa: BLE001
        return name


@dataclass(frozen=True, slots=True)
class StatementInfo:
    """What a statement is: its fingerprint, type (``SELECT``, ``INSERT``, ...) and tables."""

    fingerprint: str
    type: str
    tables: tuple[str, ...]

    @property
    def is_read(self) -> bool:
        """A ``SELECT`` (or ``WITH ... SELECT``) that changes nothing."""
        return self.type in {"SELECT", "WITH", "SHOW", "PRAGMA", "VALUES", "TABLE"}


@functools.lru_cache(maxsize=4096)
def statement_info(sql: str) -> StatementInfo:
    """Fingerprint, statement type and the tables named after FROM/JOIN/INTO/UPDATE."""
    try:
        tokens = _tokens(sql)
    except Exception:  # noqa: BLE001
        return StatementInfo(fingerprint(sql), "", ())
    kind = ""
    tables: list[str] = []
    for index, (text, is_word) in enumerate(tokens):
        if not kind and is_word and text != "(":
            kind = text.split(" ", 1)[0] if text in _STATEMENT_WORDS or " " in text else ""
            if not kind and text.upper() in _STATEMENT_WORDS:
                kind = text.upper()
        if text in _TABLE_AFTER or text.endswith(" JOIN"):
            name = _dotted_name(tokens, index + 1)
            if name and name not in tables and name != _VALUE:
                tables.append(name)
    if kind == "WITH":  # the statement after the CTEs decides: the first one at depth 0
        depth = 0
        for text, _ in tokens:
            depth += (text == "(") - (text == ")")
            if depth == 0 and text in {"SELECT", "INSERT", "UPDATE", "DELETE"}:
                kind = text
                break
    return StatementInfo(_join(tokens), kind, tuple(tables[:8]))


def _dotted_name(tokens: list[tuple[str, bool]], start: int) -> str:
    parts: list[str] = []
    i = start
    while i < len(tokens):
        text, is_word = tokens[i]
        if not parts:
            if not is_word or (_is_keyword_like(text) and text in _STATEMENT_WORDS):
                return ""
            parts.append(text)
        elif text == "." and i + 1 < len(tokens) and tokens[i + 1][1]:
            parts.extend((".", tokens[i + 1][0]))
            i += 1
        else:
            break
        i += 1
    return "".join(parts)
