"""The API's one description: field specs that both validate requests and emit JSON Schema,
per-view operation records, and the OpenAPI 3 document and docs page built from them."""
