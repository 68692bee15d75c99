"""The page: index.html, its own assets, and the JavaScript libraries installed
from npm into web/node_modules (by scripts/setup), served from there so the UI
works offline."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from flowscope.common.errors import FlowscopeError

WEB: Final = Path(__file__).resolve().parent.parent / "web"
ASSETS: Final = {
    "app.js": "text/javascript",
    "graph.js": "text/javascript",
    "style.css": "text/css",
}
# URL name -> file under node_modules, in the order the page loads them.
LIBRARIES: Final = {
    "layout-base.js": "layout-base/layout-base.js",
    "cose-base.js": "cose-base/cose-base.js",
    "cytoscape.min.js": "cytoscape/dist/cytoscape.min.js",
    "cytoscape-fcose.js": "cytoscape-fcose/cytoscape-fcose.js",
}
# The one inline style allowed: the stylesheet cytoscape adds for its container.
CYTOSCAPE_STYLE_HASH: Final = "'sha256-pgvDUBa4IjFA2yuSJ2cqcyxmNYJMborsd0ORcRv9vw8='"
_SECURITY_HEADERS: Final = {
    # Everything comes from this server; nothing inline, nothing from elsewhere.
    "Content-Security-Policy": (
        f"default-src 'self'; style-src 'self' {CYTOSCAPE_STYLE_HASH}; img-src 'self' data:"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def check_libraries(web: Path = WEB) -> None:
    """FlowscopeError naming the first library missing (npm was not run)."""
    for path in LIBRARIES.values():
        if not (web / "node_modules" / path).is_file():
            raise FlowscopeError(
                f"the web page's library {web / 'node_modules' / path} is missing:"
                " run scripts/setup (npm ci in ui/web)"
            )


router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(WEB / "index.html", media_type="text/html", headers=_SECURITY_HEADERS)


@router.get("/assets/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    return FileResponse(WEB / name, media_type=ASSETS[name], headers=_SECURITY_HEADERS)


@router.get("/vendor/{name}")
async def library(name: str) -> FileResponse:
    if name not in LIBRARIES:
        raise HTTPException(404, f"no library {name!r}")
    return FileResponse(
        WEB / "node_modules" / LIBRARIES[name],
        media_type="text/javascript",
        headers=_SECURITY_HEADERS,
    )
