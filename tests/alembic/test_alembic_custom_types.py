"""Custom column types are written into migrations with their constructor arguments."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic_project import Project

from alembic_extensions.rendering import CustomTypeRenderError

MakeProject = Callable[[str], Project]
MODULE = "pgkeel_example_custom_types_models_v2"


def test_custom_types_render_with_their_arguments(make_project: MakeProject) -> None:
    project = make_project("custom_types")
    project.use("models_v2")
    source = project.revision("create swatches").read_text()
    assert f"import {MODULE}\n" in source
    assert "import json\n" in source
    assert (
        f"sa.Column('color', {MODULE}.StringEnum(enum_class={MODULE}.Color, length=20, "
        f"default={MODULE}.Color.RED), nullable=False)"
    ) in source
    assert f"sa.Column('shade', {MODULE}.StringEnum(enum_class={MODULE}.Color)" in source
    assert (
        f"{MODULE}.Serialized(serializer=json, options={{'indent': 2, 'keys': ('a',)}})" in source
    )
    project.upgrade()
    project.check()
    project.execute("INSERT INTO swatches (color) VALUES ('red')")
    assert project.query(
        "SELECT character_maximum_length FROM information_schema.columns "
        "WHERE table_name = 'swatches' AND column_name = 'color'"
    ) == [20]
    project.downgrade()
    assert project.leftovers() == {}


def test_a_type_that_cannot_be_rendered_stops_autogenerate_with_the_fix(
    make_project: MakeProject,
) -> None:
    project = make_project("custom_types")
    project.use("models_unkept")
    with pytest.raises(CustomTypeRenderError) as raised:
        project.revision("create labels")
    message = str(raised.value)
    assert "does not keep its required argument 'prefix'" in message or (
        "its argument hasher = <function" in message
    )
    assert "Fix: give" in message
    assert "a __repr__ that returns its constructor call" in message
    assert "render_item=" in message
    assert project.versions() == []
