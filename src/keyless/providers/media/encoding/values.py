"""Scalar checks and parsers for preset validation: each ``_x(value, path, ...)`` returns the
normalized value or raises ``children.bad_request`` (400 BadRequest) with the JSON path as target.
Ranges are Encoding.json's (2022-07-01) where it gives them, else Keyless's bounds."""

from __future__ import annotations

import math
import re
from typing import Any

from keyless.providers.media.children import bad_request

MAX_ITEMS = 16  # codecs, formats, layers per codec, labels per output file
MAX_OUTPUT_FILES = 64
MAX_KEYS = 64  # properties in one JSON object
MAX_TEXT = 256  # any string (filenamePattern, label, level, ...)
MAX_PIXELS = 8192  # H.264/H.265 level 6.2 tops out at 8192x4320
MIN_BITRATE, MAX_BITRATE = 1_000, 200_000_000  # bits per second

_DURATION = re.compile(
    r"P(?:(\d{1,6})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,6})M)?(?:(\d{1,8}(?:\.\d{1,7})?)S)?)?", re.ASCII
)
_PIXELS = re.compile(r"\d{1,5}", re.ASCII)
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d{1,4})?)%", re.ASCII)
_FRAMES = re.compile(r"\d{1,9}", re.ASCII)
_FRAME_RATE = re.compile(r"(\d{1,6})/(\d{1,6})|(\d{1,3}(?:\.\d{1,4})?)", re.ASCII)
_LEVEL = re.compile(r"[Aa]uto|\d(?:\.\d)?", re.ASCII)
# Labels end up in file names: no path separators or control characters.
_LABEL = re.compile(r"(?!\.{1,2}$)[^/\\\x00-\x1f\x7f:*?\"<>|]{1,64}")


def _obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request(f"The value of '{path}' must be a JSON object.", target=path)
    if len(value) > MAX_KEYS:
        raise bad_request(f"'{path}' has more than {MAX_KEYS} properties.", target=path)
    return value


def _list(value: Any, path: str, limit: int = MAX_ITEMS, min_len: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise bad_request(f"The value of '{path}' must be a JSON array.", target=path)
    if not min_len <= len(value) <= limit:
        raise bad_request(f"'{path}' must have between {min_len} and {limit} items.", target=path)
    return value


def _str(value: Any, path: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise bad_request(f"The value of '{path}' must be a string of 1 to {limit} characters.", target=path)
    return value


def _int(value: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad_request(f"The value of '{path}' must be an integer from {lo} to {hi}.", target=path)
    return value


def _num(value: Any, path: str, lo: float, hi: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi:
        raise bad_request(f"The value of '{path}' must be a number from {lo} to {hi}.", target=path)
    return value  # type: ignore[no-any-return]


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise bad_request(f"The value of '{path}' must be true or false.", target=path)
    return value


def _enum(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    """Enums are modelAsString in the spec; matched case-insensitively, echoed in the spec's casing."""
    if isinstance(value, str):
        for name in allowed:
            if name.lower() == value.lower():
                return name
    raise bad_request(f"The value of '{path}' must be one of: {', '.join(allowed)}.", target=path)


def parse_duration(text: str) -> float | None:
    """ISO 8601 duration (``PT2S``, ``PT1M30.5S``, ``P1DT2H``) in seconds; None when malformed."""
    m = _DURATION.fullmatch(text) if len(text) <= 40 else None
    if m is None or text in ("P", "PT") or text.endswith("T"):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: float) -> str:
    """Seconds as .NET's XmlConvert writes a TimeSpan (``PT2S``, ``PT0.5S``, ``PT1M30S``)."""
    whole_minutes, secs = divmod(round(seconds, 7), 60)
    hours, minutes = divmod(int(whole_minutes), 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or text == "PT":
        text += f"{secs:.7f}".rstrip("0").rstrip(".") + "S"
    return text


def _duration(value: Any, path: str, lo: float, hi: float) -> tuple[str, float]:
    seconds = parse_duration(value) if isinstance(value, str) else None
    if seconds is None or not lo <= seconds <= hi:
        raise bad_request(
            f"The value of '{path}' must be an ISO 8601 duration from {lo} to {hi} seconds (e.g. PT2S).",
            target=path,
        )
    return format_duration(seconds), seconds


def _size(value: Any, path: str) -> str:
    """A layer/crop dimension: pixels ("1280", also a JSON integer) or a percentage ("50%")."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(text, str):
        if _PIXELS.fullmatch(text) and 1 <= int(text) <= MAX_PIXELS:
            return str(int(text))
        m = _PERCENT.fullmatch(text)
        if m and 0 < float(m.group(1)) <= 100:
            return text
    raise bad_request(
        f"The value of '{path}' must be a size in pixels (1 to {MAX_PIXELS}) or a percentage up to 100%.",
        target=path,
    )


def _offset(value: Any, path: str) -> str:
    """Crop offsets may be 0; otherwise as ``_size``."""
    return "0" if value in ("0", 0) else _size(value, path)


def parse_size(text: str | None) -> dict[str, float] | None:
    """``"1280"`` -> ``{"px": 1280}``, ``"50%"`` -> ``{"pct": 50.0}``, None -> None."""
    if text is None:
        return None
    return {"pct": float(text[:-1])} if text.endswith("%") else {"px": int(text)}


def _position(value: Any, path: str, best: bool) -> str:
    """Thumbnail start/step/range: ISO 8601 duration, a frame count, ``N%``, or (start) ``{Best}``."""
    if isinstance(value, str):
        if best and value.lower() == "{best}":
            return "{Best}"
        if _FRAMES.fullmatch(value) or (parse_duration(value) is not None and value.startswith("P")):
            return value
        m = _PERCENT.fullmatch(value)
        if m and float(m.group(1)) <= 100:
            return value
    raise bad_request(
        f"The value of '{path}' must be an ISO 8601 duration, a frame count or a percentage"
        + (", or {Best}." if best else "."),
        target=path,
    )


def parse_position(text: str) -> dict[str, Any]:
    """A normalized position as the plan carries it: best | time | frame | pct."""
    if text == "{Best}":
        return {"kind": "best"}
    if text.endswith("%"):
        return {"kind": "pct", "value": float(text[:-1])}
    if _FRAMES.fullmatch(text):
        return {"kind": "frame", "n": int(text)}
    return {"kind": "time", "seconds": parse_duration(text)}


def _frame_rate(value: Any, path: str) -> str:
    m = _FRAME_RATE.fullmatch(value) if isinstance(value, str) else None
    if m is not None:
        rate = int(m.group(1)) / int(m.group(2)) if m.group(2) and int(m.group(2)) else float(m.group(3) or 0)
        if 1 <= rate <= 120:
            return str(value)
    raise bad_request(
        f"The value of '{path}' must be a frame rate from 1 to 120 (e.g. 30 or 30000/1001).", path
    )


def _label(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise bad_request(
            f"The value of '{path}' must be a label of 1 to 64 characters without path characters.", path
        )
    return value
