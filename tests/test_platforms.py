"""Platforms are tenants: paths, the `platform` query, per-platform identities."""

from __future__ import annotations

from tests.conftest import GraphQLClient, sign_up


async def test_each_path_serves_its_platform(gql: GraphQLClient) -> None:
    assert (await gql("{ platform }", platform="socialink")).ok() == {"platform": "SOCIALINK"}
    assert (await gql("{ platform }", platform="vignette")).ok() == {"platform": "VIGNETTE"}
    assert (await gql("{ platform }", platform="default")).ok() == {"platform": "SOCIALINK"}


async def test_same_username_on_both_platforms_is_two_users(gql: GraphQLClient) -> None:
    on_socialink = await sign_up(gql, "alice", "socialink")
    on_vignette = await sign_up(gql, "alice", "vignette")
    assert on_socialink.id != on_vignette.id


async def test_token_of_one_platform_is_unauthenticated_on_the_other(gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice", "vignette")
    mine = await gql("{ viewer { username } }", token=alice.token, platform="vignette")
    assert mine.ok() == {"viewer": {"username": "alice"}}
    other = await gql("{ viewer { username } }", token=alice.token, platform="socialink")
    assert other.status == 401
    assert other.codes == ["UNAUTHENTICATED"]


async def test_user_lookup_never_crosses_platforms(gql: GraphQLClient) -> None:
    await sign_up(gql, "bob", "vignette")
    elsewhere = await gql('{ user(username: "bob") { id } }', platform="socialink")
    unknown = await gql('{ user(username: "nobody") { id } }', platform="socialink")
    # bob of Vignette is exactly as absent on Socialink as a name nobody has
    assert elsewhere.data == unknown.data == {"user": None}
    assert elsewhere.codes == unknown.codes == ["NOT_FOUND"]
    found = await gql('{ user(username: "BOB") { username } }', platform="vignette")
    assert found.ok() == {"user": {"username": "bob"}}
