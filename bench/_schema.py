"""The 50-table schema of the provisioning and test-fixture benchmarks (SQLAlchemy only).

It imports nothing of pgkeel's, so a pytest run of another plugin can load it at no extra cost.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table

TABLES = 50


def fifty_table_schema() -> MetaData:
    """50 tables, each with a foreign key to the previous one, an index and a unique column."""
    metadata = MetaData()
    for number in range(TABLES):
        columns = [
            Column("id", Integer, primary_key=True),
            Column("name", String(100), index=True),
            Column("code", String(20), unique=True),
        ]
        if number:
            columns.append(Column("parent_id", ForeignKey(f"t{number - 1}.id"), index=True))
        Table(f"t{number}", metadata, *columns)
    return metadata


METADATA = fifty_table_schema()
"""The schema as one value: what ``pgkeel_schema = "bench._schema:METADATA"`` names."""
