"""Events as JSON: what a parsed event holds, and what text is refused."""

from __future__ import annotations

import dataclasses
import json

import pytest

from datasources.events.model import Event, NewEvent


def an_event() -> Event:
    return Event.stamp(NewEvent("post.liked", "vignette", 12, "post", 34, {"author_id": 5}))


def test_a_parsed_event_equals_the_event_and_keeps_its_json() -> None:
    event = an_event()
    text = event.to_json()

    parsed = Event.from_json(text)

    assert parsed == event
    assert parsed.to_json() is text  # republished as read, not serialized again
    # Filled without __init__: every field is set, nothing else.
    assert set(vars(parsed)) == {f.name for f in dataclasses.fields(Event)}
    assert Event.from_json(text.encode()) == event
    assert Event.from_json(text.encode()).to_json() == text


def test_parsing_accepts_what_json_accepts_and_refuses_the_rest() -> None:
    event = an_event()
    text = event.to_json()
    assert Event.from_json(f" {text}\n") == event  # surrounding whitespace, as json.loads
    without_actor = json.loads(text) | {"actor": None}
    assert Event.from_json(json.dumps(without_actor)).actor_id is None

    for bad in (text[:-1], text + "x", text + text, "", "not json"):
        with pytest.raises(ValueError):
            Event.from_json(bad)
    with pytest.raises(ValueError, match="unsupported event version"):
        Event.from_json(json.dumps(json.loads(text) | {"version": 2}))
    with pytest.raises(KeyError):
        Event.from_json(json.dumps({"version": 1, "id": "x"}))
