"""Every type, field, argument and enum value of the schema has a description, as
introspection (what GraphiQL and code generators read) shows it."""

from __future__ import annotations

from graphql import get_introspection_query, graphql_sync

from app.schema import build_schema

BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def missing_descriptions() -> list[str]:
    schema = build_schema()
    result = graphql_sync(schema._schema, get_introspection_query(descriptions=True))
    assert result.errors is None, result.errors
    missing = []
    for t in result.data["__schema"]["types"]:
        name = t["name"]
        if name.startswith("__") or name in BUILT_IN:
            continue
        if not t["description"]:
            missing.append(name)
        for field in (t["fields"] or []) + (t["inputFields"] or []):
            if not field["description"]:
                missing.append(f"{name}.{field['name']}")
            for arg in field.get("args") or []:
                if not arg["description"]:
                    missing.append(f"{name}.{field['name']}({arg['name']})")
        for value in t["enumValues"] or []:
            if not value["description"]:
                missing.append(f"{name}.{value['name']}")
    return missing


def test_every_schema_element_is_described():
    missing = missing_descriptions()
    assert not missing, (
        f"{len(missing)} without a description (add one where it is defined, or in "
        f"app/schema/descriptions.py): {', '.join(missing)}"
    )
