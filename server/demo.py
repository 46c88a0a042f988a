"""The demo world: about 20 users on each platform, their avatars, follows and
friendships, and their posts with photos, hashtags, mentions, likes, saves and comments.

It is loaded through the public GraphQL API (in-process, over ASGI), so demo data obeys
exactly the rules a client does: counts, privacy, requests, generated avatars.
"""

from __future__ import annotations

import io
import random
from typing import Any

import httpx
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from datasources.users.tables import UserRow
from server.settings import Settings

DEMO_PASSWORD = "entativa-demo"
NAMES = [
    "ada",
    "grace",
    "alan",
    "linus",
    "margaret",
    "dennis",
    "barbara",
    "ken",
    "frances",
    "donald",
    "radia",
    "tim",
    "hedy",
    "vint",
    "katherine",
    "john",
    "sophie",
    "guido",
    "annie",
    "edsger",
]
BIOS = [
    "Writing code and drinking tea.",
    "Photos from everywhere.",
    "Runner, reader, baker.",
    "Here for the takes.",
    None,
]
PALETTE = [
    (231, 76, 60),
    (52, 152, 219),
    (46, 204, 113),
    (155, 89, 182),
    (241, 196, 15),
    (26, 188, 156),
]

SIGN_UP = """mutation($input: SignUpInput!) { signUp(input: $input) { accessToken user { id } } }"""
UPLOAD = (
    """mutation($file: Upload!, $alt: String) { uploadMedia(file: $file, altText: $alt) { id } }"""
)
PROFILE = """mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }"""
FOLLOW = """mutation($id: ID!) { follow(userId: $id) { following } }"""
FRIEND = """mutation($id: ID!) { sendFriendRequest(userId: $id) { friends } }"""
CREATE_POST = """mutation($input: CreatePostInput!) { createPost(input: $input) { id } }"""
LIKE_POST = """mutation($id: ID!) { likePost(postId: $id) { id } }"""
SAVE_POST = """mutation($id: ID!) { savePost(postId: $id) { id } }"""
COMMENT = """mutation($input: AddCommentInput!) { addComment(input: $input) { id } }"""
CAPTIONS = [
    "Morning light over the harbour #sunrise #photography",
    "First try at sourdough, thanks @{friend} for the starter #baking",
    "Trail run before work #running #outdoors",
    "New desk setup, finally #wfh",
    "Weekend with @{friend} #friends",
    "Rainy day, good book #reading",
    "Tried the new noodle place downtown #food",
    "Sketching again after years #art",
]
COMMENTS = ["Love this!", "Where is this?", "So good 😍", "Next time I'm coming too", "Wow"]
PLACES = [("Harbourfront", 43.638, -79.381), ("Old Town", 50.087, 14.421), (None, 0.0, 0.0)]


def photo_png(seed: int, color: tuple[int, int, int]) -> bytes:
    """A 640×480 'photo': a sky-to-ground gradient with a sun, different per seed."""
    rng = random.Random(seed)
    image = Image.new("RGB", (640, 480))
    draw = ImageDraw.Draw(image)
    for y in range(480):
        t = y / 480
        draw.line([(0, y), (640, y)], fill=tuple(int(c * (1 - t) + 40 * t) for c in color))
    x, y = rng.randint(80, 560), rng.randint(60, 220)
    draw.ellipse((x - 40, y - 40, x + 40, y + 40), fill=(255, 236, 150))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def avatar_png(name: str, color: tuple[int, int, int]) -> bytes:
    """A 256×256 avatar: a coloured disc with the user's initial."""
    image = Image.new("RGB", (256, 256), (245, 245, 245))
    draw = ImageDraw.Draw(image)
    draw.ellipse((16, 16, 240, 240), fill=color)
    draw.text((128, 128), name[0].upper(), fill=(255, 255, 255), anchor="mm", font_size=120)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class DemoClient:
    def __init__(self, http: httpx.AsyncClient, platform: str) -> None:
        self.http = http
        self.platform = platform

    async def call(self, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            f"/{self.platform}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
        )
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"demo data: {body['errors'][0]['message']}")
        return body["data"]

    async def try_call(self, query: str, variables: dict[str, Any], token: str) -> bool:
        """`call` for what the rules may refuse (a post this user may not see): False then."""
        try:
            await self.call(query, variables, token)
        except RuntimeError:
            return False
        return True

    async def upload_avatar(self, token: str, name: str, color: tuple[int, int, int]) -> str:
        return await self.upload(token, f"{name}.png", avatar_png(name, color), f"{name}'s avatar")

    async def upload(self, token: str, filename: str, png: bytes, alt: str) -> str:
        import json

        operations = {"query": UPLOAD, "variables": {"file": None, "alt": alt}}
        response = await self.http.post(
            f"/{self.platform}/graphql",
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.file"]}),
            },
            files={"0": (filename, png, "image/png")},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"demo upload: {body['errors'][0]['message']}")
        return str(body["data"]["uploadMedia"]["id"])


async def _populate(client: DemoClient, rng: random.Random) -> None:
    accounts: list[tuple[str, str]] = []  # (token, user id)
    for index, name in enumerate(NAMES):
        data = await client.call(
            SIGN_UP,
            {
                "input": {
                    "username": name,
                    "email": f"{name}@{client.platform}.example",
                    "password": DEMO_PASSWORD,
                    "displayName": name.capitalize(),
                }
            },
        )
        token, user_id = data["signUp"]["accessToken"], data["signUp"]["user"]["id"]
        avatar = await client.upload_avatar(token, name, PALETTE[index % len(PALETTE)])
        private = client.platform == "vignette" and index % 7 == 6
        await client.call(
            PROFILE,
            {
                "input": {
                    "bio": BIOS[index % len(BIOS)],
                    "avatarMediaId": avatar,
                    "isPrivate": private,
                }
            },
            token,
        )
        accounts.append((token, user_id))
    for token, user_id in accounts:
        for _, other in rng.sample(accounts, 8):
            if other != user_id:
                await client.call(FOLLOW, {"id": other}, token)
    if client.platform == "socialink":
        for i, (token, _) in enumerate(accounts):
            for _, other in accounts[i + 1 : i + 4]:
                await client.call(FRIEND, {"id": other}, token)
        # the other side accepts by sending its own request back
        for i, (_, user_id) in enumerate(accounts):
            for token, _ in accounts[i + 1 : i + 3]:
                await client.call(FRIEND, {"id": user_id}, token)
    await _posts(client, rng, accounts)
    await _stories(client, rng, accounts)


CREATE_STORY = """mutation($input: CreateStoryInput!) {
  createStory(input: $input) { id stickers { id } } }"""
VOTE = """mutation($input: RespondToStickerInput!) { respondToSticker(input: $input) { id } }"""
CLOSE_FRIEND = "mutation($id: ID!) { addCloseFriend(userId: $id) { isCloseFriend } }"
HIGHLIGHT = "mutation($input: CreateHighlightInput!) { createHighlight(input: $input) { id } }"
POLLS = [("Tea or coffee?", ["tea", "coffee"]), ("Beach or mountains?", ["beach", "mountains"])]


async def _stories(client: DemoClient, rng: random.Random, accounts: list[tuple[str, str]]) -> None:
    """A story with a poll for every other user (votes from a few others), a close-friends
    story and a highlight for the first user: something for storyTray to show."""
    placement = {"x": 0.5, "y": 0.7}
    story_ids: list[str] = []
    for index, (token, _) in enumerate(accounts[::2]):
        question, options = POLLS[index % len(POLLS)]
        photo = photo_png(100 + index, PALETTE[index % len(PALETTE)])
        media = await client.upload(token, f"story{index}.png", photo, question)
        poll = {"poll": {"question": question, "options": options}}
        story = (
            await client.call(
                CREATE_STORY,
                {
                    "input": {
                        "mediaId": media,
                        "stickers": [{"sticker": poll, "placement": placement}],
                    }
                },
                token,
            )
        )["createStory"]
        for voter, _ in rng.sample(accounts, 5):
            response = {"pollOption": rng.randrange(len(options))}
            answer = {"storyId": story["id"], "stickerId": story["stickers"][0]["id"]}
            await client.try_call(VOTE, {"input": {**answer, "response": response}}, voter)
        story_ids.append(story["id"])
    token, _ = accounts[0]
    for _, friend in accounts[1:4]:
        await client.call(CLOSE_FRIEND, {"id": friend}, token)
    media = await client.upload(token, "close.png", photo_png(99, PALETTE[0]), "close friends")
    await client.call(
        CREATE_STORY, {"input": {"mediaId": media, "audience": "CLOSE_FRIENDS"}}, token
    )
    await client.call(
        HIGHLIGHT, {"input": {"title": "Favourites", "storyIds": story_ids[:1]}}, token
    )


async def _posts(client: DemoClient, rng: random.Random, accounts: list[tuple[str, str]]) -> None:
    """Two posts each (most with a photo), then likes, saves and comments from others."""
    posts: list[str] = []
    visibilities = (
        ["PUBLIC"] * 5 + ["FOLLOWERS"] + (["FRIENDS"] if client.platform == "socialink" else [])
    )
    for index, (token, _) in enumerate(accounts):
        for n in range(2):
            seed = index * 2 + n
            caption = CAPTIONS[seed % len(CAPTIONS)].format(
                friend=NAMES[(index + 1) % len(accounts)]
            )
            post: dict[str, Any] = {"caption": caption, "visibility": rng.choice(visibilities)}
            if seed % 3 != 2:
                photo = photo_png(seed, PALETTE[seed % len(PALETTE)])
                post["mediaIds"] = [await client.upload(token, f"photo{seed}.png", photo, caption)]
            name, latitude, longitude = PLACES[seed % len(PLACES)]
            if name:
                post["location"] = {"name": name, "latitude": latitude, "longitude": longitude}
            posts.append(
                (await client.call(CREATE_POST, {"input": post}, token))["createPost"]["id"]
            )
    for token, _ in accounts:
        for post_id in rng.sample(posts, 10):
            await client.try_call(LIKE_POST, {"id": post_id}, token)
        for post_id in rng.sample(posts, 2):
            await client.try_call(SAVE_POST, {"id": post_id}, token)
        for post_id in rng.sample(posts, 3):
            body = rng.choice(COMMENTS)
            await client.try_call(COMMENT, {"input": {"postId": post_id, "body": body}}, token)


async def load_demo(settings: Settings) -> None:
    """Load the demo world on both platforms (expects an empty database)."""
    from server.app import create_app

    app = create_app(settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
            for platform in ("socialink", "vignette"):
                print(f"[entativa] loading demo data on {platform}…", flush=True)
                await _populate(DemoClient(http, platform), random.Random(platform))
    finally:
        await app.state.runtime.close()
    print(
        f"[entativa] demo users on both platforms: {', '.join(NAMES[:5])}, … "
        f"(20 each); sign in with any of them and the password '{DEMO_PASSWORD}'",
        flush=True,
    )


async def load_demo_if_empty(settings: Settings) -> None:
    from datasources.sql import Database

    db = Database(settings.resolved_database_url)
    try:
        async with db.session() as session:
            users = await session.scalar(select(func.count()).select_from(UserRow))
    finally:
        await db.dispose()
    if users:
        print(f"[entativa] database has {users} users: demo data not loaded again", flush=True)
        print(
            f"[entativa] demo sign-in (if it is the demo world): ada / '{DEMO_PASSWORD}'",
            flush=True,
        )
        return
    await load_demo(settings)
