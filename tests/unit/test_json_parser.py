"""``keyless.web.parse_json``, the one parser every JSON request body goes through."""

from __future__ import annotations

import pytest

from keyless.web import MAX_JSON_DEPTH, InvalidJson, parse_json


def _nested(containers: int, opening: bytes = b"[", closing: bytes = b"]") -> bytes:
    return opening * containers + b"1" + closing * containers


@pytest.mark.parametrize(("opening", "closing"), [(b"[", b"]"), (b'{"a":', b"}")])
def test_depth_is_bounded_at_json_nets_max_depth(opening: bytes, closing: bytes) -> None:
    assert parse_json(_nested(MAX_JSON_DEPTH, opening, closing)) is not None
    for too_deep in (MAX_JSON_DEPTH + 1, 254, 5000):
        with pytest.raises(InvalidJson, match="MaxDepth of 64 has been exceeded"):
            parse_json(_nested(too_deep, opening, closing))


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    text = b'{"a":"' + b"[{" * 100 + b'"}'
    assert parse_json(text) == {"a": "[{" * 100}


@pytest.mark.parametrize(
    "raw",
    [b'"\\u0000"', b'{"a":["x","y\\u0000"]}', b'{"k\\u0000":1}', b'{"a":{"b":{"\\u0000":null}}}'],
)
def test_a_nul_anywhere_is_refused(raw: bytes) -> None:
    with pytest.raises(InvalidJson, match="NUL"):
        parse_json(raw)


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    assert parse_json(b'{"a":"\\\\u0000"}') == {"a": "\\u0000"}


@pytest.mark.parametrize("raw", [b"{", b"", b"nul", b'{"a":1,}', b'"\\ud800"', b"1e999", b'{"a":"\x01"}'])
def test_malformed_json_is_refused_with_its_position(raw: bytes) -> None:
    with pytest.raises(InvalidJson, match="line 1, position"):
        parse_json(raw)


def test_size_is_bounded() -> None:
    with pytest.raises(InvalidJson, match="larger than 10 bytes"):
        parse_json(b'"' + b"x" * 20 + b'"', max_bytes=10)


def test_the_error_path_stays_short() -> None:
    raw = b'{"' + b"k" * 10_000 + b'":' + _nested(100) + b"}"
    with pytest.raises(InvalidJson) as caught:
        parse_json(raw)
    assert len(caught.value.detail) < 400
