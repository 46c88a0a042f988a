"""Sticker inputs: their SDL as the contract writes it, the stored form of each
sticker type, every validation rule (resolvers/stories/stickers.py) with the
index of the offending sticker, and the parsing of sticker responses.

Everything but mentions needs no database: those tests pass a context that fails
when touched, which also shows that no read happens. Mentions run on the app
(both relational backends) with real users and blocks.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import strawberry
from graphql import parse, print_ast

from datasources.registry import Loaders
from resolvers.context import Context, Viewer
from resolvers.errors import BadUserInput
from resolvers.ids import encode_id, split_id
from resolvers.stories.stickers import ParsedResponse, parse_response, stored_stickers
from schema.posts.types import LocationInput
from schema.stories import inputs
from schema.stories.inputs import (
    AddYoursStickerInput,
    CountdownStickerInput,
    HashtagStickerInput,
    LinkStickerInput,
    LocationStickerInput,
    MentionStickerInput,
    PlacedStickerInput,
    PollStickerInput,
    QuestionStickerInput,
    QuizStickerInput,
    SliderStickerInput,
    StickerInput,
    StickerPlacementInput,
    StickerResponseInput,
)
from tests.conftest import Account, GraphQLClient, create_users

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HERE = StickerPlacementInput(x=0.5, y=0.5)
DEFAULT_PLACE = {"x": 0.5, "y": 0.5, "width": 0.3, "height": 0.1, "rotation": 0.0}


class Untouchable:
    """A context for checks that must not read anything."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the validation read context.{name}")


def placed(placement: StickerPlacementInput = HERE, **member: Any) -> PlacedStickerInput:
    return PlacedStickerInput(sticker=StickerInput(**member), placement=placement)


async def store(*stickers: PlacedStickerInput, context: Any = None) -> tuple[dict[str, Any], ...]:
    checked: Any = context if context is not None else Untouchable()
    return await stored_stickers(checked, list(stickers), NOW)


async def one(**member: Any) -> dict[str, Any]:
    (stored,) = await store(placed(**member))
    return stored


async def refused(*stickers: PlacedStickerInput, context: Any = None) -> BadUserInput:
    with pytest.raises(BadUserInput) as caught:
        await store(*stickers, context=context)
    assert caught.value.extensions is not None
    assert caught.value.extensions["code"] == "BAD_USER_INPUT"
    return caught.value


async def refused_alone(message: str, **member: Any) -> None:
    """A single sticker is refused, its error naming index 0 and `message`."""
    error = await refused(placed(**member))
    assert error.message.startswith("stickers[0]: "), error.message
    assert message in error.message, error.message
    assert error.extensions is not None and error.extensions["field"] == "stickers[0]"


# ── the inputs are the contract's ────────────────────────────────────────

CONTRACT_INPUTS = """
enum StoryAudience { EVERYONE CLOSE_FRIENDS }
input StickerPlacementInput {
  x: Float! y: Float! width: Float = 0.3 height: Float = 0.1 rotation: Float = 0
}
input PollStickerInput { question: String! options: [String!]! }
input QuizStickerInput { question: String! options: [String!]! correctOption: Int! }
input QuestionStickerInput { prompt: String! }
input CountdownStickerInput { title: String! endsAt: DateTime! }
input SliderStickerInput { question: String! emoji: String! }
input MentionStickerInput { userId: ID! }
input LinkStickerInput { url: String! label: String }
input LocationStickerInput { location: LocationInput! }
input HashtagStickerInput { hashtag: String! }
input AddYoursStickerInput { prompt: String! originStoryId: ID }
input StickerInput @oneOf {
  poll: PollStickerInput
  quiz: QuizStickerInput
  question: QuestionStickerInput
  countdown: CountdownStickerInput
  slider: SliderStickerInput
  mention: MentionStickerInput
  link: LinkStickerInput
  location: LocationStickerInput
  hashtag: HashtagStickerInput
  addYours: AddYoursStickerInput
}
input PlacedStickerInput { sticker: StickerInput! placement: StickerPlacementInput! }
input CreateStoryInput {
  mediaId: ID!
  caption: String
  audience: StoryAudience = EVERYONE
  stickers: [PlacedStickerInput!]! = []
}
input StickerResponseInput @oneOf {
  pollOption: Int
  quizAnswer: Int
  questionText: String
  sliderValue: Float
  countdownSubscribe: Boolean
  linkTap: Boolean
}
input RespondToStickerInput { storyId: ID! stickerId: ID! response: StickerResponseInput! }
input CreateHighlightInput { title: String! storyIds: [ID!]! coverMediaId: ID }
enum StoryNavigation { FORWARD BACK EXIT }
"""


@strawberry.type
class Probe:
    """A schema that takes every stories input, to print them and run @oneOf."""

    @strawberry.field
    def create(self, input: inputs.CreateStoryInput) -> int:
        return len(input.stickers)

    @strawberry.field
    def respond(self, input: inputs.RespondToStickerInput) -> str:
        return input.response.__class__.__name__

    @strawberry.field
    def highlight(self, input: inputs.CreateHighlightInput, move: inputs.StoryNavigation) -> str:
        return move.value


PROBE = strawberry.Schema(query=Probe)


def definitions(sdl: str) -> dict[str, str]:
    named = (d for d in parse(sdl).definitions if hasattr(d, "name") and d.name is not None)
    return {d.name.value: print_ast(d) for d in named}  # type: ignore[attr-defined]


def test_the_input_types_print_as_the_contract_writes_them() -> None:
    printed = definitions(str(PROBE))
    for name, contract in definitions(CONTRACT_INPUTS).items():
        assert printed[name] == contract, name


def test_a_one_of_input_with_no_member_or_two_is_refused_by_the_schema() -> None:
    create = "query($s: StickerInput!) { create(input: {mediaId: 1, stickers: [{sticker: $s, placement: {x: 0, y: 0}}]}) }"  # noqa: E501
    respond = 'query($r: StickerResponseInput!) { respond(input: {storyId: 1, stickerId: "2", response: $r}) }'  # noqa: E501
    poll = {"question": "Q", "options": ["a", "b"]}
    assert PROBE.execute_sync(create, {"s": {"poll": poll}}).errors is None
    for sticker in ({}, {"poll": poll, "question": {"prompt": "P"}}):
        result = PROBE.execute_sync(create, {"s": sticker})
        assert result.errors and "exactly one key" in result.errors[0].message, sticker
    result = PROBE.execute_sync(create, {"s": {"poll": None}})
    assert result.errors and "must be non-null" in result.errors[0].message
    assert PROBE.execute_sync(respond, {"r": {"pollOption": 0}}).errors is None
    for response in ({}, {"pollOption": 0, "linkTap": True}):
        result = PROBE.execute_sync(respond, {"r": response})
        assert result.errors and "exactly one key" in result.errors[0].message, response
    literal = "query { respond(input: {storyId: 1, stickerId: 2, response: {pollOption: 0, quizAnswer: 1}}) }"  # noqa: E501
    assert PROBE.execute_sync(literal).errors


async def test_a_sticker_built_with_no_member_or_two_is_refused_too() -> None:
    """The resolver does not rely on the schema alone (it is called from code too)."""
    await refused_alone("exactly one of")
    await refused_alone(
        "exactly one of",
        question=QuestionStickerInput(prompt="P"),
        hashtag=HashtagStickerInput(hashtag="x"),
    )


# ── the stored shape of each type ────────────────────────────────────────


async def test_every_type_is_stored_in_its_shape_in_order() -> None:
    story = strawberry.ID(encode_id("Story", 42))
    stored = await store(
        placed(poll=PollStickerInput(question=" Tea or coffee? ", options=[" Tea", "Coffee "])),
        placed(
            quiz=QuizStickerInput(question="2+2?", options=["3", "4", "5"], correct_option=1),
        ),
        placed(question=QuestionStickerInput(prompt="Ask me anything")),
        placed(
            countdown=CountdownStickerInput(
                title="Launch",
                ends_at=datetime(2026, 12, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))),
            )
        ),
        placed(slider=SliderStickerInput(question="How hot?", emoji="🔥")),
        placed(link=LinkStickerInput(url="https://example.com/a?b=1", label="Read")),
        placed(
            location=LocationStickerInput(
                location=LocationInput(name=" Paris ", latitude=48.85, longitude=2.35)
            )
        ),
        placed(hashtag=HashtagStickerInput(hashtag="#Sunset")),
        placed(add_yours=AddYoursStickerInput(prompt="Your pet", origin_story_id=story)),
        placed(add_yours=AddYoursStickerInput(prompt="Your view")),
    )
    shapes = [{k: v for k, v in s.items() if k not in DEFAULT_PLACE} for s in stored]
    assert all({k: s[k] for k in DEFAULT_PLACE} == DEFAULT_PLACE for s in stored)
    assert shapes == [
        {"type": "POLL", "question": "Tea or coffee?", "options": ["Tea", "Coffee"]},
        {"type": "QUIZ", "question": "2+2?", "options": ["3", "4", "5"], "correctOption": 1},
        {"type": "QUESTION", "prompt": "Ask me anything"},
        {"type": "COUNTDOWN", "title": "Launch", "endsAt": "2026-12-01T12:30:00+00:00"},
        {"type": "SLIDER", "question": "How hot?", "emoji": "🔥"},
        {"type": "LINK", "url": "https://example.com/a?b=1", "label": "Read"},
        {"type": "LOCATION", "name": "Paris", "latitude": 48.85, "longitude": 2.35},
        {"type": "HASHTAG", "hashtag": "sunset"},
        {"type": "ADD_YOURS", "prompt": "Your pet", "originStoryId": 42},
        {"type": "ADD_YOURS", "prompt": "Your view", "originStoryId": None},
    ]
    assert sorted(stored[0]) == sorted(["type", *DEFAULT_PLACE, "question", "options"])


async def test_no_stickers_is_fine_and_more_than_ten_are_refused() -> None:
    assert await store() == ()
    tag: dict[str, Any] = {"hashtag": HashtagStickerInput(hashtag="ok")}
    assert len(await store(*[placed(**tag)] * 10)) == 10
    error = await refused(*[placed(**tag)] * 11)
    assert error.extensions is not None and error.extensions["field"] == "stickers"
    assert "at most 10" in error.message


async def test_the_error_names_the_index_of_the_offending_sticker() -> None:
    good = placed(question=QuestionStickerInput(prompt="fine"))
    bad = placed(poll=PollStickerInput(question="Q", options=["only one"]))
    error = await refused(good, good, good, bad, good)
    assert error.message == "stickers[3]: poll needs 2 to 4 options"
    assert error.extensions is not None and error.extensions["field"] == "stickers[3]"
    # The first bad sticker is the one reported.
    error = await refused(good, bad, bad)
    assert error.message.startswith("stickers[1]: ")


# ── placement ────────────────────────────────────────────────────────────


async def test_placement_defaults_and_rotation_normalized() -> None:
    tag = HashtagStickerInput(hashtag="x")
    explicit_nulls = StickerPlacementInput(x=0, y=1, width=None, height=None, rotation=None)
    (stored,) = await store(placed(explicit_nulls, hashtag=tag))
    assert {k: stored[k] for k in DEFAULT_PLACE} == {
        "x": 0.0,
        "y": 1.0,
        "width": 0.3,
        "height": 0.1,
        "rotation": 0.0,
    }
    for given, expected in ((370, 10), (-190, 170), (90.5, 90.5), (720, 0), (-45, -45), (180, 180)):
        spot = StickerPlacementInput(x=0.1, y=0.2, width=1, height=0.01, rotation=given)
        (stored,) = await store(placed(spot, hashtag=tag))
        assert stored["rotation"] == pytest.approx(expected), given
        assert -180 <= stored["rotation"] <= 180


@pytest.mark.parametrize(
    ("spot", "message"),
    [
        ({"x": -0.01, "y": 0.5}, "placement x must be between 0 and 1"),
        ({"x": 0.5, "y": 1.01}, "placement y must be between 0 and 1"),
        ({"x": math.nan, "y": 0.5}, "placement x"),
        ({"x": 0.5, "y": 0.5, "width": 0}, "placement width must be more than 0"),
        ({"x": 0.5, "y": 0.5, "width": 1.5}, "placement width"),
        ({"x": 0.5, "y": 0.5, "height": -0.1}, "placement height"),
        ({"x": 0.5, "y": 0.5, "height": math.inf}, "placement height"),
        ({"x": 0.5, "y": 0.5, "rotation": math.inf}, "placement rotation must be a finite"),
        ({"x": 0.5, "y": 0.5, "rotation": math.nan}, "placement rotation"),
    ],
)
async def test_bad_placements_are_refused(spot: dict[str, float], message: str) -> None:
    await refused_alone(
        message,
        placement=StickerPlacementInput(**spot),
        hashtag=HashtagStickerInput(hashtag="x"),
    )


# ── per type ─────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["one"], "poll needs 2 to 4 options"),
        ([], "poll needs 2 to 4 options"),
        (["a", "b", "c", "d", "e"], "poll needs 2 to 4 options"),
        (["a", "   "], "poll options[1] must be 1 to 50 characters"),
        (["x" * 51, "b"], "poll options[0] must be 1 to 50 characters"),
        (["Yes", " yes "], "poll options must differ"),
    ],
)
async def test_poll_options(options: list[str], message: str) -> None:
    await refused_alone(message, poll=PollStickerInput(question="Q?", options=options))


async def test_poll_limits_are_inclusive() -> None:
    stored = await one(poll=PollStickerInput(question="q" * 300, options=["x" * 50, "b", "c", "d"]))
    assert stored["options"] == ["x" * 50, "b", "c", "d"]


@pytest.mark.parametrize(
    ("options", "correct", "message"),
    [
        (["a", "b"], 2, "quiz correctOption must be an option index, 0 to 1"),
        (["a", "b", "c"], -1, "quiz correctOption must be an option index, 0 to 2"),
        (["a"], 0, "quiz needs 2 to 4 options"),
        (["a", "A"], 0, "quiz options must differ"),
    ],
)
async def test_quiz(options: list[str], correct: int, message: str) -> None:
    quiz = QuizStickerInput(question="Q?", options=options, correct_option=correct)
    await refused_alone(message, quiz=quiz)
    fine = QuizStickerInput(question="Q?", options=["a", "b", "c", "d"], correct_option=3)
    assert (await one(quiz=fine))["correctOption"] == 3


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ({"poll": PollStickerInput(question=" ", options=["a", "b"])}, "poll question must be 1"),
        (
            {"quiz": QuizStickerInput(question="q" * 301, options=["a", "b"], correct_option=0)},
            "quiz question must be 1 to 300 characters",
        ),
        ({"question": QuestionStickerInput(prompt="")}, "question prompt must be 1 to 300"),
        ({"question": QuestionStickerInput(prompt="p" * 301)}, "question prompt"),
        (
            {"countdown": CountdownStickerInput(title="\n", ends_at=NOW + timedelta(days=1))},
            "countdown title must be 1 to 300",
        ),
        ({"slider": SliderStickerInput(question="", emoji="🔥")}, "slider question"),
        ({"add_yours": AddYoursStickerInput(prompt="  ")}, "addYours prompt must be 1 to 300"),
    ],
)
async def test_texts_must_be_1_to_300_characters(member: dict[str, Any], message: str) -> None:
    await refused_alone(message, **member)


async def test_texts_are_trimmed_and_300_characters_is_fine() -> None:
    assert (await one(question=QuestionStickerInput(prompt=" p" * 150 + " ")))["prompt"] == (
        " p" * 150
    ).strip()
    assert len((await one(question=QuestionStickerInput(prompt="é" * 300)))["prompt"]) == 300


async def test_countdown_ends_in_the_future_within_a_year() -> None:
    def countdown(ends_at: datetime) -> dict[str, Any]:
        return {"countdown": CountdownStickerInput(title="T", ends_at=ends_at)}

    latest = await one(**countdown(NOW + timedelta(days=365)))
    assert latest["endsAt"] == "2027-11-26T12:00:00+00:00"
    soonest = await one(**countdown(NOW + timedelta(seconds=1)))
    assert datetime.fromisoformat(soonest["endsAt"]) == NOW + timedelta(seconds=1)
    await refused_alone("countdown endsAt must be in the future", **countdown(NOW))
    await refused_alone("in the future", **countdown(NOW - timedelta(minutes=1)))
    await refused_alone("at most 365 days ahead", **countdown(NOW + timedelta(days=365, seconds=1)))
    await refused_alone("needs a UTC offset", **countdown(datetime(2026, 12, 1, 12, 0)))


@pytest.mark.parametrize(
    "face",
    [
        "🔥",
        "😀",
        "👍🏽",  # skin tone
        "👨\u200d👩\u200d👧",  # ZWJ family
        "🏳️\u200d🌈",  # ZWJ with a variation selector
        "🇫🇷",  # flag: two regional indicators
        "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland (tags)
        "❤️",  # with VS16
        "❤",  # without
        "1️⃣",  # keycap
        " 😍 ",  # surrounding spaces are trimmed
    ],
)
async def test_slider_takes_one_emoji(face: str) -> None:
    stored = await one(slider=SliderStickerInput(question="How much?", emoji=face))
    assert stored["emoji"] == face.strip()


@pytest.mark.parametrize(
    "face",
    ["", " ", "a", ":)", "😀😀", "👍 👍", "🔥a", "🇫", "\u200d", "\ufe0f", "👍\u200d", "1", "#"],
)
async def test_slider_refuses_anything_but_one_emoji(face: str) -> None:
    await refused_alone(
        "slider emoji must be exactly one emoji",
        slider=SliderStickerInput(question="How much?", emoji=face),
    )


@pytest.mark.parametrize(
    ("url", "label", "stored_label"),
    [
        ("http://example.com", None, None),
        ("HTTPS://Example.com:8443/path?q=1#frag", "  Shop  ", "Shop"),
        ("https://example.com", "   ", None),
        ("https://[::1]/x", "x" * 50, "x" * 50),
        ("https://bücher.example/", strawberry.UNSET, None),
    ],
)
async def test_links(url: str, label: Any, stored_label: str | None) -> None:
    stored = await one(link=LinkStickerInput(url=url, label=label))
    assert (stored["url"], stored["label"]) == (url, stored_label)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/file", "must start with http:// or https://"),
        ("javascript:alert(1)", "must start with http:// or https://"),
        ("example.com", "must start with http:// or https://"),
        ("//example.com", "must start with http:// or https://"),
        ("https://", "needs a host"),
        ("https:///path", "needs a host"),
        ("https://user:secret@example.com", "must not carry a user name or password"),
        ("https://bank.example@evil.example", "must not carry a user name"),
        ("http://example.com:99999", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
        ("https://exa mple.com", "without spaces"),
        ("https://example.com/\x00", "without spaces"),
        ("", "link url must be 1 to 2048"),
        ("https://example.com/" + "a" * 2029, "link url must be 1 to 2048"),
    ],
)
async def test_bad_links_are_refused(url: str, message: str) -> None:
    await refused_alone(message, link=LinkStickerInput(url=url))


async def test_link_label_at_most_50() -> None:
    await refused_alone(
        "link label must be at most 50 characters",
        link=LinkStickerInput(url="https://example.com", label="x" * 51),
    )


@pytest.mark.parametrize(
    ("name", "lat", "lon", "message"),
    [
        ("  ", 0.0, 0.0, "location name must be 1 to 100 characters"),
        ("n" * 101, 0.0, 0.0, "location name"),
        ("Pole", 90.01, 0.0, "location latitude must be between -90 and 90"),
        ("Pole", -91.0, 0.0, "location latitude"),
        ("Pole", math.nan, 0.0, "location latitude"),
        ("Line", 0.0, 180.5, "location longitude must be between -180 and 180"),
        ("Line", 0.0, -math.inf, "location longitude"),
    ],
)
async def test_bad_locations_are_refused(name: str, lat: float, lon: float, message: str) -> None:
    place = LocationInput(name=name, latitude=lat, longitude=lon)
    await refused_alone(message, location=LocationStickerInput(location=place))


async def test_location_edges_are_fine() -> None:
    place = LocationInput(name="Edge", latitude=-90, longitude=180)
    stored = await one(location=LocationStickerInput(location=place))
    assert (stored["latitude"], stored["longitude"]) == (-90.0, 180.0)


@pytest.mark.parametrize(
    ("raw", "tag"),
    [("#Sunset", "sunset"), ("Dance_Off", "dance_off"), ("#東京", "東京"), (" #Café ", "café")],
)
async def test_hashtags_are_case_folded_without_the_hash(raw: str, tag: str) -> None:
    assert (await one(hashtag=HashtagStickerInput(hashtag=raw)))["hashtag"] == tag


@pytest.mark.parametrize("raw", ["", "#", "two words", "#a-b", "##x", "#" + "a" * 101])
async def test_bad_hashtags_are_refused(raw: str) -> None:
    await refused_alone(
        "a hashtag is letters, digits and underscores", hashtag=HashtagStickerInput(hashtag=raw)
    )


@pytest.mark.parametrize("origin", [encode_id("Post", 1), encode_id("Story", "x"), "nonsense"])
async def test_add_yours_origin_must_be_a_story_id(origin: str) -> None:
    await refused_alone(
        "addYours originStoryId is not a valid Story id",
        add_yours=AddYoursStickerInput(prompt="Yours", origin_story_id=strawberry.ID(origin)),
    )


async def test_add_yours_origin_null_is_none() -> None:
    stored = await one(add_yours=AddYoursStickerInput(prompt="Yours", origin_story_id=None))
    assert stored["originStoryId"] is None


async def test_a_malformed_mention_id_is_refused_without_a_read() -> None:
    for user_id in (encode_id("Post", 3), "junk"):
        await refused_alone(
            "mention userId is not a valid User id",
            mention=MentionStickerInput(user_id=strawberry.ID(user_id)),
        )


# ── mentions: real users ─────────────────────────────────────────────────


def context_of(app: Any, viewer: Account | None, platform: str = "socialink") -> Context:
    runtime = app.state.runtime
    return Context(
        platform=platform,
        viewer=Viewer(pk(viewer), platform, "test") if viewer else None,
        settings=runtime.settings,
        stores=runtime.stores,
        loaders=Loaders(runtime.stores, platform),
        auth=runtime.auth,
        request_id="stickers-test",
    )


def pk(account: Account) -> int:
    parts = split_id(account.id)
    assert parts is not None
    return int(parts[1])


def mention(account_or_id: Account | str) -> PlacedStickerInput:
    user_id = account_or_id if isinstance(account_or_id, str) else account_or_id.id
    return placed(mention=MentionStickerInput(user_id=strawberry.ID(user_id)))


async def test_mentions_of_visible_users_of_the_platform(app: Any) -> None:
    alice, bob, carol = await create_users(app, ["alice", "bob", "carol"])
    stored = await store(
        mention(bob), mention(alice), mention(carol), context=context_of(app, alice)
    )
    assert [(s["type"], s["userId"]) for s in stored] == [
        ("MENTION", pk(bob)),
        ("MENTION", pk(alice)),  # yourself: allowed
        ("MENTION", pk(carol)),
    ]


async def test_mentions_of_hidden_or_missing_users_are_refused_alike(
    app: Any, gql: GraphQLClient
) -> None:
    alice, bob, carol, dave = await create_users(app, ["alice", "bob", "carol", "dave"])
    (vera,) = await create_users(app, ["vera"], platform="vignette")
    block = "mutation($u: ID!) { block(userId: $u) { blocking } }"
    (await gql(block, {"u": bob.id}, token=alice.token)).ok()  # alice blocks bob
    (await gql(block, {"u": alice.id}, token=carol.token)).ok()  # carol blocks alice
    messages = set()
    for target in (bob, carol, vera, encode_id("User", 999_999)):
        error = await refused(mention(dave), mention(target), context=context_of(app, alice))
        assert error.extensions is not None and error.extensions["field"] == "stickers[1]"
        messages.add(error.message)
    assert messages == {"stickers[1]: mention userId: user not found"}
    # The blocked side cannot mention the blocker either.
    await refused(mention(alice), context=context_of(app, bob))
    # Read checks come after the checks that need no read.
    error = await refused(
        mention(bob),
        placed(poll=PollStickerInput(question="Q", options=["a"])),
        context=context_of(app, alice),
    )
    assert error.message.startswith("stickers[1]: poll needs")


# ── responses ────────────────────────────────────────────────────────────

POLL = {"type": "POLL", "question": "Q", "options": ["a", "b", "c"]}
QUIZ = {"type": "QUIZ", "question": "Q", "options": ["a", "b"], "correctOption": 1}
QUESTION = {"type": "QUESTION", "prompt": "Ask"}
SLIDER = {"type": "SLIDER", "question": "Q", "emoji": "🔥"}
COUNTDOWN = {"type": "COUNTDOWN", "title": "T", "endsAt": "2030-01-01T00:00:00+00:00"}
LINK = {"type": "LINK", "url": "https://example.com", "label": None}


def respond(sticker: dict[str, Any], **member: Any) -> ParsedResponse:
    return parse_response(sticker, StickerResponseInput(**member))


def refused_response(sticker: dict[str, Any], message: str, **member: Any) -> None:
    with pytest.raises(BadUserInput) as caught:
        respond(sticker, **member)
    assert message in caught.value.message, caught.value.message
    assert caught.value.extensions is not None
    assert caught.value.extensions["field"] == "response"
    assert caught.value.extensions["code"] == "BAD_USER_INPUT"


def test_valid_responses_are_parsed() -> None:
    assert respond(POLL, poll_option=2) == ParsedResponse("POLL", option=2)
    assert respond(QUIZ, quiz_answer=0) == ParsedResponse("QUIZ", option=0)
    assert respond(QUESTION, question_text="  hi  ") == ParsedResponse("QUESTION", text="hi")
    assert respond(QUESTION, question_text="x" * 300).text == "x" * 300
    assert respond(SLIDER, slider_value=0) == ParsedResponse("SLIDER", value=0.0)
    assert respond(SLIDER, slider_value=1.0).value == 1.0
    assert respond(COUNTDOWN, countdown_subscribe=True) == ParsedResponse(
        "COUNTDOWN", subscribe=True
    )
    assert respond(COUNTDOWN, countdown_subscribe=False).subscribe is False
    assert respond(LINK, link_tap=True) == ParsedResponse("LINK")


@pytest.mark.parametrize(
    ("sticker", "member", "message"),
    [
        (POLL, {"poll_option": 3}, "pollOption must be an option index, 0 to 2"),
        (POLL, {"poll_option": -1}, "pollOption must be an option index"),
        (QUIZ, {"quiz_answer": 2}, "quizAnswer must be an option index, 0 to 1"),
        (QUESTION, {"question_text": "   "}, "questionText must be 1 to 300 characters"),
        (QUESTION, {"question_text": "x" * 301}, "questionText must be 1 to 300"),
        (SLIDER, {"slider_value": 1.01}, "sliderValue must be between 0 and 1"),
        (SLIDER, {"slider_value": -0.01}, "sliderValue must be between 0 and 1"),
        (SLIDER, {"slider_value": math.nan}, "sliderValue must be between 0 and 1"),
        (SLIDER, {"slider_value": math.inf}, "sliderValue"),
        (LINK, {"link_tap": False}, "linkTap must be true"),
    ],
)
def test_bad_responses_are_refused(
    sticker: dict[str, Any], member: dict[str, Any], message: str
) -> None:
    refused_response(sticker, message, **member)


@pytest.mark.parametrize(
    ("sticker", "member", "name"),
    [
        (QUIZ, {"poll_option": 0}, "pollOption does not answer a QUIZ sticker"),
        (POLL, {"quiz_answer": 0}, "quizAnswer does not answer a POLL sticker"),
        (SLIDER, {"question_text": "hi"}, "questionText does not answer a SLIDER sticker"),
        (QUESTION, {"slider_value": 0.5}, "sliderValue does not answer a QUESTION sticker"),
        (LINK, {"countdown_subscribe": True}, "countdownSubscribe does not answer a LINK"),
        (COUNTDOWN, {"link_tap": True}, "linkTap does not answer a COUNTDOWN sticker"),
    ],
)
def test_a_response_must_match_the_sticker_type(
    sticker: dict[str, Any], member: dict[str, Any], name: str
) -> None:
    refused_response(sticker, name, **member)


@pytest.mark.parametrize("kind", ["MENTION", "LOCATION", "HASHTAG", "ADD_YOURS"])
def test_stickers_that_take_no_response(kind: str) -> None:
    for member in ({"poll_option": 0}, {"link_tap": True}, {"question_text": "hi"}):
        refused_response({"type": kind}, f"a {kind} sticker takes no response", **member)


def test_a_response_with_no_member_or_two_is_refused() -> None:
    refused_response(POLL, "a response sets exactly one of")
    refused_response(POLL, "exactly one of", poll_option=0, quiz_answer=0)
    refused_response(POLL, "exactly one of", poll_option=None)
