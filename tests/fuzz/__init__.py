"""Schemathesis fuzzing of the running gateway against its own OpenAPI document."""
