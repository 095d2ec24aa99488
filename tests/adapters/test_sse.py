"""SseParser: every quirk real servers produce, and split-invariance as a property."""

from __future__ import annotations

import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from adapters.inference.sse import SseEvent, SseParser


def parse(*chunks: bytes) -> list[SseEvent]:
    parser = SseParser()
    events = [ev for chunk in chunks for ev in parser.feed(chunk)]
    return events + parser.close()


def test_data_with_and_without_space_after_colon() -> None:
    assert parse(b"data: a\n\ndata:b\n\n") == [SseEvent(None, "a"), SseEvent(None, "b")]


def test_only_one_leading_space_is_stripped() -> None:
    assert parse(b"data:  two spaces \n\n") == [SseEvent(None, " two spaces ")]


def test_crlf_line_endings() -> None:
    assert parse(b"data: a\r\n\r\ndata: b\r\n\r\n") == [SseEvent(None, "a"), SseEvent(None, "b")]


def test_crlf_split_between_chunks() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\n") == [SseEvent(None, "a")]


def test_event_completed_only_by_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b'data: {"x"') == []
    assert parser.feed(b": 1}\n") == []
    assert parser.feed(b"\n") == [SseEvent(None, '{"x": 1}')]


def test_several_events_in_one_chunk() -> None:
    parser = SseParser()
    assert parser.feed(b"data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4") == [
        SseEvent(None, "1"),
        SseEvent(None, "2"),
        SseEvent(None, "3"),
    ]
    assert parser.close() == [SseEvent(None, "4")]


def test_multiple_data_lines_are_joined_with_newline() -> None:
    assert parse(b"data: a\ndata:\ndata: c\n\n") == [SseEvent(None, "a\n\nc")]


def test_comments_and_keepalives_are_ignored() -> None:
    stream = b": keep-alive\n\n:\n\ndata: x\n: inside an event\n\n: ping\r\n\r\n"
    assert parse(stream) == [SseEvent(None, "x")]


def test_event_name_kept_id_and_retry_ignored() -> None:
    stream = b"event: error\nid: 7\nretry: 1000\ndata: boom\n\ndata: next\n\n"
    assert parse(stream) == [SseEvent("error", "boom"), SseEvent(None, "next")]


def test_event_without_data_is_not_dispatched_and_its_name_does_not_leak() -> None:
    assert parse(b"event: ping\n\ndata: x\n\n") == [SseEvent(None, "x")]


def test_field_without_colon() -> None:
    # `data` alone is a data line with an empty value; an unknown bare field is ignored.
    assert parse(b"data\ndata: b\nbogus\n\n") == [SseEvent(None, "\nb")]


def test_close_flushes_final_event_without_blank_line() -> None:
    parser = SseParser()
    assert parser.feed(b"data: 1\n\ndata: [DONE]\n") == [SseEvent(None, "1")]
    assert parser.close() == [SseEvent(None, "[DONE]")]


def test_close_flushes_last_line_without_newline() -> None:
    assert parse(b"data: 1\n\ndata: [DONE]") == [SseEvent(None, "1"), SseEvent(None, "[DONE]")]
    assert parse(b"data: [DONE]\r") == [SseEvent(None, "[DONE]")]


def test_close_on_empty_or_finished_stream_returns_nothing() -> None:
    assert parse() == []
    assert parse(b"data: x\n\n", b": bye\n") == [SseEvent(None, "x")]


def test_multibyte_utf8_split_between_chunks() -> None:
    encoded = "data: héllo ✓\n\n".encode()
    cut = encoded.index(b"\xe2") + 1  # inside the three bytes of the check mark
    assert parse(encoded[:cut], encoded[cut:]) == [SseEvent(None, "héllo ✓")]


def test_invalid_utf8_does_not_raise() -> None:
    assert parse(b"data: \xff\n\n") == [SseEvent(None, "\ufffd")]


def test_feeding_one_byte_at_a_time() -> None:
    stream = b'data: {"a": 1}\r\n\r\n: c\n\nevent: e\ndata: 2\n\ndata: 3'
    expected = parse(stream)
    assert expected == [SseEvent(None, '{"a": 1}'), SseEvent("e", "2"), SseEvent(None, "3")]
    assert parse(*(stream[i : i + 1] for i in range(len(stream)))) == expected


def _reference(stream: bytes) -> list[SseEvent]:
    """A plain reading of the WHATWG algorithm for LF / CRLF streams, for comparison."""
    events: list[SseEvent] = []
    data: list[str] = []
    name: str | None = None
    for line in [*re.split(r"\r?\n", stream.decode()), ""]:
        if not line:
            if data:
                events.append(SseEvent(name, "\n".join(data)))
            data, name = [], None
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
    return events


_TEXT = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=12)
_LINES = st.one_of(
    st.builds(lambda v: f"data: {v}", _TEXT),
    st.builds(lambda v: f"data:{v}", _TEXT),
    st.builds(lambda v: f": {v}", _TEXT),
    st.builds(lambda v: f"event: {v}", _TEXT),
    st.sampled_from(["", "", "", "id: 1", "retry: 10", "data", "data: [DONE]"]),
)
_LINE_ENDS = st.sampled_from(["\n", "\r\n"])
_STREAMS = st.lists(st.tuples(_LINES, _LINE_ENDS), max_size=25).map(
    lambda lines: "".join(line + end for line, end in lines).encode()
)


def _split(stream: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@given(stream=_STREAMS, data=st.data())
def test_any_split_yields_the_events_of_the_whole_stream(
    stream: bytes, data: st.DataObject
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    whole = parse(stream)
    assert parse(*_split(stream, cuts)) == whole
    assert whole == _reference(stream)


@given(stream=st.binary(max_size=300), data=st.data())
def test_arbitrary_bytes_are_split_invariant(stream: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    assert parse(*_split(stream, cuts)) == parse(stream)
