"""The console's flows page: the version serving and when it was loaded, a refused edit's
problems at their line, the flow picture, and the last reloads (through the test client)."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ivr.core.flows.loader import load_flows
from ivr.infra.flows_registry import HISTORY_LENGTH
from ivr.infra.services import services_of
from tests.console.conftest import sign_in

PAGE = "/console/flows"
HTML = {"Accept": "text/html"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Page(HTMLParser):
    """The text inside each element with an id, and each reload row's class and cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self.attrs_by_id: dict[str, dict[str, str]] = {}
        self.rows: list[tuple[str, list[str]]] = []
        self._open: list[tuple[str | None, list[str]]] = []  # (id, text parts) per open element
        self._row: tuple[str, list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if "id" in found:
            self.attrs_by_id[found["id"]] = found
        if tag == "tr" and "reload" in found.get("class", "").split():
            self._row = (found["class"], [])
        elif tag == "td" and self._row is not None:
            self._cell = []
        if tag not in VOID:
            self._open.append((found.get("id"), []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._row is not None and self._cell is not None:
            self._row[1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        if tag in VOID or not self._open:
            return
        element_id, parts = self._open.pop()
        text = "".join(parts)
        if element_id is not None:
            self.by_id[element_id] = text.strip()
        if self._open:
            self._open[-1][1].append(text)

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][1].append(data)
        if self._cell is not None:
            self._cell.append(data)

    def text(self, element_id: str) -> str:
        """The element's text, as a person reads it (runs of spaces as one)."""
        assert element_id in self.by_id, f"no #{element_id} on the page"
        return " ".join(self.by_id[element_id].split())


def _page(client) -> Page:
    response = client.get(PAGE, headers=HTML)
    assert response.status_code == 200, response.text
    return Page(response.text)


def _broken(text: str) -> tuple[str, int]:
    """The shop flows with one menu choice pointing at a misspelt node, and that line."""
    broken = text.replace("goto: billing_menu}", "goto: biling_menu}", 1)
    assert broken != text
    line = next(i for i, row in enumerate(broken.splitlines(), 1) if "biling_menu" in row)
    return broken, line


def test_shows_the_version_serving_and_when_it_was_loaded(admin, app) -> None:
    client, _csrf = admin
    registry = services_of(app).flows
    page = _page(client)
    assert page.text("serving-version") == registry.version
    loaded = dt.datetime.fromtimestamp(registry.loaded_at, dt.UTC)
    assert loaded.strftime("%Y-%m-%d %H:%M:%S UTC") in page.text("serving")
    assert page.text("loaded-at") == "just now"
    assert "nothing refused" in page.text("file-ok")
    # The start-up load is the first reload on record.
    assert [(cls, cells[1], cells[2]) for cls, cells in page.rows] == [
        ("reload taken", f"{registry.version} (serving)", "taken")]


def test_a_refused_edit_shows_its_problem_at_its_line_and_the_old_version_serves(
    admin, app, flows_path: Path
) -> None:
    client, _csrf = admin
    good = services_of(app).flows.version
    broken, line = _broken(flows_path.read_text(encoding="utf-8"))
    flows_path.write_text(broken, encoding="utf-8")

    page = _page(client)
    expected = (f"{flows_path}:{line}: flows.main.nodes.main_menu.options[1].goto: "
                "unknown node 'biling_menu' (did you mean 'billing_menu'?)")
    assert expected.startswith(f"{flows_path.parent}/flows.yaml:{line}: ")
    assert page.text("problems") == expected
    assert "The last edit was refused (just now," in page.text("refused")
    assert page.text("serving-version") == good
    assert "file-ok" not in page.by_id
    cls, cells = page.rows[0]
    assert cls == "reload refused"
    assert cells[2:] == ["refused", "1", expected]
    assert page.rows[1][1][1] == f"{good} (serving)"


def test_a_good_edit_appears_as_a_new_reload(admin, app, flows_path: Path) -> None:
    client, _csrf = admin
    old = services_of(app).flows.version
    text = flows_path.read_text(encoding="utf-8")
    flows_path.write_text(_broken(text)[0], encoding="utf-8")
    _page(client)
    edited = text.replace("Thanks for calling Juniper and Pine.", "Welcome to Juniper and Pine!")
    assert edited != text
    flows_path.write_text(edited, encoding="utf-8")

    page = _page(client)
    new = page.text("serving-version")
    assert new not in (old, "")
    assert new == services_of(app).flows.version
    assert "nothing refused" in page.text("file-ok")
    assert [(cls, cells[1].split()[0], cells[2]) for cls, cells in page.rows] == [
        ("reload taken", new, "taken"),
        ("reload refused", page.rows[1][1][1], "refused"),
        ("reload taken", old, "taken")]
    assert page.rows[1][1][1] not in (old, new)


def test_the_history_keeps_the_last_twenty(admin, flows_path: Path) -> None:
    client, _csrf = admin
    text = flows_path.read_text(encoding="utf-8")
    for i in range(HISTORY_LENGTH + 4):
        # A new size each time: two saves in one clock tick must not look alike.
        flows_path.write_text(text + f"# edit {i}{'.' * i}\n", encoding="utf-8")
        _page(client)
    page = _page(client)
    assert len(page.rows) == HISTORY_LENGTH
    assert page.rows[0][1][1] == f"{page.text('serving-version')} (serving)"
    assert all(cls == "reload taken" for cls, _cells in page.rows)


def test_the_picture_is_the_svg_of_the_serving_flows(admin, app, flows_path: Path) -> None:
    client, _csrf = admin
    version = services_of(app).flows.version
    page = _page(client)
    src = page.attrs_by_id["flow-picture"]["src"]
    assert src == f"/console/flows/graph.svg?version={version}"

    for url in (src, "/console/flows/graph.svg"):
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert response.mimetype == "image/svg+xml"
        svg = response.text
        assert "<svg" in svg and svg.rstrip().endswith("</svg>")
    shown = load_flows(flows_path).file.flows["main"].nodes
    assert set(re.findall(r"<title>n_main__(\w+)</title>", svg)) >= set(shown)
    assert ">main_menu" in svg  # labelled with the node's own name
    assert client.get(src).headers["Cache-Control"] == "private, max-age=86400"

    assert client.get("/console/flows/graph.svg?version=0123456789ab").status_code == 404
    assert client.get("/console/flows/graph.svg?version=../x").status_code == 400


def test_without_graphviz_the_page_says_so(
    admin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _csrf = admin
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # a server without Graphviz
    page = _page(client)
    assert "flow-picture" not in page.attrs_by_id
    assert page.text("no-graphviz").startswith(
        "The flow picture needs Graphviz, which is not installed on this server")
    response = client.get("/console/flows/graph.svg")
    assert response.status_code == 503
    assert "needs Graphviz" in response.json["message"]


def test_agents_and_strangers_cannot_see_flows(app, add_agent) -> None:
    _agent, token = add_agent()
    agent = app.test_client()
    sign_in(agent, token)
    for url in (PAGE, "/console/flows/graph.svg"):
        assert agent.get(url, headers=HTML).status_code == 403
    stranger = app.test_client()
    assert stranger.get(PAGE, headers=HTML).status_code == 302
    assert stranger.get("/console/flows/graph.svg").status_code == 401
