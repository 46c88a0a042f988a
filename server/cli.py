"""`entativa`: serve, worker, migrate, schema print, demo, search stats and reindex,
documents register."""

from __future__ import annotations

import argparse
import asyncio
import sys

from server.settings import Settings


def cmd_serve(args: argparse.Namespace) -> None:
    from datasources.migrate import upgrade
    from server.app import create_app
    from subscriptions import serving

    settings = Settings()
    if not args.no_migrate:  # production: the one-shot `entativa migrate` job did it
        print(f"[entativa] migrating {settings.resolved_database_url}", flush=True)
        asyncio.run(upgrade(settings.resolved_database_url))
    if not args.no_demo and args.subgraph is None:
        from server.demo import load_demo_if_empty

        asyncio.run(load_demo_if_empty(settings))
    app = create_app(settings, subgraph=args.subgraph)
    where = f"http://{args.host}:{args.port}"
    what = f"subgraph {args.subgraph}" if args.subgraph else "the whole graph"
    print(f"[entativa] serving {what} at {where}/graphql (GraphiQL in a browser)", flush=True)
    # On SIGTERM: websockets closed with 1001, requests in flight drained (at most
    # shutdown_grace_seconds), then the lifespan stops the relay, which flushes the outbox.
    serving.run(
        app,
        host=args.host,
        port=args.port,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


def cmd_worker(args: argparse.Namespace) -> None:
    from server.worker import run_worker

    asyncio.run(run_worker(Settings(), relay=not args.no_relay, consumers=not args.no_consumers))


def cmd_migrate(_args: argparse.Namespace) -> None:
    from datasources.migrate import upgrade

    settings = Settings()
    asyncio.run(upgrade(settings.resolved_database_url))
    print(f"[entativa] {settings.resolved_database_url} is at the latest migration")
    from server.runtime import prepare_stores

    for prepared in asyncio.run(prepare_stores(settings)):  # MongoDB, Elasticsearch
        print(f"[entativa] {prepared} ready")


def cmd_schema_print(args: argparse.Namespace) -> None:
    if args.subgraph:
        from schema.subgraphs import print_subgraph

        sys.stdout.write(print_subgraph(args.subgraph))
    else:
        from schema.supergraph import print_supergraph

        sys.stdout.write(print_supergraph())
    sys.stdout.write("\n")


def cmd_demo(_args: argparse.Namespace) -> None:
    from datasources.migrate import upgrade
    from server.demo import load_demo

    settings = Settings()
    asyncio.run(upgrade(settings.resolved_database_url))
    asyncio.run(load_demo(settings))


def cmd_search_stats(args: argparse.Namespace) -> None:
    from datetime import UTC, datetime

    from datasources.search.stats import daily_stats, render
    from datasources.sql import Database

    async def run() -> str:
        db = Database(Settings().resolved_database_url)
        try:
            today = datetime.now(UTC).date()
            found = await daily_stats(db, today, args.days, args.limit, args.platform)
        finally:
            await db.dispose()
        return render(found, args.days)

    print(asyncio.run(run()))


def cmd_search_reindex(_args: argparse.Namespace) -> None:
    from datasources.migrate import upgrade
    from datasources.search.build import build_search_index
    from datasources.search.reindex import reindex
    from datasources.sql import Database
    from server.runtime import search_config

    settings = Settings()
    config = search_config(settings)

    def say(line: str) -> None:
        print(f"[entativa search] {line}", flush=True)

    async def run() -> None:
        await upgrade(settings.resolved_database_url)
        db = Database(settings.resolved_database_url)
        index = build_search_index(config)
        where = config.path if config.backend == "tantivy" else config.elasticsearch_url
        say(f"rebuilding the {config.backend} index at {where} (searches keep the old one)")
        try:
            await reindex(db, index, say)
        finally:
            await index.close()
            await db.dispose()

    asyncio.run(run())


def cmd_documents_register(args: argparse.Namespace) -> None:
    from pathlib import Path

    from schema.supergraph import supergraph
    from server.persisted import TRUSTED_FILE, register_directory

    path = Settings().data_dir / TRUSTED_FILE
    try:
        added = register_directory(path, Path(args.directory), supergraph()._schema)
    except (ValueError, OSError) as error:
        sys.exit(f"entativa: {error}")
    print(f"[entativa] registered {len(added)} documents in {path}")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="entativa", description="Entativa Graph")
    commands = root.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, load demo data when empty, and serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--subgraph", default=None, help="serve one subgraph (users, media, …)")
    serve.add_argument("--no-demo", action="store_true", help="do not load demo data")
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply migrations at start (replicas: run `entativa migrate` once)",
    )
    serve.set_defaults(run=cmd_serve)

    worker = commands.add_parser("worker", help="run the outbox relay and the event consumers")
    worker.add_argument("--no-relay", action="store_true", help="consumers only")
    worker.add_argument("--no-consumers", action="store_true", help="relay only")
    worker.set_defaults(run=cmd_worker)

    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)

    schema = commands.add_parser("schema", help="schema tools")
    schema_commands = schema.add_subparsers(dest="schema_command", required=True)
    printer = schema_commands.add_parser("print", help="print the SDL")
    printer.add_argument("--subgraph", default=None)
    printer.set_defaults(run=cmd_schema_print)

    commands.add_parser("demo", help="load the demo world").set_defaults(run=cmd_demo)

    search = commands.add_parser("search", help="search tools")
    search_commands = search.add_subparsers(dest="search_command", required=True)
    stats = search_commands.add_parser(
        "stats", help="most frequent and zero-result queries per day (no user ids)"
    )
    stats.add_argument("--days", type=int, default=7, help="how many days back (default 7)")
    stats.add_argument("--limit", type=int, default=10, help="queries per list (default 10)")
    stats.add_argument("--platform", default=None, help="one platform (default: each)")
    stats.set_defaults(run=cmd_search_stats)
    search_commands.add_parser(
        "reindex", help="rebuild the search index from the database, swapping it in when done"
    ).set_defaults(run=cmd_search_reindex)

    documents = commands.add_parser("documents", help="trusted documents (persisted queries)")
    documents_commands = documents.add_subparsers(dest="documents_command", required=True)
    register = documents_commands.add_parser(
        "register", help="register every .graphql file of a directory (hash → document)"
    )
    register.add_argument("directory")
    register.set_defaults(run=cmd_documents_register)
    return root


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except LookupError as error:
        from schema.subgraphs import UnknownSubgraph

        if not isinstance(error, UnknownSubgraph):
            raise
        sys.exit(f"entativa: {error}")  # a mistyped --subgraph: no traceback


if __name__ == "__main__":
    main()
