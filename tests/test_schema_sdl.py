"""The printed schemas: the API schema clients see, and each subgraph's federated SDL."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLInterfaceType,
    GraphQLObjectType,
    build_schema,
    parse,
    print_ast,
)

from schema.domains import DOMAINS
from schema.subgraphs import FEDERATION_URL, print_subgraph
from schema.supergraph import print_supergraph
from server.cli import main as entativa

ROOT = Path(__file__).resolve().parent.parent


def definition(sdl: str, name: str) -> str:
    """One type's definition as printed, directives included."""
    for node in parse(sdl).definitions:
        if getattr(getattr(node, "name", None), "value", None) == name:
            return print_ast(node)
    raise AssertionError(f"{name} is not defined in the SDL")


def test_schema_graphql_is_the_printed_supergraph() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == print_supergraph() + "\n", (
        "schema.graphql is stale: regenerate it with `entativa schema print > schema.graphql`"
    )


def test_api_schema_has_no_federation_plumbing() -> None:
    sdl = print_supergraph()
    schema = build_schema(sdl)
    leaked = [n for n in schema.type_map if n.startswith("_") and not n.startswith("__")]
    leaked += [n for n in schema.type_map if n.startswith(("link__", "federation__"))]
    assert leaked == []
    assert {"_service", "_entities"}.isdisjoint(schema.query_type.fields)  # type: ignore[union-attr]
    assert [d.name for d in schema.directives if d.name in {"key", "link", "shareable"}] == []
    assert "@key" not in sdl and "@link" not in sdl


def test_api_schema_serves_the_users_and_media_core() -> None:
    schema = build_schema(print_supergraph())
    node = schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    for name in ("User", "Media"):
        gtype = schema.get_type(name)
        assert isinstance(gtype, GraphQLObjectType)
        assert node in gtype.interfaces
    query = schema.query_type
    assert query is not None
    assert str(query.fields["node"].type) == "Node"
    assert str(query.fields["node"].args["id"].type) == "ID!"
    assert str(query.fields["media"].type) == "Media"
    assert str(query.fields["user"].type) == "User"


def test_cli_prints_the_supergraph_and_each_subgraph(capsys: pytest.CaptureFixture[str]) -> None:
    entativa(["schema", "print"])
    assert capsys.readouterr().out == print_supergraph() + "\n"
    entativa(["schema", "print", "--subgraph", "media"])
    assert capsys.readouterr().out == print_subgraph("media") + "\n"


def test_unknown_subgraph_is_refused_with_the_known_names() -> None:
    with pytest.raises(LookupError, match="users, media"):
        print_subgraph("nope")
    with pytest.raises(SystemExit, match="no subgraph 'nope': one of users"):
        entativa(["schema", "print", "--subgraph", "nope"])


@pytest.mark.parametrize("name", list(DOMAINS))
def test_subgraph_links_federation_2_3_and_parses(name: str) -> None:
    sdl = print_subgraph(name)
    first = sdl.splitlines()[0]
    assert first.startswith(f'extend schema @link(url: "{FEDERATION_URL}", import: [')
    assert FEDERATION_URL.endswith("v2.3")  # the lowest with entity interfaces
    # no plumbing: composition adds _service/_entities itself
    assert "_service" not in sdl and "_entities" not in sdl and "scalar _Any" not in sdl


def test_users_subgraph_owns_user_and_the_node_entity_interface() -> None:
    sdl = print_subgraph("users")
    assert definition(sdl, "Node").startswith('interface Node @key(fields: "id") {')
    user = definition(sdl, "User")
    assert user.startswith('type User implements Node @key(fields: "id") {')
    assert "username: String!" in user and "avatar: Media" in user
    assert "node(id: ID!): Node" in definition(sdl, "Query")
    assert "media(id: ID!)" not in definition(sdl, "Query")


def test_users_subgraph_has_a_resolvable_id_only_stub_of_every_other_node_type() -> None:
    sdl = print_subgraph("users")
    # Composition requires the owner of an entity interface to resolve each implementation.
    assert (
        definition(sdl, "Media") == 'type Media implements Node @key(fields: "id") {\n  id: ID!\n}'
    )


def test_media_subgraph_owns_media_and_stubs_user_unresolvable() -> None:
    sdl = print_subgraph("media")
    media = definition(sdl, "Media")
    assert media.startswith('type Media implements Node @key(fields: "id") {')
    assert "owner: User!" in media and "url: String!" in media
    user = definition(sdl, "User")
    assert user == 'type User implements Node @key(fields: "id", resolvable: false) {\n  id: ID!\n}'
    # Node is the users subgraph's: here a plain interface, implemented as in the monolith
    assert definition(sdl, "Node") == "interface Node {\n  id: ID!\n}"
    assert "user(username" not in definition(sdl, "Query")
