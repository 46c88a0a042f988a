"""One schema served two ways: `node(id)`, subgraphs derived by ownership, and interop.

- `node(id)` on the monolith (both backends).
- The users and media subgraphs served on their own (`create_app(subgraph=…)`):
  `_service { sdl }`, batched `_entities`, stubs.
- Ownership with contributions, on a small test-only schema (no real domain
  contributes a field yet): what each subgraph holds, and that it runs.
- Interop with Apollo's own Node packages (tests/interop): the subgraph SDLs
  compose and equal the monolith's API schema; a gateway in front of separately
  running subgraph processes answers like the monolith.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from enum import Enum
from typing import Annotated, Any

import httpx
import pytest
import strawberry
from graphql import build_schema, lexicographic_sort_schema, print_schema
from strawberry.types import Info

from resolvers.ids import encode_id
from schema.common import Connection, Node, PageInfo
from schema.domains import DOMAINS, Domain
from schema.node import NodeQuery, resolve_node
from schema.subgraphs import Federation, print_subgraph
from schema.supergraph import api_definitions, print_definitions, print_supergraph
from server.app import create_app
from server.settings import Settings
from tests.conftest import GraphQLClient, create_users, insert_media, sign_up
from tests.deployment_support import INTEROP, Deployment, environment, interop_node, launch

ENTITIES = """
query($reps: [_Any!]!) {
  _entities(representations: $reps) {
    __typename
    ... on User { id username }
    ... on Media { id }
  }
}
"""


def sorted_sdl(sdl: str) -> str:
    return print_schema(lexicographic_sort_schema(build_schema(sdl)))


# ───────────────────────── node(id) on the monolith ─────────────────────────

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on User { username }
    ... on Media { mimeType owner { username } }
  }
}
"""


async def test_node_loads_a_user_and_a_media_by_global_id(app: Any, gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice")
    media_id = await insert_media(app, alice)
    user = (await gql(NODE, {"id": alice.id})).ok()["node"]
    assert user == {"__typename": "User", "id": alice.id, "username": "alice"}
    media = (await gql(NODE, {"id": media_id})).ok()["node"]
    assert media == {
        "__typename": "Media",
        "id": media_id,
        "mimeType": "image/png",
        "owner": {"username": "alice"},
    }


async def test_node_is_null_for_ids_it_cannot_load(app: Any, gql: GraphQLClient) -> None:
    alice = await sign_up(gql, "alice", "socialink")
    media_id = await insert_media(app, alice)
    for unknown in (
        encode_id("User", 999_999),  # no such row
        encode_id("Relationship", 1),  # a type that is no Node
        encode_id("Nothing", 1),
        "not a global id!",
    ):
        assert (await gql(NODE, {"id": unknown})).ok() == {"node": None}, unknown
    # another platform's rows do not exist here
    for foreign in (alice.id, media_id):
        assert (await gql(NODE, {"id": foreign}, platform="vignette")).ok() == {"node": None}


# ───────────────────────── subgraphs served on their own ─────────────────────────


class TestUsersSubgraph:
    @pytest.fixture
    async def app(self, settings: Settings) -> AsyncIterator[Any]:
        application = create_app(settings, subgraph="users")
        yield application
        await application.state.runtime.close()

    async def test_service_sdl_is_the_printed_subgraph(self, gql: GraphQLClient) -> None:
        result = (await gql("{ _service { sdl } }")).ok()
        assert result["_service"]["sdl"] == print_subgraph("users")

    async def test_entities_load_twenty_users_with_one_users_query(
        self, app: Any, gql: GraphQLClient, sql_counter: list[str]
    ) -> None:
        users = await create_users(app, [f"user{i}" for i in range(20)])
        reps = [{"__typename": "User", "id": u.id} for u in reversed(users)]
        sql_counter.clear()
        entities = (await gql(ENTITIES, {"reps": reps})).ok()["_entities"]
        assert [e["username"] for e in entities] == [u.username for u in reversed(users)]
        user_queries = [s for s in sql_counter if "FROM users" in s]
        assert len(user_queries) == 1, sql_counter

    async def test_node_of_a_media_is_checked_but_only_its_id_served_here(
        self, app: Any, gql: GraphQLClient
    ) -> None:
        (alice,) = await create_users(app, ["alice"])
        media_id = await insert_media(app, alice)
        node = "query($id: ID!) { node(id: $id) { __typename id } }"
        assert (await gql(node, {"id": media_id})).ok() == {
            "node": {"__typename": "Media", "id": media_id}
        }
        # a media that does not exist (or is another platform's) is null, as in the monolith
        missing = encode_id("Media", 999_999)
        assert (await gql(node, {"id": missing})).ok() == {"node": None}
        assert (await gql(node, {"id": media_id}, platform="vignette")).ok() == {"node": None}
        # only the id: the router asks the media subgraph for the rest
        other = await gql(
            "query($id: ID!) { node(id: $id) { ... on Media { url } } }", {"id": media_id}
        )
        assert other.codes == ["BAD_USER_INPUT"]

    async def test_media_representations_are_answered_as_stubs_without_reading(
        self, app: Any, gql: GraphQLClient, sql_counter: list[str]
    ) -> None:
        (alice,) = await create_users(app, ["alice"])
        media_id = await insert_media(app, alice)
        sql_counter.clear()
        entities = (await gql(ENTITIES, {"reps": [{"__typename": "Media", "id": media_id}]})).ok()
        assert entities == {"_entities": [{"__typename": "Media", "id": media_id}]}
        assert [s for s in sql_counter if "FROM media" in s] == []

    async def test_entities_resolve_node_representations_to_their_type(
        self, app: Any, gql: GraphQLClient
    ) -> None:
        (alice,) = await create_users(app, ["alice"])
        media_id = await insert_media(app, alice)
        reps = [{"__typename": "Node", "id": alice.id}, {"__typename": "Node", "id": media_id}]
        entities = (await gql(ENTITIES, {"reps": reps})).ok()["_entities"]
        assert entities == [
            {"__typename": "User", "id": alice.id, "username": "alice"},
            {"__typename": "Media", "id": media_id},
        ]

    async def test_entities_refuse_types_this_subgraph_does_not_resolve(
        self, app: Any, gql: GraphQLClient
    ) -> None:
        (alice,) = await create_users(app, ["alice"])
        reps = [{"__typename": "AuthPayload", "id": "x"}, {"__typename": "User", "id": alice.id}]
        result = await gql(ENTITIES, {"reps": reps})
        assert result.data["_entities"][0] is None
        assert result.data["_entities"][1]["username"] == "alice"
        assert len(result.errors) == 1 and "AuthPayload" in result.errors[0]["message"]

    async def test_media_fields_are_not_served_here(self, gql: GraphQLClient) -> None:
        result = await gql('{ media(id: "x") { id } }')
        assert result.codes == ["BAD_USER_INPUT"]


class TestMediaSubgraph:
    @pytest.fixture
    async def app(self, settings: Settings) -> AsyncIterator[Any]:
        application = create_app(settings, subgraph="media")
        yield application
        await application.state.runtime.close()

    async def test_service_sdl_is_the_printed_subgraph(self, gql: GraphQLClient) -> None:
        result = (await gql("{ _service { sdl } }")).ok()
        assert result["_service"]["sdl"] == print_subgraph("media")

    async def test_media_and_its_owner_as_a_key_only_user(
        self, app: Any, gql: GraphQLClient
    ) -> None:
        (alice,) = await create_users(app, ["alice"])
        media_id = await insert_media(app, alice)
        query = "query($id: ID!) { media(id: $id) { id mimeType owner { id } } }"
        found = (await gql(query, {"id": media_id})).ok()
        assert found == {
            "media": {"id": media_id, "mimeType": "image/png", "owner": {"id": alice.id}}
        }
        entities = """query($reps: [_Any!]!) { _entities(representations: $reps) {
            ... on Media { id kind } } }"""
        reps = [{"__typename": "Media", "id": media_id}, {"__typename": "Media", "id": "bad"}]
        assert (await gql(entities, {"reps": reps})).ok() == {
            "_entities": [{"id": media_id, "kind": "IMAGE"}, None]
        }

    async def test_users_are_not_resolved_here(self, gql: GraphQLClient) -> None:
        assert (await gql('{ user(username: "alice") { id } }')).codes == ["BAD_USER_INPUT"]
        reps = [{"__typename": "User", "id": encode_id("User", 1)}]
        result = await gql(
            "query($reps: [_Any!]!) { _entities(representations: $reps) { __typename } }",
            {"reps": reps},
        )
        assert result.data == {"_entities": [None]}
        assert "User" in result.errors[0]["message"]


# ───────────────── ownership and contributions: a test-only schema ─────────────────
# people owns Person and the Node interface; notes owns Note and contributes
# Person.notes (a mixin, as posts will contribute User.posts); finder returns
# Node but defines no Node type, so it sees Node as an @interfaceObject.

PEOPLE = {encode_id("Person", 1): "Ada", encode_id("Person", 2): "Grace"}
NO_PAGE = PageInfo(has_next_page=False, has_previous_page=False)


@strawberry.federation.type(keys=["id"])
class Note(Node):
    id: strawberry.ID
    text: str

    @classmethod
    def resolve_reference(cls, info: Info, id: strawberry.ID) -> Note:
        return cls(id=id, text=f"note {id}")


@strawberry.type
class PersonNotes:
    """The notes domain's fields on Person: a mixin, never registered on its own."""

    @strawberry.field
    def notes(self) -> list[Note]:
        person_id = self.id  # type: ignore[attr-defined]
        return [Note(id=strawberry.ID(encode_id("Note", 7)), text=f"about {PEOPLE[person_id]}")]

    @strawberry.field
    def notes_page(self) -> Connection[Note]:
        return Connection(edges=[], page_info=NO_PAGE, total_count=0)


@strawberry.federation.type(keys=["id"])
class Person(Node, PersonNotes):
    id: strawberry.ID
    name: str

    @classmethod
    def resolve_reference(cls, info: Info, id: strawberry.ID) -> Person | None:
        return cls(id=id, name=PEOPLE[id]) if id in PEOPLE else None


@strawberry.type
class PeopleQuery:
    @strawberry.field
    def person(self, id: strawberry.ID) -> Person | None:
        return Person(id=id, name=PEOPLE[id]) if id in PEOPLE else None

    @strawberry.field
    def people(self) -> Connection[Person]:
        return Connection(edges=[], page_info=NO_PAGE, total_count=0)


@strawberry.input(one_of=True)
class NoteRef:
    id: strawberry.ID | None = strawberry.UNSET
    text: str | None = strawberry.UNSET


@strawberry.type
class NotesQuery:
    @strawberry.field
    def note(self, id: strawberry.ID) -> Note:
        return Note(id=id, text="hello")

    @strawberry.field
    def find_note(self, ref: NoteRef) -> Note | None:
        return None


@strawberry.type
class FinderQuery:
    @strawberry.field
    async def find(self, info: Info, id: strawberry.ID) -> Node | None:
        found: Node | None = await resolve_node(info, id)
        return found


TOY_DOMAINS = {
    "people": Domain("people", queries=(PeopleQuery, NodeQuery), owns=(Node, Person)),
    "notes": Domain(
        "notes", queries=(NotesQuery,), owns=(Note,), contributes={"Person": (PersonNotes,)}
    ),
    "finder": Domain("finder", queries=(FinderQuery,)),
}


@strawberry.enum
class Mood(Enum):  # listed in the schema's types, used by no field yet
    CALM = "calm"


def toy_monolith() -> strawberry.Schema:
    query = strawberry.tools.merge_types("Query", (PeopleQuery, NodeQuery, NotesQuery, FinderQuery))
    return strawberry.federation.Schema(query=query, types=[Person, Note, Mood])


@pytest.fixture(scope="module")
def toy() -> Federation:
    return Federation(toy_monolith(), TOY_DOMAINS)


def toy_definition(toy: Federation, subgraph: str, name: str) -> str:
    from tests.test_schema_sdl import definition

    return definition(toy.sdl(subgraph), name)


def test_contributed_fields_live_in_the_contributing_subgraph(toy: Federation) -> None:
    person = toy_definition(toy, "people", "Person")
    assert person.startswith('type Person implements Node @key(fields: "id") {')
    assert "name: String!" in person and "notes" not in person
    assert toy_definition(toy, "notes", "Person") == (
        'type Person implements Node @key(fields: "id") {\n'
        "  id: ID!\n  notes: [Note!]!\n  notesPage: NoteConnection!\n}"
    )


def test_node_owner_stubs_other_node_types_and_others_see_an_interface(toy: Federation) -> None:
    assert toy_definition(toy, "people", "Note") == (
        'type Note implements Node @key(fields: "id") {\n  id: ID!\n}'
    )
    assert toy_definition(toy, "people", "Node").startswith('interface Node @key(fields: "id")')
    assert toy_definition(toy, "notes", "Node") == "interface Node {\n  id: ID!\n}"
    # finder defines no Node type: Node is an interface object there
    assert toy_definition(toy, "finder", "Node") == (
        'type Node @key(fields: "id") @interfaceObject {\n  id: ID!\n}'
    )
    assert "Person" not in toy.sdl("finder")


def test_value_types_of_several_subgraphs_are_shareable(toy: Federation) -> None:
    for subgraph in ("people", "notes"):
        assert toy_definition(toy, subgraph, "PageInfo").startswith("type PageInfo @shareable {")
    # returned by one subgraph only: no @shareable
    assert toy_definition(toy, "people", "PersonConnection").startswith("type PersonConnection {")
    assert '"@shareable"' in toy.sdl("notes").splitlines()[0]


def test_a_type_no_field_uses_is_held_by_the_first_subgraph(toy: Federation) -> None:
    assert toy_definition(toy, "people", "Mood") == "enum Mood {\n  CALM\n}"
    assert "Mood" not in toy.sdl("notes") and "Mood" not in toy.sdl("finder")


async def test_one_of_inputs_stay_enforced_by_the_subgraph(toy: Federation) -> None:
    # Composition drops @oneOf from the API schema (so does print_supergraph): the
    # router does not check it, the subgraph must.
    assert "@oneOf" not in toy.sdl("notes")
    both = await toy.schema("notes").execute('{ findNote(ref: {id: "1", text: "x"}) { id } }')
    assert both.errors and "exactly one" in both.errors[0].message.lower()
    one = await toy.schema("notes").execute('{ findNote(ref: {text: "x"}) { id } }')
    assert one.errors is None and one.data == {"findNote": None}


async def test_contributing_subgraph_resolves_its_fields_on_the_entity(toy: Federation) -> None:
    query = """query($reps: [_Any!]!) { _entities(representations: $reps) {
        ... on Person { id notes { text } } } }"""
    reps = [{"__typename": "Person", "id": encode_id("Person", 2)}]
    result = await toy.schema("notes").execute(query, variable_values={"reps": reps})
    assert result.errors is None
    assert result.data == {
        "_entities": [{"id": encode_id("Person", 2), "notes": [{"text": "about Grace"}]}]
    }


async def test_node_owner_resolves_node_representations(toy: Federation) -> None:
    query = """query($reps: [_Any!]!) { _entities(representations: $reps) {
        __typename ... on Person { name } ... on Note { id } } }"""
    reps = [
        {"__typename": "Node", "id": encode_id("Person", 1)},
        {"__typename": "Node", "id": encode_id("Note", 3)},
        {"__typename": "Note", "id": encode_id("Note", 4)},
    ]
    result = await toy.schema("people").execute(query, variable_values={"reps": reps})
    assert result.errors is None
    assert result.data == {
        "_entities": [
            {"__typename": "Person", "name": "Ada"},
            {"__typename": "Note", "id": encode_id("Note", 3)},
            {"__typename": "Note", "id": encode_id("Note", 4)},
        ]
    }


Thing = Annotated[Person | Note, strawberry.union("Thing")]


@strawberry.type
class ThingsQuery:
    @strawberry.field
    def things(self) -> list[Thing]:
        return [Person(id=strawberry.ID(encode_id("Person", 1)), name="Ada")]


async def test_a_union_of_types_owned_elsewhere_resolves_full_objects() -> None:
    """A subgraph returning another domain's object (search hits: posts, users) in a
    union, where that type is only a stub: the object resolves to the stub's type."""
    query = strawberry.tools.merge_types("Query", (PeopleQuery, NodeQuery, NotesQuery, ThingsQuery))
    monolith = strawberry.federation.Schema(query=query, types=[Person, Note])
    domains = {**TOY_DOMAINS, "finder": Domain("finder", queries=(ThingsQuery,))}
    things = Federation(monolith, domains).schema("finder")
    found = await things.execute("{ things { __typename ... on Person { id } } }")
    assert found.errors is None
    assert found.data == {"things": [{"__typename": "Person", "id": encode_id("Person", 1)}]}


async def test_interface_object_subgraph_returns_node_stubs(toy: Federation) -> None:
    finder = toy.schema("finder")
    found = await finder.execute(
        "query($id: ID!) { find(id: $id) { __typename id } }",
        variable_values={"id": encode_id("Person", 1)},
    )
    assert found.errors is None
    assert found.data == {"find": {"__typename": "Node", "id": encode_id("Person", 1)}}
    # in the monolith the same field returns the person
    monolith = await toy_monolith().execute(
        "query($id: ID!) { find(id: $id) { __typename ... on Person { name } } }",
        variable_values={"id": encode_id("Person", 1)},
    )
    assert monolith.data == {"find": {"__typename": "Person", "name": "Ada"}}


def test_ownership_mistakes_are_reported_by_name() -> None:
    monolith = toy_monolith()
    unowned = {**TOY_DOMAINS, "notes": Domain("notes", queries=(NotesQuery,))}
    with pytest.raises(ValueError, match=r"\['Note'\] are owned by no domain"):
        Federation(monolith, unowned)
    twice = {**TOY_DOMAINS, "finder": Domain("finder", queries=(FinderQuery,), owns=(Note,))}
    with pytest.raises(ValueError, match="Note is owned by both"):
        Federation(monolith, twice)
    bad_field = {**TOY_DOMAINS, "finder": Domain("finder", contributes={"Person": ("age",)})}
    with pytest.raises(ValueError, match="Person.age: no such field"):
        Federation(monolith, bad_field)


def test_every_node_type_is_an_owned_entity_loadable_by_reference() -> None:
    """`node(id)` and the Node entity interface reach a type only through its reference."""
    federation = Federation(_monolith(), DOMAINS)
    schema = federation.monolith._schema
    node = schema.get_type("Node")
    for gtype in schema.get_possible_types(node):  # type: ignore[arg-type]
        assert gtype.name in federation.ownership.owner, f"{gtype.name} implements Node: own it"
        concrete = federation.monolith.schema_converter.type_map[gtype.name]
        assert hasattr(concrete.definition.origin, "resolve_reference"), gtype.name  # type: ignore[union-attr]


def _monolith() -> strawberry.Schema:
    from schema.supergraph import supergraph

    return supergraph()


# ───────────────────────── interop: Apollo composition and gateway ─────────────────────────


def compose(node: str, sdls: dict[str, str]) -> str:
    """The API schema composed by @apollo/composition; fails with its errors."""
    result = subprocess.run(
        [node, "compose.mjs", "-"],
        input=json.dumps(sdls),
        capture_output=True,
        text=True,
        cwd=INTEROP,
        timeout=120,
    )
    assert result.returncode == 0, f"composition failed:\n{result.stderr}"
    return result.stdout


def test_subgraphs_compose_into_the_monolith_api_schema() -> None:
    node = interop_node()
    composed = compose(node, {name: print_subgraph(name) for name in DOMAINS})
    assert sorted_sdl(composed) == sorted_sdl(print_supergraph())


def test_toy_subgraphs_with_contributions_compose_into_their_monolith(toy: Federation) -> None:
    node = interop_node()
    composed = compose(node, {name: toy.sdl(name) for name in TOY_DOMAINS})
    api = print_definitions(api_definitions(toy.monolith._schema))
    assert sorted_sdl(composed) == sorted_sdl(api)


def test_composition_errors_fail_the_compose_script() -> None:
    node = interop_node()
    broken = print_subgraph("media").replace('@key(fields: "id", resolvable: false)', "")
    result = subprocess.run(
        [node, "compose.mjs", "-"],
        input=json.dumps({"users": print_subgraph("users"), "media": broken}),
        capture_output=True,
        text=True,
        cwd=INTEROP,
        timeout=120,
    )
    assert result.returncode == 1
    assert "composition error" in result.stderr


async def seed(database_url: str) -> dict[str, str]:
    """alice with a MediaRow as avatar, written straight through the store and table."""
    from datasources.media.tables import MediaRow
    from datasources.migrate import upgrade
    from datasources.registry import build_stores
    from datasources.users.store import ProfileChanges

    await upgrade(database_url)
    stores = build_stores(database_url)
    try:
        user = await stores.users.create("socialink", "alice", "alice@example.com", "-", "Alice")
        async with stores.db.transaction() as session:
            row = MediaRow(
                platform="socialink",
                owner_id=user.id,
                kind="IMAGE",
                mime_type="image/jpeg",
                size_bytes=1234,
                sha256="ab" * 32,
                width=640,
                height=480,
                blob_key="seed/alice.jpg",
            )
            session.add(row)
            await session.flush()
            media_id = row.id
        await stores.users.update_profile(user.id, ProfileChanges(avatar_media_id=media_id))
        return {"user": encode_id("User", user.id), "media": encode_id("Media", media_id)}
    finally:
        await stores.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """users and media subgraphs as processes, a gateway before them, and the monolith."""
    node = interop_node()
    root = tmp_path_factory.mktemp("federation")
    database_url = f"sqlite+aiosqlite:///{root / 'entativa.db'}"
    ids = asyncio.run(seed(database_url))
    env = environment(
        database_url=database_url,
        data_dir=str(root / "data"),
        secret_key="interop-secret-key-that-is-long-enough-for-hs256",
        log_level="WARNING",
    )
    with launch(node, env, root, ("users", "media")) as running:
        running.ids = ids
        yield running


def post(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(url, json={"query": query, "variables": variables}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


CROSSING = """
query($media: ID!, $user: ID!) {
  user(username: "alice") { id username avatar { id url mimeType owner { username } } }
  media: node(id: $media) { __typename id ... on Media { url mimeType width owner { username } } }
  person: node(id: $user) { __typename id ... on User { displayName avatar { mimeType } } }
}
"""


def test_gateway_answers_a_query_across_subgraphs_like_the_monolith(deployment: Deployment) -> None:
    variables = {"media": deployment.ids["media"], "user": deployment.ids["user"]}
    through_gateway = post(deployment.gateway, CROSSING, variables)
    from_monolith = post(deployment.url("monolith"), CROSSING, variables)
    assert "errors" not in from_monolith, from_monolith
    assert through_gateway == from_monolith
    assert from_monolith["data"]["user"]["avatar"]["owner"] == {"username": "alice"}
    assert from_monolith["data"]["media"]["__typename"] == "Media"
    assert from_monolith["data"]["person"]["avatar"] == {"mimeType": "image/jpeg"}


def test_gateway_and_monolith_agree_on_missing_objects(deployment: Deployment) -> None:
    query = """query($user: ID!, $media: ID!) {
      user(username: "nobody") { id }
      someone: node(id: $user) { id }
      something: node(id: $media) { id ... on Media { altText } }
    }"""
    variables = {"user": encode_id("User", 999_999), "media": encode_id("Media", 999_999)}
    through_gateway = post(deployment.gateway, query, variables)
    from_monolith = post(deployment.url("monolith"), query, variables)
    assert from_monolith["data"] == {"user": None, "someone": None, "something": None}
    assert through_gateway["data"] == from_monolith["data"]
