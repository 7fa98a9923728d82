"""``pgkeel._values.Value``: behaves as a frozen dataclass where pgkeel's value objects rely on it.

Each test compares with what ``@dataclass(frozen=True)`` does for the same class, so a
difference in construction, equality, hashing, ``repr``, ``replace`` or copying shows here.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import ClassVar

import pytest

from pgkeel._values import Value, field, replace
from pgkeel.dbobjects import Policy, Trigger, TriggerFunction
from pgkeel.settings import Settings


class Point(Value):
    """A value with required fields, a default and a mutable default."""

    x: int
    y: int
    label: str = ""
    tags: list[str] = field(default_factory=list)
    unit: ClassVar[str] = "px"


@dataclasses.dataclass(frozen=True)
class DataPoint:
    """The same fields as a frozen dataclass: what ``Point`` must match."""

    x: int
    y: int
    label: str = ""
    tags: list[str] = dataclasses.field(default_factory=list)


class Other(Value):
    """Another value type with the same field names and values."""

    x: int
    y: int
    label: str = ""
    tags: list[str] = field(default_factory=list)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((1, 2), {}),
        ((1,), {"y": 2}),
        ((), {"y": 2, "x": 1, "label": "a"}),
        ((1, 2, "a", ["t"]), {}),
    ],
)
def test_construction_matches_a_dataclass(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    ours, theirs = Point(*args, **kwargs), DataPoint(*args, **kwargs)  # type: ignore[arg-type]
    assert [getattr(ours, name) for name in ("x", "y", "label", "tags")] == [
        getattr(theirs, name) for name in ("x", "y", "label", "tags")
    ]
    assert repr(ours) == repr(theirs).replace("DataPoint", "Point")


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1,), {}, "missing required argument: 'y'"),
        ((1, 2, "a", [], 5), {}, "takes 4 positional arguments but 5 were given"),
        ((1, 2), {"x": 3}, "multiple values for argument 'x'"),
        ((1, 2), {"z": 3}, "unexpected keyword argument 'z'"),
        ((1, 2), {"unit": "cm"}, "unexpected keyword argument 'unit'"),
    ],
)
def test_bad_arguments_are_a_type_error(
    args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # a dataclass refuses the same call
        DataPoint(*args, **kwargs)  # type: ignore[arg-type]


def test_equal_and_hashed_by_type_and_fields() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert Point(1, 2, "a") != Point(1, 2, "b")
    assert Point(1, 2) != Other(1, 2)
    assert Point(1, 2) != (1, 2, "", [])
    label = Point(1, 2, "a", ())  # type: ignore[arg-type]  # a hashable tags
    assert hash(label) == hash(Point(1, 2, "a", ()))  # type: ignore[arg-type]
    assert len({label, Point(1, 2, "a", ())}) == 1  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unhashable"):
        hash(Point(1, 2))  # a list field, as with a dataclass
    with pytest.raises(TypeError, match="unhashable"):
        hash(DataPoint(1, 2))


def test_frozen() -> None:
    point = Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del point.x  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.extra = 1  # type: ignore[attr-defined]
    assert point.x == 1


def test_mutable_default_made_for_each_instance() -> None:
    first, second = Point(1, 2), Point(1, 2)
    first.tags.append("a")
    assert second.tags == []
    assert "tags" not in Point.__dict__  # no shared list left on the class


def test_class_variable_is_not_a_field() -> None:
    assert Point.unit == "px"
    assert "unit" not in repr(Point(1, 2))


def test_replace_copies_with_changes() -> None:
    point = Point(1, 2, "a")
    moved = replace(point, y=5)
    assert moved == Point(1, 5, "a")
    assert point == Point(1, 2, "a")
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        replace(point, z=1)


def test_copy_and_pickle_keep_the_value() -> None:
    policy = Policy("items", "tenant_isolation", "tenant_id = 1", "tenant_id = 1", schema="app")
    assert copy.copy(policy) == policy
    assert copy.deepcopy(policy) == policy
    assert pickle.loads(pickle.dumps(policy)) == policy  # noqa: S301  # our own bytes


def test_subclass_adds_fields_after_the_base() -> None:
    class Labelled(Point):
        colour: str = "red"

    value = Labelled(1, 2, colour="blue")
    assert repr(value).endswith(".<locals>.Labelled(x=1, y=2, label='', tags=[], colour='blue')")
    assert value != Point(1, 2)


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="'y' without a default follows one with"):

        class Broken(Value):
            x: int = 0
            y: int


def test_pgkeel_values_nest_and_compare() -> None:
    function = TriggerFunction("touch", "NEW.updated_at := now(); RETURN NEW;")
    trigger = Trigger("items", "items_touch", function, events=("UPDATE",))
    assert trigger == Trigger("items", "items_touch", replace(function))
    assert trigger != replace(trigger, function=replace(function, body="RETURN NEW;"))
    assert Settings() == Settings()
    assert Settings().timestamps is not None
