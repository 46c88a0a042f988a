"""One domain as a federated subgraph, derived from the monolith by ownership.

There is one schema definition: the monolith (`schema.supergraph.supergraph()`).
A subgraph is not a second definition of its types but a filtered rebuild of
the monolith's graphql-core schema, following what `schema.domains` declares:

- its domain's root fields; the types it owns, with every field except those
  other domains contribute; the value types they use (PageInfo, connections,
  enums, inputs) as they are;
- a stub (key fields, plus what this domain contributes) of each entity
  another domain owns;
- `Node`, an entity interface (Federation 2.3): `@key` in the subgraph that
  owns it (users), which therefore holds a resolvable stub of every type
  implementing it, whatever domain owns that type. A subgraph that defines
  Node types of its own (media: Media) declares Node as the plain interface
  they implement: composition forbids `@interfaceObject` in a subgraph that
  defines an implementation (INTERFACE_OBJECT_USAGE_ERROR). A subgraph that
  uses Node but defines none of its types sees it as `@interfaceObject`. A
  new domain's Node type needs nothing more than being owned: the owner of
  Node gets its stub, `node(id)` reaches it through its `resolve_reference`;
- value object types that several subgraphs return (PageInfo, connections)
  are `@shareable`; a monolith type no subgraph uses (a scalar no field uses
  yet) is held by the first domain's subgraph, so composition keeps it;
- `_service { sdl }` (this subgraph's SDL, with Federation 2 directives) and
  `_entities` over the entities it can resolve: its own, those it
  contributes to (both through the owner class's `resolve_reference`, i.e.
  the DataLoaders), and key-only stubs.

The rebuilt types keep the monolith's field resolvers and type resolvers, so a
subgraph runs exactly the monolith's code. Only stubs are new: an
`EntityStub` answers its key fields and resolves to its type by name. A shallow
copy of the monolith's strawberry Schema, whose `_schema` is the rebuilt one,
executes it under strawberry's ASGI view (strawberry's parsing, validation,
extensions and `Info`).

The rebuild follows graphql-core's `lexicographic_sort_schema`: every output
type is created anew and type references are mapped by name to the new
objects. Enums, scalars and input types reference no output type and are
shared with the monolith as they are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

import strawberry
from graphql import (
    BooleanValueNode,
    ConstArgumentNode,
    ConstDirectiveNode,
    ConstListValueNode,
    ConstValueNode,
    DefinitionNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    GraphQLType,
    GraphQLUnionType,
    InterfaceTypeDefinitionNode,
    NameNode,
    ObjectTypeDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
    default_field_resolver,
    get_named_type,
    is_input_object_type,
    is_introspection_type,
    is_specified_scalar_type,
    validate_schema,
)
from graphql.execution import default_type_resolver
from strawberry.extensions import SchemaExtension
from strawberry.federation.schema_directives import Key
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryObjectDefinition, get_object_definition

from resolvers.errors import BadUserInput
from schema.domains import DOMAINS, Domain
from schema.node import STUB_TYPES_ATTRIBUTE, EntityStub, resolve_node
from schema.supergraph import (
    FEDERATION_DIRECTIVES,
    api_definitions,
    is_federation_type,
    print_definitions,
    replace_node,
    supergraph,
)
from server.cost import cost_link, sdl_directives

FEDERATION_VERSION = "v2.3"  # the lowest with @interfaceObject and @key on interfaces
FEDERATION_URL = f"https://specs.apollo.dev/federation/{FEDERATION_VERSION}"
KEY_FIELD = "id"  # every entity's key (ARCHITECTURE.md: keep entity keys to `id`)
ROOT_PARTS = {"query": "queries", "mutation": "mutations", "subscription": "subscriptions"}


class UnknownSubgraph(LookupError):
    """No domain has this name."""


class Shape(Enum):
    """How a named type appears in one subgraph."""

    FULL = "full"  # defined here (owned entity, root, value type)
    STUB = "stub"  # another domain's entity: key fields and what this domain contributes
    INTERFACE_OBJECT = "interface_object"  # another domain's entity interface


# ─────────────────────────── ownership ───────────────────────────


@dataclass(frozen=True)
class Ownership:
    """Who defines what: read from the domains and checked against the monolith."""

    keys: Mapping[str, tuple[str, ...]]  # entity (object or interface) -> key fields
    owner: Mapping[str, str]  # entity -> the domain that owns it
    interfaces: frozenset[str]  # the entity interfaces (Node)
    contributed: Mapping[str, Mapping[str, str]]  # entity -> field -> contributing domain
    root_fields: Mapping[str, Mapping[str, str]]  # root type -> field -> domain
    owned_types: Mapping[str, tuple[str, ...]]  # domain -> the types it declares

    def contributions(self, domain: str, entity: str) -> set[str]:
        return {f for f, d in self.contributed.get(entity, {}).items() if d == domain}


def _entity_keys(monolith: strawberry.Schema) -> dict[str, tuple[str, ...]]:
    """Key fields of every object or interface type that carries `@key`."""
    keys: dict[str, tuple[str, ...]] = {}
    for name, concrete in monolith.schema_converter.type_map.items():
        definition = concrete.definition
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        for directive in definition.directives or ():
            if isinstance(directive, Key):
                # strawberry does not camel-case key field sets, and stubs carry only the id
                if str(directive.fields).split() != [KEY_FIELD]:
                    raise ValueError(f'{name}: keep entity keys to @key(fields: "id")')
                keys[name] = (KEY_FIELD,)
    return keys


def _field_names(monolith: strawberry.Schema, item: type | str) -> list[str]:
    """GraphQL names of a mixin's fields (or the one name given)."""
    if isinstance(item, str):
        return [item]
    definition = get_object_definition(item, strict=True)
    return [monolith.config.name_converter.from_field(f) for f in definition.fields]


def _owners(
    monolith: strawberry.Schema, domains: Mapping[str, Domain], keys: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    names: dict[Any, str] = {}
    for name, concrete in monolith.schema_converter.type_map.items():
        names.setdefault(getattr(concrete.definition, "origin", None), name)
    owner: dict[str, str] = {}
    owned: dict[str, tuple[str, ...]] = {}
    for domain in domains.values():
        owned[domain.name] = tuple(names[t] for t in domain.owns)
        for name in owned[domain.name]:
            if name in keys and owner.setdefault(name, domain.name) != domain.name:
                raise ValueError(f"entity {name} is owned by both {owner[name]} and {domain.name}")
    if unowned := sorted(set(keys) - set(owner)):
        raise ValueError(
            f"entities {unowned} are owned by no domain: add each to `owns` of its Domain "
            "in schema/domains.py"
        )
    return owner, owned


def _contributions(
    monolith: strawberry.Schema, domains: Mapping[str, Domain], owner: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    contributed: dict[str, dict[str, str]] = {}
    for domain in domains.values():
        for entity, items in domain.contributes.items():
            entity_type = monolith._schema.get_type(entity)
            if entity not in owner or not isinstance(entity_type, GraphQLObjectType):
                raise ValueError(f"{domain.name} contributes to {entity}, which is no entity type")
            if owner[entity] == domain.name:
                raise ValueError(f"{domain.name} contributes to {entity}, which it owns")
            for name in (n for item in items for n in _field_names(monolith, item)):
                if name not in entity_type.fields:
                    raise ValueError(f"{domain.name} contributes {entity}.{name}: no such field")
                contributed.setdefault(entity, {})[name] = domain.name
    return contributed


def _root_fields(
    monolith: strawberry.Schema, domains: Mapping[str, Domain]
) -> dict[str, dict[str, str]]:
    root_fields: dict[str, dict[str, str]] = {}
    for kind, part in ROOT_PARTS.items():
        root = getattr(monolith._schema, f"{kind}_type")
        fields = root_fields.setdefault(root.name if root else kind.title(), {})
        for domain in domains.values():
            for cls in getattr(domain, part):
                fields.update(dict.fromkeys(_field_names(monolith, cls), domain.name))
    return root_fields


def read_ownership(monolith: strawberry.Schema, domains: Mapping[str, Domain]) -> Ownership:
    """Ownership as `domains` declares it; a ValueError says what is inconsistent."""
    keys = _entity_keys(monolith)
    owner, owned = _owners(monolith, domains, keys)
    interfaces = frozenset(
        n for n in keys if isinstance(monolith._schema.get_type(n), GraphQLInterfaceType)
    )
    contributed = _contributions(monolith, domains, owner)
    return Ownership(keys, owner, interfaces, contributed, _root_fields(monolith, domains), owned)


# ───────────────────────────── plan ─────────────────────────────


@dataclass
class Plan:
    """What one subgraph holds: each named type's shape, kept fields and interfaces."""

    name: str
    shapes: dict[str, Shape] = field(default_factory=dict)
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    interfaces: dict[str, tuple[str, ...]] = field(default_factory=dict)
    by_reference: set[str] = field(default_factory=set)  # `_entities` loads these
    as_stub: set[str] = field(default_factory=set)  # `_entities` answers {__typename, id}
    owned_interfaces: set[str] = field(default_factory=set)  # `_entities` resolves by node(id)

    @property
    def resolvable(self) -> set[str]:
        return self.by_reference | self.as_stub | self.owned_interfaces

    @property
    def stub_types(self) -> frozenset[str]:
        return frozenset(n for n, s in self.shapes.items() if s is not Shape.FULL)


def _builtin(gtype: GraphQLNamedType) -> bool:
    return is_introspection_type(gtype) or is_specified_scalar_type(gtype)


class _Planner:
    """Walks the monolith from one domain's roots to every type that subgraph uses."""

    def __init__(
        self, schema: GraphQLSchema, ownership: Ownership, domain: str, extra: Iterable[str]
    ) -> None:
        self.schema = schema
        self.own = ownership
        self.plan = Plan(domain)
        self.extra = list(extra)

    def shape(self, name: str) -> Shape:
        owner = self.own.owner.get(name)
        if owner is None or owner == self.plan.name:
            return Shape.FULL
        return Shape.INTERFACE_OBJECT if name in self.own.interfaces else Shape.STUB

    def kept_fields(self, gtype: GraphQLObjectType | GraphQLInterfaceType) -> tuple[str, ...]:
        name, domain = gtype.name, self.plan.name
        if name in self.own.root_fields:
            return tuple(f for f in gtype.fields if self.own.root_fields[name].get(f) == domain)
        if self.plan.shapes.get(name, self.shape(name)) is Shape.FULL:
            others = self.own.contributed.get(name, {})
            return tuple(f for f in gtype.fields if others.get(f, domain) == domain)
        mine = self.own.contributions(domain, name)
        return tuple(f for f in gtype.fields if f in self.own.keys[name] or f in mine)

    def starts(self) -> list[str]:
        domain = self.plan.name
        roots = [
            root.name
            for kind in ROOT_PARTS
            if (root := getattr(self.schema, f"{kind}_type")) is not None
            and (kind == "query" or domain in self.own.root_fields[root.name].values())
        ]
        contributed = [e for e, fs in self.own.contributed.items() if domain in fs.values()]
        return [*roots, *self.own.owned_types.get(domain, ()), *contributed, *self.extra]

    def run(self) -> Plan:
        pending = self.starts()
        while pending:
            self.walk(pending)
            pending = self.settle_entity_interfaces()
        self.link_interfaces()
        self.entity_roles()
        return self.plan

    def walk(self, pending: list[str]) -> None:
        while pending:
            gtype = self.schema.get_type(name := pending.pop())
            if name in self.plan.shapes or gtype is None or _builtin(gtype):
                continue
            self.plan.shapes[name] = self.shape(name)
            pending += self.visit(gtype)

    def visit(self, gtype: GraphQLNamedType) -> list[str]:
        """Record a type's kept fields; return the names of the types it uses."""
        if isinstance(gtype, GraphQLObjectType | GraphQLInterfaceType):
            kept = self.kept_fields(gtype)
            self.plan.fields[gtype.name] = kept
            used = [get_named_type(gtype.fields[f].type).name for f in kept]
            used += [
                get_named_type(a.type).name for f in kept for a in gtype.fields[f].args.values()
            ]
            used += [i.name for i in gtype.interfaces]
            if isinstance(gtype, GraphQLInterfaceType) and self.shape(gtype.name) is Shape.FULL:
                used += [t.name for t in self.schema.get_possible_types(gtype)]
            return used
        if isinstance(gtype, GraphQLUnionType):
            return [t.name for t in gtype.types]
        if is_input_object_type(gtype):
            return [get_named_type(f.type).name for f in gtype.fields.values()]  # type: ignore[attr-defined]
        return []

    def settle_entity_interfaces(self) -> list[str]:
        """Another domain's entity interface: `@interfaceObject` only where no type implements it.

        Composition forbids a subgraph that defines an implementation of an
        entity interface to declare it `@interfaceObject`
        (INTERFACE_OBJECT_USAGE_ERROR); there it is a plain interface, which
        its types implement as in the monolith. Returns the types its fields use.
        """
        used: list[str] = []
        for name, shape in list(self.plan.shapes.items()):
            interface = self.schema.get_type(name)
            if shape is not Shape.INTERFACE_OBJECT or not isinstance(
                interface, GraphQLInterfaceType
            ):
                continue
            implementations = {t.name for t in self.schema.get_possible_types(interface)}
            if implementations & self.plan.shapes.keys():
                self.plan.shapes[name] = Shape.FULL
                used += self.visit(interface)
        return used

    def link_interfaces(self) -> None:
        """Keep `implements I` where I is an interface here and the type has I's fields."""
        for name, shape in self.plan.shapes.items():
            gtype = self.schema.get_type(name)
            if shape is Shape.INTERFACE_OBJECT or not isinstance(
                gtype, GraphQLObjectType | GraphQLInterfaceType
            ):
                continue
            kept = set(self.plan.fields[name])
            self.plan.interfaces[name] = tuple(
                i.name
                for i in gtype.interfaces
                if self.plan.shapes.get(i.name) is Shape.FULL
                and set(self.plan.fields[i.name]) <= kept
            )

    def entity_roles(self) -> None:
        plan = self.plan
        for name, shape in plan.shapes.items():
            if name not in self.own.keys:
                continue
            if shape is Shape.INTERFACE_OBJECT:
                plan.as_stub.add(name)
            elif name in self.own.interfaces:
                if self.own.owner[name] == plan.name:
                    plan.owned_interfaces.add(name)
            elif shape is Shape.FULL or self.own.contributions(plan.name, name):
                plan.by_reference.add(name)
        for name, shape in plan.shapes.items():
            # the owner of an entity interface resolves each implementation by its key
            implemented = set(plan.interfaces.get(name, ()))
            if (
                shape is Shape.STUB
                and name not in plan.by_reference
                and implemented & plan.owned_interfaces
            ):
                plan.as_stub.add(name)


def plan_subgraph(
    schema: GraphQLSchema, ownership: Ownership, domain: str, extra: Iterable[str] = ()
) -> Plan:
    """The subgraph of `domain`; `extra` names types to hold even if nothing uses them."""
    return _Planner(schema, ownership, domain, extra).run()


# ─────────────────────────── rebuild ───────────────────────────


def _stub_aware_resolver(name: str, resolve: Callable[..., Any] | None) -> Callable[..., Any]:
    def resolver(source: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
        if isinstance(source, EntityStub):
            return getattr(source, name)
        return (resolve or default_field_resolver)(source, info, **args)

    return resolver


def _stub_aware_is_type_of(
    name: str, is_type_of: Callable[..., Any] | None
) -> Callable[..., Any] | None:
    if is_type_of is None:
        return None

    def check(value: Any, info: GraphQLResolveInfo) -> Any:
        if isinstance(value, EntityStub):
            return value.typename == name
        return is_type_of(value, info)

    return check


def _stub_aware_type_resolver(
    resolve_type: Callable[..., Any] | None, monolith_type: GraphQLInterfaceType | GraphQLUnionType
) -> Callable[..., Any]:
    """A stub names its type; anything else is resolved against the monolith's abstract
    type (strawberry's resolver checks the object's type is among the abstract type's
    members, which are the monolith's: a rebuilt member would never match), by name."""

    def resolve(value: Any, info: GraphQLResolveInfo, _abstract: Any) -> Any:
        if isinstance(value, EntityStub):
            return value.typename
        return (resolve_type or default_type_resolver)(value, info, monolith_type)

    return resolve


def _entity_type_name(value: Any, info: GraphQLResolveInfo, abstract: Any) -> Any:
    """`_Entity`: a stub names its type; a strawberry object its definition."""
    if isinstance(value, EntityStub):
        return value.typename
    definition = get_object_definition(value)
    if definition is not None:
        return definition.name
    return default_type_resolver(value, info, abstract)


class _Builder:
    """Rebuilds the monolith's types for one plan, mapping references by name."""

    def __init__(self, monolith: strawberry.Schema, plan: Plan, sdl: Callable[[], str]) -> None:
        self.monolith = monolith
        self.source: GraphQLSchema = monolith._schema
        self.plan = plan
        self.sdl = sdl
        self.types: dict[str, GraphQLNamedType] = {}

    def named(self, name: str) -> GraphQLNamedType:
        if name not in self.types:
            self.types[name] = self.build(name)
        return self.types[name]

    def ref(self, gtype: GraphQLType) -> Any:
        if isinstance(gtype, GraphQLNonNull):
            return GraphQLNonNull(self.ref(gtype.of_type))
        if isinstance(gtype, GraphQLList):
            return GraphQLList(self.ref(gtype.of_type))
        return self.named(gtype.name)  # type: ignore[attr-defined]

    def build(self, name: str) -> GraphQLNamedType:
        source = self.source.get_type(name)
        assert source is not None, name
        shape = self.plan.shapes.get(name, Shape.FULL)
        if shape is Shape.INTERFACE_OBJECT:
            assert isinstance(source, GraphQLInterfaceType)
            return GraphQLObjectType(
                name, lambda: self.fields(source, stub=True), description=source.description
            )
        if isinstance(source, GraphQLObjectType):
            return self.object_type(source, stub=shape is Shape.STUB or name in self.plan.as_stub)
        if isinstance(source, GraphQLInterfaceType):
            interface: dict[str, Any] = {
                **source.to_kwargs(),
                "fields": lambda: self.fields(source, stub=False),
                "interfaces": lambda: [self.named(i) for i in self.plan.interfaces[name]],
                "resolve_type": _stub_aware_type_resolver(source.resolve_type, source),
            }
            return GraphQLInterfaceType(**interface)
        if isinstance(source, GraphQLUnionType):
            members = [t.name for t in source.types if t.name in self.plan.shapes]
            union: dict[str, Any] = {
                **source.to_kwargs(),
                "types": lambda: [self.named(m) for m in members],
                "resolve_type": _stub_aware_type_resolver(source.resolve_type, source),
            }
            return GraphQLUnionType(**union)
        return source  # enums, scalars, inputs: no output types inside

    def object_type(self, source: GraphQLObjectType, stub: bool) -> GraphQLObjectType:
        name = source.name
        is_type_of = source.is_type_of
        kwargs: dict[str, Any] = {
            **source.to_kwargs(),
            "fields": lambda: self.fields(source, stub),
            "interfaces": lambda: [self.named(i) for i in self.plan.interfaces[name]],
            "is_type_of": _stub_aware_is_type_of(name, is_type_of) if stub else is_type_of,
        }
        if source is self.source.query_type:
            kwargs["fields"] = lambda: {**self.fields(source, stub), **self.federation_fields()}
        return GraphQLObjectType(**kwargs)

    def fields(
        self, source: GraphQLObjectType | GraphQLInterfaceType, stub: bool
    ) -> dict[str, GraphQLField]:
        fields = {}
        for name in self.plan.fields[source.name]:
            original = source.fields[name]
            resolve = original.resolve
            if stub and name == KEY_FIELD:  # the one field an EntityStub carries
                resolve = _stub_aware_resolver(name, resolve)
            fields[name] = GraphQLField(
                **{**original.to_kwargs(), "type_": self.ref(original.type), "resolve": resolve}
            )
        return fields

    def federation_fields(self) -> dict[str, GraphQLField]:
        """`_entities` (when this subgraph resolves any entity) and `_service`."""
        sdl = self.sdl
        service = GraphQLObjectType(
            "_Service", {"sdl": GraphQLField(GraphQLString, resolve=lambda *_: sdl())}
        )
        fields = {"_service": GraphQLField(GraphQLNonNull(service), resolve=lambda *_: {})}
        entities = self.plan.resolvable
        if not entities:
            return fields
        any_scalar = cast(
            GraphQLScalarType, self.source.get_type("_Any") or GraphQLScalarType("_Any")
        )
        union = GraphQLUnionType(
            "_Entity",
            lambda: [
                cast(GraphQLObjectType, self.named(n))
                for n in sorted(entities - self.plan.owned_interfaces)
            ],
            resolve_type=_entity_type_name,
        )
        representations = GraphQLNonNull(GraphQLList(GraphQLNonNull(any_scalar)))
        return {
            "_entities": GraphQLField(
                GraphQLNonNull(GraphQLList(union)),
                args={"representations": GraphQLArgument(representations)},
                resolve=_EntitiesResolver(self.monolith, self.plan),
            ),
            **fields,
        }

    def schema(self) -> GraphQLSchema:
        roots = {
            kind: self.named(root.name) if root.name in self.plan.shapes else None
            for kind in ROOT_PARTS
            if (root := getattr(self.source, f"{kind}_type")) is not None
        }
        directives = [d for d in self.source.directives if d.name not in FEDERATION_DIRECTIVES]
        schema = GraphQLSchema(
            **roots,  # type: ignore[arg-type]
            types=[self.named(n) for n in self.plan.shapes],
            directives=directives,
        )
        if errors := validate_schema(schema):
            raise ValueError(f"subgraph {self.plan.name}: " + "; ".join(e.message for e in errors))
        return schema


class _EntitiesResolver:
    """`_entities`: each representation by the owner's `resolve_reference`, or as a stub.

    The representations resolve concurrently (graphql-core gathers the list), so
    the `resolve_reference`s that read through DataLoaders share one batch.
    """

    def __init__(self, monolith: strawberry.Schema, plan: Plan) -> None:
        self.monolith = monolith
        self.plan = plan
        field = (
            monolith._schema.query_type.fields.get("_entities")
            if monolith._schema.query_type
            else None
        )
        self.field = (
            field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF) if field else None
        )

    def __call__(
        self, _root: Any, info: GraphQLResolveInfo, representations: list[Any]
    ) -> list[Any]:
        strawberry_info = self.monolith.config.info_class(_raw_info=info, _field=self.field)  # type: ignore[arg-type]
        return [self.one(strawberry_info, dict(r)) for r in representations]

    def one(self, info: Any, representation: dict[str, Any]) -> Any:
        typename = representation.get("__typename")
        key = representation.get("id")
        if typename in self.plan.by_reference:
            return self.monolith.entities_resolver(info, [representation])[0]  # type: ignore[attr-defined]
        if typename not in self.plan.resolvable:
            message = f"the {self.plan.name} subgraph does not resolve {typename} entities"
            return BadUserInput(message, field="representations")
        if not isinstance(key, str):
            return BadUserInput(
                f"a {typename} representation needs its id", field="representations"
            )
        if typename in self.plan.owned_interfaces:
            return resolve_node(info, key)
        return EntityStub(typename, key)


# ──────────────────────────── SDL ────────────────────────────


def _directive(name: str, **arguments: ConstValueNode) -> ConstDirectiveNode:
    args = tuple(ConstArgumentNode(name=NameNode(value=k), value=v) for k, v in arguments.items())
    return ConstDirectiveNode(name=NameNode(value=name), arguments=args)


def _key(fields: Iterable[str], resolvable: bool = True) -> ConstDirectiveNode:
    arguments: dict[str, ConstValueNode] = {"fields": StringValueNode(value=" ".join(fields))}
    if not resolvable:
        arguments["resolvable"] = BooleanValueNode(value=False)
    return _directive("key", **arguments)


def _link(imports: Iterable[str]) -> SchemaExtensionNode:
    names = ConstListValueNode(
        values=tuple(StringValueNode(value=f"@{n}") for n in sorted(imports))
    )
    link = _directive("link", url=StringValueNode(value=FEDERATION_URL), **{"import": names})
    return SchemaExtensionNode(directives=(link,), operation_types=())


def _federation_directives(
    name: str, plan: Plan, ownership: Ownership, shareable: frozenset[str]
) -> list[ConstDirectiveNode]:
    keys = ownership.keys.get(name, ())
    if plan.shapes.get(name) is Shape.INTERFACE_OBJECT:
        return [_key(keys), _directive("interfaceObject")]
    if name in plan.owned_interfaces:
        return [_key(keys)]
    if name in ownership.interfaces:
        return []  # another domain's entity interface, implemented here: a plain interface
    if keys:
        return [_key(keys, resolvable=name in plan.resolvable)]
    if name in shareable:
        return [_directive("shareable")]
    return []


def _with_costs(
    schema: GraphQLSchema, definition: ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode
) -> tuple[Any, ...]:
    """The fields with the `@cost` / `@listSize` the server enforces (server/cost.py)."""
    gtype = schema.get_type(definition.name.value)
    assert gtype is not None
    fields = []
    for field_node in definition.fields or ():
        added = sdl_directives(gtype, field_node.name.value)
        if added:
            directives = (*(field_node.directives or ()), *added)
            field_node = replace_node(field_node, directives=directives)
        fields.append(field_node)
    return tuple(fields)


# ─────────────────────────── the graph ───────────────────────────


def _executable(
    monolith: strawberry.Schema, schema: GraphQLSchema, plan: Plan
) -> strawberry.Schema:
    """The monolith's strawberry Schema, executing the subgraph's graphql-core schema."""
    executable = copy.copy(monolith)
    executable._schema = schema
    schema._strawberry_schema = executable  # type: ignore[attr-defined]
    setattr(executable, STUB_TYPES_ATTRIBUTE, plan.stub_types)
    executable.subgraph_name = plan.name  # type: ignore[attr-defined]
    return executable


class Federation:
    """Every subgraph of one monolith: plans, executable schemas and SDLs."""

    def __init__(self, monolith: strawberry.Schema, domains: Mapping[str, Domain]) -> None:
        self.monolith = monolith
        self.ownership = read_ownership(monolith, domains)
        schema = monolith._schema
        self.plans = {name: plan_subgraph(schema, self.ownership, name) for name in domains}
        if (orphans := self._orphans()) and self.plans:
            # e.g. a contract scalar no field uses yet: held by the first domain
            first = next(iter(self.plans))
            self.plans[first] = plan_subgraph(schema, self.ownership, first, orphans)
        self.shareable = self._shareable_value_types()
        self._schemas: dict[str, GraphQLSchema] = {}
        self._sdl: dict[str, str] = {}

    def _orphans(self) -> list[str]:
        """Monolith types in no subgraph: no field uses them and no domain owns them."""
        held = {name for plan in self.plans.values() for name in plan.shapes}
        return [
            name
            for name, gtype in self.monolith._schema.type_map.items()
            if name not in held and not _builtin(gtype) and not is_federation_type(name)
        ]

    def _shareable_value_types(self) -> frozenset[str]:
        """Object types that are no entity and that several subgraphs return."""
        seen: dict[str, int] = {}
        for plan in self.plans.values():
            for name in plan.shapes:
                if isinstance(self.monolith._schema.get_type(name), GraphQLObjectType):
                    seen[name] = seen.get(name, 0) + 1
        roots = set(self.ownership.root_fields)
        return frozenset(
            n
            for n, count in seen.items()
            if count > 1 and n not in self.ownership.keys and n not in roots
        )

    def plan(self, name: str) -> Plan:
        if name not in self.plans:
            raise UnknownSubgraph(f"no subgraph {name!r}: one of {', '.join(self.plans)}")
        return self.plans[name]

    def graphql_schema(self, name: str) -> GraphQLSchema:
        if name not in self._schemas:
            builder = _Builder(self.monolith, self.plan(name), lambda: self.sdl(name))
            self._schemas[name] = builder.schema()
        return self._schemas[name]

    def schema(self, name: str) -> strawberry.Schema:
        """The subgraph as a strawberry Schema that the ASGI view can serve."""
        return _executable(self.monolith, self.graphql_schema(name), self.plan(name))

    def sdl(self, name: str) -> str:
        """The subgraph's SDL with Federation 2 directives: what `_service { sdl }` returns."""
        if name not in self._sdl:
            self._sdl[name] = self._print(name)
        return self._sdl[name]

    def _print(self, name: str) -> str:
        plan = self.plan(name)
        schema = self.graphql_schema(name)
        definitions: list[DefinitionNode | SchemaExtensionNode] = [_link(set()), cost_link()]
        used: set[str] = set()
        for definition in api_definitions(schema):
            if isinstance(definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
                added = _federation_directives(
                    definition.name.value, plan, self.ownership, self.shareable
                )
                used.update(d.name.value for d in added)
                directives = (*(definition.directives or ()), *added)
                definition = replace_node(
                    definition,
                    directives=directives,
                    fields=_with_costs(schema, definition),
                )
            definitions.append(definition)
        definitions[0] = _link(used or {"key"})
        return print_definitions(definitions)


Extensions = Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]]


def federation(extensions: Extensions = ()) -> Federation:
    """The subgraphs of this codebase's domains (`schema.domains.DOMAINS`)."""
    return Federation(supergraph(extensions=extensions), DOMAINS)


def subgraph_schema(name: str, extensions: Extensions = ()) -> strawberry.Schema:
    """The subgraph `name` as a strawberry Schema: `entativa serve --subgraph name`.

    `extensions` are the monolith's (limits, caches): a subgraph runs them as it is.
    """
    return federation(extensions).schema(name)


def print_subgraph(name: str) -> str:
    """The subgraph's SDL: `entativa schema print --subgraph name`."""
    return federation().sdl(name)
