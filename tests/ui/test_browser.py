"""The page in headless Chromium (Debian's chromium, driven by Playwright) against a
relay holding the scenario's flows: the map, filters, clicks, live flows.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import scenario

pytestmark = pytest.mark.browser
playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DENIED_EDGE = "e:shop/frontend>shop/db:5432/TCP"
ALL_NODES = [
    "identity:1",
    "identity:2",
    "ops/monitor",
    "shop/checkout",
    "shop/db",
    "shop/frontend",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (scripts/setup installs it)")
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.console_errors = errors
    yield page
    page.close()
    assert errors == []


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"))


def open_page(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-loaded]", timeout=30_000)


def node_ids(page: Any) -> list[str]:
    ids: list[str] = page.evaluate("window.flowscope.graph.nodeIds()")
    return sorted(ids)


def edges(page: Any) -> dict[str, dict[str, Any]]:
    data: list[dict[str, Any]] = page.evaluate("window.flowscope.graph.edgeData()")
    return {edge["id"]: edge for edge in data}


def table_column(page: Any, index: int) -> list[str]:
    cells: list[str] = page.eval_on_selector_all(
        "#flows-table tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent)"
    )
    return cells


def wait_true(page: Any, expression: str, timeout: float = 30.0) -> None:
    """Polls expression in the page (wait_for_function would need eval, which the
    page's Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout}s: {expression}"
        time.sleep(0.05)


def wait_reloaded(page: Any, attribute: str, before: str | None) -> None:
    wait_true(
        page, f"document.body.dataset.{attribute} !== {before!r}".replace("None", "undefined")
    )


def test_map_shows_the_endpoints_and_the_denied_connection(page: Any, live_ui: str) -> None:
    open_page(page, live_ui)
    assert node_ids(page) == ALL_NODES
    denied = edges(page)[DENIED_EDGE]
    assert (denied["verdict"], denied["color"], denied["flows"]) == ("dropped", "#c50000", 2)
    assert edges(page)["e:ops/monitor>shop/frontend:9090/TCP"]["verdict"] == "audit"
    assert page.text_content("#status-nodes") == "nodes: 1/1 connected"
    assert page.text_content("#flows-count") == "11 flows"
    shot(page, "map")


def test_a_filter_narrows_the_map_and_the_table(page: Any, live_ui: str) -> None:
    open_page(page, live_ui)
    before = page.evaluate("document.body.dataset.loaded")
    page.fill("#filter", "verdict=dropped")
    page.press("#filter", "Enter")
    wait_reloaded(page, "loaded", before)
    assert node_ids(page) == ["shop/db", "shop/frontend"]
    assert list(edges(page)) == [DENIED_EDGE]
    assert table_column(page, 10) == ["dropped", "dropped"]
    assert "q=verdict%3Ddropped" in page.url
    shot(page, "filtered")
    # The view is in the URL: opening it again shows the same.
    open_page(page, page.url)
    assert page.input_value("#filter") == "verdict=dropped"
    assert node_ids(page) == ["shop/db", "shop/frontend"]


def test_a_bad_filter_is_shown_with_what_and_where(page: Any, live_ui: str) -> None:
    open_page(page, live_ui)
    page.fill("#filter", "verdict=dropped to:port=http")
    page.press("#filter", "Enter")
    page.wait_for_selector("#filter-error:not([hidden])")
    assert page.text_content("#filter-error") == (
        "invalid filter term at column 17 'to:port=http': not a port;"
        " expected a decimal number 0-65535"
    )
    assert page.evaluate("document.getElementById('filter').classList.contains('invalid')")
    shot(page, "filter-error")
    refused = "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    assert page.console_errors == [refused, refused]  # the map's and the flows' requests
    page.console_errors.clear()


def test_clicking_an_edge_lists_its_flows(page: Any, live_ui: str) -> None:
    open_page(page, live_ui)
    point = page.evaluate(
        f"(() => {{ const p = window.flowscope.graph.cy.getElementById({DENIED_EDGE!r})"
        ".renderedMidpoint(); return [p.x, p.y]; })()"
    )
    box = page.locator("#map").bounding_box()
    before = page.evaluate("document.body.dataset.flowsLoaded")
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])
    wait_reloaded(page, "flowsLoaded", before)
    assert page.text_content("#selection") == "Flows of shop/frontend>shop/db:5432/TCP"
    assert table_column(page, 4) == ["shop/db-0", "shop/db-0"]
    assert table_column(page, 10) == ["dropped", "dropped"]
    assert "edge=shop%2Ffrontend%3Eshop%2Fdb%3A5432%2FTCP" in page.url
    shot(page, "edge-flows")


def test_names_are_shown_as_text_never_as_html(page: Any, live_ui: str) -> None:
    open_page(page, live_ui)
    page.click("#flows-table tbody tr:has(td:text-is('world'))")
    page.wait_for_selector("#flow-panel:not([hidden])")
    fields = page.text_content("#flow-fields")
    assert f"{scenario.WORLD_DNS}, {scenario.MARKUP_DNS}" in fields
    assert page.locator("#flow-panel img").count() == 0
    assert page.locator("img").count() == 0
    shot(page, "flow-panel")


def test_policy_view_lists_denied_and_audited_flows(page: Any, live_ui: str) -> None:
    open_page(page, live_ui)
    before = page.evaluate("document.body.dataset.loaded")
    page.click("#tabs button[data-view=policy]")
    wait_reloaded(page, "loaded", before)
    rows = page.eval_on_selector_all(
        "#policy-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert rows == [["dropped", "shop/db-ingress", "2"], ["audit", "ops/audit-scrape", "1"]]
    rows = page.eval_on_selector_all(
        "#denied-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert rows == [
        ["shop/frontend", "shop/db", "5432/TCP", "dropped", "2"],
        ["ops/monitor", "shop/frontend", "9090/TCP", "audit", "1"],
    ]
    assert "view=policy" in page.url
    shot(page, "policy")


def test_a_new_connection_appears_live(page: Any, live_ui: str, live_relay: Any) -> None:
    open_page(page, live_ui + "/?live=1")
    wait_true(page, "document.getElementById('live').checked")
    deadline = time.monotonic() + 30
    while "shop/cache-1a2b-pqrst" not in table_column(page, 1):
        assert time.monotonic() < deadline, "the live flow did not appear"
        live_relay.append(scenario.live_flow(time.time_ns()))
        time.sleep(1)
    assert page.text_content("#flows-count").endswith("flows · live")
    # The map follows within its refresh interval.
    wait_true(page, "window.flowscope.graph.nodeIds().includes('shop/cache')")
    assert "e:shop/cache>shop/db:6379/TCP" in edges(page)
    shot(page, "live")
