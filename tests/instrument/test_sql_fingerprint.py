"""SQL fingerprints: literal values and list lengths vanish, structure stays."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from botpulse.instrument._sql import fingerprint, looks_like_sql, normalize_name, statement_info

literals = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: repr(abs(f))),
    st.text(max_size=20).map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.sampled_from(["TRUE", "FALSE", "$1", "%s", "?", ":name", "%(name)s", "E'\\n'", "$$x$$"]),
)

TEMPLATES = [
    "SELECT name, score FROM players WHERE id = {0}",
    "select * from matches where guild_id = {0} and created_at > {1} order by id limit {2}",
    "UPDATE players SET score = score + {0} WHERE id = {1}",
    "INSERT INTO events (kind, payload) VALUES ({0}, {1})",
    "DELETE FROM sessions WHERE expires < {0}",
    "SELECT p.name FROM players p JOIN teams t ON t.id = p.team_id WHERE t.name = {0} AND p.age >= {1}",
]


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_never_raises_and_is_idempotent_on_any_string(text: str) -> None:
    once = fingerprint(text)
    assert isinstance(once, str)
    assert fingerprint(once) == once
    assert isinstance(normalize_name(text), str)
    assert isinstance(statement_info(text).type, str)


@settings(max_examples=200)
@given(
    st.sampled_from(TEMPLATES),
    st.lists(literals, min_size=3, max_size=3),
    st.lists(literals, min_size=3, max_size=3),
)
def test_statements_differing_only_in_literals_share_a_fingerprint(
    template: str, first: list[str], second: list[str]
) -> None:
    a = fingerprint(template.format(*first))
    b = fingerprint(template.format(*second))
    assert a == b
    assert fingerprint(a) == a
    for value in first:
        if len(value) > 3 and value.startswith("'"):
            assert value not in a


@settings(max_examples=200)
@given(st.lists(literals, min_size=1, max_size=40), st.lists(literals, min_size=1, max_size=40))
def test_in_list_length_does_not_matter(first: list[str], second: list[str]) -> None:
    template = "SELECT * FROM players WHERE id IN ({}) AND active = 1"
    a = fingerprint(template.format(", ".join(first)))
    b = fingerprint(template.format(", ".join(second)))
    assert a == b == "SELECT * FROM players WHERE id IN (?) AND active = ?"


@settings(max_examples=100)
@given(st.integers(min_value=1, max_value=30), st.integers(min_value=1, max_value=30))
def test_values_rows_fold(rows_a: int, rows_b: int) -> None:
    def insert(rows: int) -> str:
        return "INSERT INTO t (a, b) VALUES " + ", ".join(["(%s, %s)"] * rows)

    assert fingerprint(insert(rows_a)) == fingerprint(insert(rows_b))


identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: (
        not looks_like_sql(s)
        and s.upper()
        not in {
            "AS",
            "ON",
            "IN",
            "IS",
            "OR",
            "AND",
            "NOT",
            "BY",
            "TO",
            "DO",
            "IF",
            "OF",
            "AT",
            "NO",
            "TRUE",
            "FALSE",
            "NULL",
            "ALL",
            "ANY",
            "ASC",
            "DESC",
            "END",
            "FOR",
            "KEY",
            "SET",
            "USE",
            "OUT",
            "ADD",
            "MAX",
            "MIN",
            "SUM",
            "AVG",
            "ROW",
            "GO",
        }
    )
)


@settings(max_examples=200)
@given(
    identifiers,
    identifiers,
    identifiers,
    identifiers,
    st.sampled_from(["=", "<", ">", "<=", ">=", "<>", "LIKE"]),
    st.sampled_from(["=", "<", ">", "<=", ">=", "<>", "LIKE"]),
)
def test_different_structure_gives_different_fingerprints(
    table_a: str, table_b: str, column_a: str, column_b: str, op_a: str, op_b: str
) -> None:
    a = fingerprint(f"SELECT {column_a} FROM {table_a} WHERE {column_a} {op_a} 1")
    b = fingerprint(f"SELECT {column_b} FROM {table_b} WHERE {column_b} {op_b} 1")
    assert (a == b) == ((table_a, column_a, op_a) == (table_b, column_b, op_b))


def test_examples() -> None:
    assert fingerprint("select name from users where id = 42") == (
        "SELECT name FROM users WHERE id = ?"
    )
    assert fingerprint("SELECT 1 -- hi\n") == "SELECT ?"
    assert fingerprint("BEGIN;") == "BEGIN"
    assert fingerprint("SELECT x FROM t WHERE a = -5") == fingerprint("SELECT x FROM t WHERE a = 5")
    assert fingerprint("SELECT x - 1 FROM t") != fingerprint("SELECT x FROM t")
    assert fingerprint('SELECT "Name" FROM t') == 'SELECT "Name" FROM t'
    assert fingerprint("SELECT count(*) FROM t") == "SELECT count(*) FROM t"
    assert fingerprint("SELECT * FROM t WHERE id = ANY($1)") == "SELECT * FROM t WHERE id = ANY (?)"
    # A secret in a literal never survives.
    assert "hunter2" not in fingerprint("UPDATE users SET password = 'hunter2' WHERE id = 1")


def test_statement_info() -> None:
    info = statement_info("select p.name from players p join teams t on t.id = p.team_id")
    assert info.type == "SELECT"
    assert info.tables == ("players", "teams")
    assert info.is_read
    assert statement_info("INSERT INTO main.events (a) VALUES (1)").tables == ("main.events",)
    assert statement_info("WITH x AS (SELECT 1) DELETE FROM y").type == "DELETE"
    assert not statement_info("DELETE FROM y").is_read


def test_hand_measured_names_are_kept() -> None:
    assert normalize_name("db.get_player") == "db.get_player"
    assert normalize_name("Load Leaderboard") == "Load Leaderboard"
    assert normalize_name("SELECT * FROM t WHERE id = 3") == "SELECT * FROM t WHERE id = ?"
