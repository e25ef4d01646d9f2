"""Schemathesis against the real gateway (python -m gateway) with a valid token: every operation of
/api/openapi.json, FUZZ_MAX_EXAMPLES generated cases each (valid and invalid inputs), and no
5xx, no status code, content type or body that the document does not allow.

It runs schemathesis's own CLI (its phases: the document's examples, boundary coverage,
random fuzzing) and reads the figures from its JSON report; the test prints them and fails
on any failure. Path parameters are the seeded objects' ids most of the time (random UUIDs,
so 404s, otherwise). `make fuzz` runs it with FUZZ_MAX_EXAMPLES=200.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
PHASES = "examples,coverage,fuzzing"
DEFAULT_MAX_EXAMPLES = 10
SEED = 20261130  # reproducible in `make test`; `make fuzz` explores more with more examples
SEEDED_ID_PROBABILITY = 0.9
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def test_the_gateway_keeps_its_openapi_contract(gateway, seeded, tmp_path, summary_line):
    max_examples = int(os.environ.get("FUZZ_MAX_EXAMPLES", DEFAULT_MAX_EXAMPLES))
    report = tmp_path / "report.json"
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(seeded.ids))
    # From a file: given the URL of the document, schemathesis would leave that operation out.
    document = tmp_path / "openapi.json"
    document.write_bytes(seeded.client.http.get(f"{gateway.base_url}/api/openapi.json", timeout=10).content)
    argv = [
        str(SCHEMATHESIS), "--config-file", str(config), "run", str(document), "--url", gateway.base_url,
        "--checks", CHECKS, "--phases", PHASES, "--max-examples", str(max_examples), "--seed", str(SEED),
        "--header", f"Authorization: {seeded.client.http.headers['Authorization']}",
        "--workers", "2", "--request-timeout", "30", "--continue-on-failure",
        "--report", "json", "--report-json-path", str(report),
    ]
    started = time.monotonic()
    run = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env={**os.environ, "NO_COLOR": "1"})
    elapsed = time.monotonic() - started
    assert report.exists(), f"schemathesis did not run:\n{run.stdout[-5000:]}{run.stderr[-5000:]}"
    figures = _figures(json.loads(report.read_text()))
    summary_line(f"schemathesis: {figures['operations']} operations, {figures['examples']} examples, "
                 f"{figures['failures']} failures, {elapsed:.0f} s (FUZZ_MAX_EXAMPLES={max_examples})")
    assert run.returncode == 0 and figures["failures"] == 0, run.stdout[-20000:] + run.stderr[-5000:]
    assert figures["operations"] == len(_operations(json.loads(document.read_text()))), figures


def _config(ids: dict[str, list[str]]) -> str:
    """A schemathesis config: each path parameter drawn from the seeded ids (a dictionary)."""
    lines = []
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    lines += [f'"path.{name}" = {{ dictionary = "{name}", probability = {SEEDED_ID_PROBABILITY} }}' for name in ids]
    return "\n".join(lines) + "\n"


def _operations(document: dict) -> list[str]:
    return [f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item]


def _figures(report: dict) -> dict[str, int]:
    """Operations tested, test cases generated, and failing or erroring test cases."""
    cases = report["test_cases"]
    return {
        "operations": report["operations"]["tested"],
        "examples": cases["generated"],
        "failures": cases["with_failures"] + cases["errored"] + len(report["errors"]),
    }
