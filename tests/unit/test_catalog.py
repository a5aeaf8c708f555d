"""The catalog is the one place that names tables: every other module names them through its handles."""

from __future__ import annotations

import re
from pathlib import Path

from shopml import catalog

ROOT = Path(__file__).resolve().parents[2]
# A quoted table name, or one built from a layer prefix ("bronze.{dataset}").
TABLE_LITERAL = re.compile(r"""["'](bronze|staging|silver|gold|ops)\.([a-z_]+["']|\{)""")


def test_no_module_names_a_table_by_string_outside_the_catalog():
    sources = [
        path
        for folder in ("dags", "jobs", "models", "shopml", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if path != ROOT / "shopml" / "catalog.py"
    ]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if TABLE_LITERAL.search(line)
    ]
    assert not found, "use the shopml.catalog handles (SILVER_EVENTS, BRONZE[dataset], …):\n" + "\n".join(found)


def test_every_table_has_one_handle_named_after_it():
    handles = {name: value for name, value in vars(catalog).items() if name.isupper() and isinstance(value, str)}
    assert sorted(handles.values()) == sorted(catalog.TABLES)
    assert all(name == value.replace(".", "_").upper() for name, value in handles.items())
    assert set(catalog.BRONZE.values()) | set(catalog.STAGING.values()) <= set(catalog.TABLES)


def test_every_column_is_typed_and_documented_and_docs_tables_md_is_current():
    for table in catalog.TABLES.values():
        assert table.columns, table.name
        assert all(column.doc for column in table.columns), table.name
        table.arrow_schema()  # every type parses
    assert (ROOT / "docs" / "tables.md").read_text() == catalog.data_dictionary(), (
        "docs/tables.md is stale: python -m shopml.catalog > docs/tables.md"
    )
