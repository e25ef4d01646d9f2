"""generate_report: validates a report request and simulates building it (2 s, as the reference).

The report id carries a random suffix so two reports started in the same second never collide.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from worker.context import TaskContext, TaskError

REPORT_DELAY_S = 2.0
REPORT_TYPES = ("summary", "detailed", "analytics", "financial")
OUTPUT_FORMATS = ("json", "csv", "pdf", "xlsx")


def run(payload: Any, ctx: TaskContext) -> dict:
    if not isinstance(payload, dict):
        raise TaskError("generate_report payload must be an object")
    report_type = payload.get("report_type", "summary")
    if report_type not in REPORT_TYPES:
        raise TaskError(f"Invalid report_type. Must be one of: {', '.join(REPORT_TYPES)}")
    output_format = payload.get("output_format", "json")
    if output_format not in OUTPUT_FORMATS:
        raise TaskError(f"Invalid output_format. Must be one of: {', '.join(OUTPUT_FORMATS)}")
    date_range = payload.get("date_range", {})
    filters = payload.get("filters", {})
    if not isinstance(date_range, dict) or not isinstance(filters, dict):
        raise TaskError("'date_range' and 'filters' must be objects")

    ctx.sleep(REPORT_DELAY_S)  # simulated queries and rendering
    report_id = f"RPT-{int(time.time())}-{uuid.uuid4().hex[:8]}"
    return {
        "status": "generated",
        "report_id": report_id,
        "report_type": report_type,
        "output_format": output_format,
        "date_range": date_range,
        "filters_applied": filters,
        "download_url": f"https://reports.example.com/{report_id}.{output_format}",
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
