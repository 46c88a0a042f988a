"""GraphiQL, served by the app itself: the page for each GraphQL path and its assets.

The assets are the UMD builds of graphiql 3, React 18 and ReactDOM 18 from npm
(`package.json` and the committed `package-lock.json` here; `python3 dev.py serve`
runs `npm ci`). The app serves only those four files, from `node_modules`, under
`/graphiql/static/`: a developer's browser needs no network. When `node_modules` is
missing (no npm on the machine), the page loads the same versions from unpkg instead.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import cache
from pathlib import Path
from string import Template

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
STATIC_PREFIX = "/graphiql/static"
CDN = "https://unpkg.com"

# name served -> (npm package, file inside it)
ASSETS: dict[str, tuple[str, str]] = {
    "react.js": ("react", "umd/react.production.min.js"),
    "react-dom.js": ("react-dom", "umd/react-dom.production.min.js"),
    "graphiql.js": ("graphiql", "graphiql.min.js"),
    "graphiql.css": ("graphiql", "graphiql.min.css"),
}


@cache
def locked_versions() -> dict[str, str]:
    """The versions package-lock.json pins: the CDN fallback loads exactly these."""
    lock = json.loads((HERE / "package-lock.json").read_text())
    return {
        package: lock["packages"][f"node_modules/{package}"]["version"]
        for package in {package for package, _ in ASSETS.values()}
    }


def local_assets_present() -> bool:
    return all((NODE_MODULES / package / path).is_file() for package, path in ASSETS.values())


def asset_urls() -> dict[str, str]:
    if local_assets_present():
        return {name: f"{STATIC_PREFIX}/{name}" for name in ASSETS}
    versions = locked_versions()
    return {
        name: f"{CDN}/{package}@{versions[package]}/{path}"
        for name, (package, path) in ASSETS.items()
    }


def default_query(platform: str, endpoint: str) -> str:
    from server.demo import DEMO_PASSWORD, NAMES

    return (
        f"# Entativa Graph: {platform.capitalize()} (POST {endpoint})\n"
        "# Run: Ctrl-Enter or the run button. `viewer` is null until you sign in.\n"
        "#\n"
        "# Sign in on the demo world (`entativa serve` loads it):\n"
        "#   mutation {\n"
        f'#     signIn(input: {{login: "{NAMES[0]}", password: "{DEMO_PASSWORD}"}}) {{\n'
        "#       accessToken\n"
        "#     }\n"
        "#   }\n"
        "# then add to Headers below:\n"
        '#   {"Authorization": "Bearer <accessToken>"}\n'
        "{\n  platform\n  viewer {\n    username\n  }\n}\n"
    )


@cache
def _template() -> Template:
    return Template((HERE / "page.html").read_text())


def page(platform: str, endpoint: str) -> HTMLResponse:
    config = {"endpoint": endpoint, "defaultQuery": default_query(platform, endpoint)}
    # `<` escaped so no string in the config can close the <script> element.
    config_json = json.dumps(config).replace("<", "\\u003c")
    urls = asset_urls()
    html = _template().substitute(
        title=f"Entativa Graph · {platform.capitalize()} · GraphiQL",
        graphiql_css=urls["graphiql.css"],
        react_js=urls["react.js"],
        react_dom_js=urls["react-dom.js"],
        graphiql_js=urls["graphiql.js"],
        config=config_json,
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": content_policy(html)})


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_policy(html: str) -> str:
    """What the page may load: its assets (here, or the CDN fallback's), its own inline
    script by hash, requests to this server; not framed (server/hygiene.py)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    assets = "'self'" if local_assets_present() else f"'self' {CDN}"
    return (
        f"default-src 'none'; script-src {assets} {hashes}; "
        f"style-src {assets} 'unsafe-inline'; img-src 'self' data:; font-src {assets} data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


async def asset(request: Request) -> Response:
    entry = ASSETS.get(request.path_params["name"])
    if entry is None or not local_assets_present():
        return PlainTextResponse("not found (run `npm ci` in server/graphiql)", status_code=404)
    package, path = entry
    # Names carry no version: a day's caching, and the lock changes rarely.
    return FileResponse(
        NODE_MODULES / package / path, headers={"Cache-Control": "public, max-age=86400"}
    )


def graphiql_routes() -> list[BaseRoute]:
    return [Route(STATIC_PREFIX + "/{name}", asset, methods=["GET", "HEAD"])]
