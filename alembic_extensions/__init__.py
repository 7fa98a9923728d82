"""Alembic plugin that makes autogenerate write migrations following pgkeel's standards."""
