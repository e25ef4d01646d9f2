"""resize_image: validates a resize request and simulates the work (1 s, as the reference).

Nothing is downloaded: the image URL is only echoed, so no SSRF check is needed here. A missing
dimension means "keep the aspect ratio" and shows as "auto" in the output URL.
"""
from __future__ import annotations

from typing import Any

from worker.context import TaskContext, TaskError

RESIZE_DELAY_S = 1.0
FORMATS = ("jpeg", "png", "webp", "gif")
MAX_DIMENSION = 10_000
MAX_URL_LENGTH = 2048


def _dimension(payload: dict, key: str) -> int | None:
    value = payload.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIMENSION:
        raise TaskError(f"'{key}' must be an integer between 1 and {MAX_DIMENSION}")
    return value


def run(payload: Any, ctx: TaskContext) -> dict:
    if not isinstance(payload, dict):
        raise TaskError("resize_image payload must be an object")
    image_url = payload.get("image_url")
    if not image_url:
        raise TaskError("'image_url' is required")
    if not isinstance(image_url, str) or len(image_url) > MAX_URL_LENGTH:
        raise TaskError(f"'image_url' must be a string of at most {MAX_URL_LENGTH} characters")
    width, height = _dimension(payload, "width"), _dimension(payload, "height")
    if width is None and height is None:
        raise TaskError("At least 'width' or 'height' must be specified")
    fmt = payload.get("format", "jpeg")
    if fmt not in FORMATS:
        raise TaskError(f"Invalid format. Must be one of: {', '.join(FORMATS)}")

    ctx.sleep(RESIZE_DELAY_S)  # simulated download, resize and upload
    size = f"{width or 'auto'}x{height or 'auto'}"
    return {
        "status": "resized",
        "original_url": image_url,
        "new_dimensions": {"width": width, "height": height},
        "format": fmt,
        "output_url": f"https://cdn.example.com/resized/{size}.{fmt}",
    }
