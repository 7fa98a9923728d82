"""Table-name plurals: inflect's answers, imported without typeguard's instrumentation.

pgkeel imports inflect with a stand-in for ``typeguard.typechecked`` (see
``pgkeel.naming._import_inflect``): the plurals must be exactly those of inflect imported the usual
way, on a broad word list, and nothing of the stand-in may leak into the rest of the process.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgkeel import naming
from pgkeel.naming import pluralize, table_name_for

# Nouns a schema is made of, beside the irregular and classical nouns of inflect's own tables.
SCHEMA_NOUNS = """
account activity address agency agent alert alias allocation amount analysis answer api_key
appointment approval archive area article asset assignment attachment attempt audit author
balance bank basis batch beneficiary bill booking box branch brand bucket budget bus business
cache calendar campaign candidate card cart case catalog category certificate change channel
chapter charge child city class client comment commit company condition config contact
container content contract country coupon course credit criterion currency customer dashboard
datum day deal delivery department deployment device diagnosis dictionary discount dispute
document domain draft echo email employee entity entry environment epoch equipment error
estimate event exception expense experiment export factory fax feature fee feedback file
fish flag foot fox fungus goose group half hero history hypothesis identity image index
invoice issue item job journal key knife leaf lease library life line locale location lock
log loss man match matrix medium memo menu message metric mouse movie news note notification
offer office order organization owner ox package page party passage payment penny person
phenomenon phone photo plan policy potato price process product profile project promo property
proxy quiz quota radius rate reply repo report request reservation resource response role
route rule salary schedule schema scope search series session setting sheep shelf shipment
species staff stage status step stimulus story strategy studio subscription summary supply
survey switch syllabus tax taxi team tenant thesis thief tomato tooth topic tax toy transaction
trip try user vertex veto video virus volume watch webhook wife wolf woman workflow zero
"""

# Today's answers for irregular nouns, written out: a change would rename existing tables.
IRREGULAR = {
    "analysis": "analyses",
    "child": "children",
    "criterion": "criteria",
    "datum": "data",
    "foot": "feet",
    "goose": "geese",
    "half": "halves",
    "hero": "heroes",
    "index": "indexes",
    "knife": "knives",
    "leaf": "leaves",
    "life": "lives",
    "man": "men",
    "matrix": "matrixes",
    "medium": "mediums",
    "mouse": "mice",
    "ox": "oxen",
    "person": "people",
    "phenomenon": "phenomena",
    "photo": "photos",
    "potato": "potatoes",
    "quiz": "quizzes",
    "series": "series",
    "sheep": "sheep",
    "species": "species",
    "status": "statuses",
    "thesis": "theses",
    "tooth": "teeth",
    "wife": "wives",
    "woman": "women",
}


@cache
def _usual_inflect() -> ModuleType:
    """inflect imported the usual way (typeguard instruments every method), kept apart."""
    names = ("inflect", "typeguard")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    try:
        return importlib.import_module("inflect")
    finally:
        sys.modules.pop("inflect", None)
        sys.modules.update(saved)


@pytest.fixture(scope="module")
def usual() -> ModuleType:
    return _usual_inflect()


def _words_of_inflect_tables(module: ModuleType) -> Iterator[str]:
    """Every word in inflect's own noun tables: irregular, classical and uninflected nouns."""
    for name in dir(module):
        if name.startswith(("pl_sb_", "si_sb_")):
            table = getattr(module, name)
            items = [*table, *table.values()] if isinstance(table, dict) else table
            if isinstance(items, list | tuple | set | frozenset):
                for item in items:
                    yield from re.findall(r"[a-z]+", str(item).lower())


def _with_engine(engine: object, word: str) -> str:
    original = naming._inflector
    naming._inflector = lambda: engine  # type: ignore[assignment]
    try:
        return pluralize(word)
    finally:
        naming._inflector = original  # type: ignore[assignment]


@pytest.fixture(scope="module")
def broad_words(usual: ModuleType) -> list[str]:
    singular = set(SCHEMA_NOUNS.split()) | set(_words_of_inflect_tables(usual)) | set(IRREGULAR)
    engine = usual.engine()
    plurals = {engine.plural_noun(word) for word in singular}
    return sorted(w for w in singular | plurals if w.isalpha() and w.islower())


def test_the_word_list_is_broad(broad_words: list[str]) -> None:
    assert len(broad_words) >= 2000


def test_every_plural_is_the_one_inflect_gives(usual: ModuleType, broad_words: list[str]) -> None:
    expected = {word: _with_engine(usual.engine(), word) for word in broad_words}
    assert [w for w in broad_words if pluralize(w) != expected[w]] == []


def test_engine_answers_match_word_by_word(usual: ModuleType, broad_words: list[str]) -> None:
    reference, ours = usual.engine(), naming._inflector()
    assert [ours.plural_noun(w) for w in broad_words] == [
        reference.plural_noun(w) for w in broad_words
    ]
    assert [ours.singular_noun(w) for w in broad_words] == [
        reference.singular_noun(w) for w in broad_words
    ]


@settings(max_examples=200, deadline=None)
@given(word=st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12))
def test_any_lowercase_word_gets_inflects_plural(word: str) -> None:
    assert pluralize(word) == _with_engine(_usual_inflect().engine(), word)


@pytest.mark.parametrize(("singular", "plural"), sorted(IRREGULAR.items()))
def test_irregular_nouns_keep_todays_plural(singular: str, plural: str) -> None:
    assert pluralize(singular) == plural
    assert table_name_for(f"Sales{singular.capitalize()}") == f"sales_{plural}"


IMPORT_INFLECT = (
    "import sys; from pgkeel.naming import _import_inflect; "
    "m = _import_inflect(); assert m.engine().plural_noun('person') == 'people'; "
    "print(sorted(n for n in ('inflect', 'typeguard') if n in sys.modules))"
)


def test_importing_inflect_leaves_sys_modules_as_it_was() -> None:
    assert _run(IMPORT_INFLECT) == "[]"


def test_importing_inflect_keeps_a_typeguard_imported_before() -> None:
    pytest.importorskip("typeguard", reason="this inflect release does not use typeguard")
    assert _run("import typeguard; " + IMPORT_INFLECT) == "['typeguard']"


def test_inflect_imported_later_still_checks_its_arguments() -> None:
    pytest.importorskip("typeguard", reason="this inflect release does not use typeguard")
    code = (
        "from pgkeel.naming import pluralize; pluralize('person'); "
        "import inflect, typeguard\n"
        "try:\n    inflect.engine().plural_noun(3)\n"
        "except typeguard.TypeCheckError:\n    print('checked')"
    )
    assert _run(code) == "checked"


def test_an_inflect_imported_before_pgkeel_is_used_as_it_is() -> None:
    code = (
        "import inflect; from pgkeel.naming import _import_inflect; "
        "print(_import_inflect() is inflect)"
    )
    assert _run(code) == "True"


def test_defining_a_model_loads_no_driver_dialect_or_typeguard() -> None:
    code = (
        "import sys\n"
        "from sqlalchemy.orm import Mapped\n"
        "from pgkeel import BaseModel, Str255\n"
        "class Person(BaseModel):\n    name: Mapped[Str255]\n"
        "assert Person.__table__.name == 'people'\n"
        "heavy = ('psycopg', 'sqlalchemy.dialects.postgresql', 'typeguard', 'inflect')\n"
        "print([name for name in heavy if name in sys.modules])"
    )
    assert _run(code) == "[]"


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()
