"""``Value`` reads a class's fields from its own annotations, strings or evaluated ones.

pgkeel's modules postpone evaluation (the annotations are strings in the class namespace); a
module without ``from __future__ import annotations`` gives evaluated ones, and a class may add
no annotation at all. Each case must give the fields a frozen dataclass would.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pgkeel._values import Value, field

EVALUATED = """\
from typing import ClassVar

from pgkeel._values import Value, field


class Evaluated(Value):
    name: str
    size: int = 0
    tags: list = field(default_factory=list)
    kind: ClassVar[str] = "evaluated"
"""


def _namespace_of(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<evaluated annotations>", "exec"), namespace)  # noqa: S102  # our source
    return namespace


def test_evaluated_annotations_give_the_same_fields() -> None:
    evaluated = _namespace_of(EVALUATED)["Evaluated"]
    assert evaluated._value_fields == ("name", "size", "tags")
    value = evaluated("a")
    assert repr(value) == "Evaluated(name='a', size=0, tags=[])"
    assert value.tags is not evaluated("b").tags
    assert evaluated.kind == "evaluated"
    assert "tags" not in vars(evaluated)


class Base(Value):
    name: str
    size: int = 0


class NoAnnotations(Base):
    """Adds behaviour only: the base's fields, unchanged."""

    def double(self) -> int:
        return self.size * 2


class NewDefault(Base):
    """Gives an inherited field a new default: the field keeps its place."""

    size: int = 5
    tags: list[str] = field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class DataBase:
    name: str
    size: int = 0


@dataclasses.dataclass(frozen=True)
class DataNewDefault(DataBase):
    size: int = 5
    tags: list[str] = dataclasses.field(default_factory=list)


def test_a_subclass_without_annotations_keeps_the_bases_fields() -> None:
    assert NoAnnotations._value_fields == ("name", "size")
    assert NoAnnotations("a", 2).double() == 4
    assert repr(NoAnnotations("a")) == "NoAnnotations(name='a', size=0)"


def test_a_new_default_for_an_inherited_field_keeps_its_place() -> None:
    ours, theirs = NewDefault("a"), DataNewDefault("a")
    assert NewDefault._value_fields == tuple(f.name for f in dataclasses.fields(DataNewDefault))
    assert repr(ours) == repr(theirs).replace("DataNewDefault", "NewDefault")
    assert Base("a").size == 0
