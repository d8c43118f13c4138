"""The JSON Schema of a lead document (`json_schema()`, shipped as schema/lead.schema.json and
printed by `reconciler schema`), generated from the model classes. Every rule it can express
uses the same pattern as the validator, so an editor never flags a file `reconciler validate`
accepts; what it cannot express is listed in SCHEMA_CANNOT_CHECK and in its description.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from reconciler.model.lead import Lead

# Rules of `check` that JSON Schema cannot express: only `reconciler validate` reports them.
SCHEMA_CANNOT_CHECK = (
    "min <= max pairs (inquiry price, bedrooms, bathrooms; property price)",
    "a name in tagsRemove that is also in tags or tagsAdd",
    "an attributeName used twice in customAttributeList",
    "a whole number written as a decimal beyond 2**53 (it may not be the number written)",
)


class _NoNullSchema(GenerateJsonSchema):
    """Optional fields may be left out, never null: that is what the vendor schema allows."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft-07) of one lead document, for editors and check-jsonschema."""
    schema = Lead.model_json_schema(schema_generator=_NoNullSchema)
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["$id"] = "https://github.com/reconciler/reconciler/schema/lead.schema.json"
    schema["title"] = "Lofty lead (reconciler)"
    schema["description"] = (
        "One lead file document. `reconciler validate` checks everything here and also: "
        + "; ".join(SCHEMA_CANNOT_CHECK)
        + "."
    )
    return schema
