"""The HTTP API over real HTTP (`mailer api` in its own process, a SQLite file): every route with an
operator token, their answers equal to the command line's JSON for the same things, CSV imports,
inbound STOP replies, and the token kept out of every log."""
import hashlib
import json

import pytest

from simulator import read_log
from support import ApiServer, phones

ROUTES_HIT = set()


def hit(server, method, template, status=200, **kwargs):
    """One call of a route named by its template (as the OpenAPI document names it)."""
    values = kwargs.pop("values", {})
    ROUTES_HIT.add((method, template))
    return server.json(method, template.format(**values), status, **kwargs)


def documented_routes(server):
    doc = server.http.get(server.url + "/openapi.json", timeout=10).json()
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


@pytest.fixture
def api_with_gateway(world, api_database, simulator):
    """The API server of a world whose gateway is the simulator (test sends reach it)."""
    sim = simulator()
    world.use_gateway(sim)
    server = ApiServer(world)
    yield server, sim
    server.stop()


def test_every_route_with_an_operator_token(world, api_with_gateway):
    api, sim = api_with_gateway
    ROUTES_HIT.clear()
    # Clients
    client = hit(api, "POST", "/clients", 201, json={"phone": "79001234567", "tags": ["vip", "new"], "tz": "Asia/Omsk",
                                                     "name": "Анна", "attrs": {"city": "Omsk"}})
    assert client == {"id": client["id"], "phone": "79001234567", "operator": "900", "tag": "vip",
                      "tags": ["vip", "new"], "tz": "Asia/Omsk", "name": "Анна", "attrs": {"city": "Omsk"},
                      "opted_out": False}
    report = hit(api, "POST", "/clients/import", data="phone,tag\n79001110000,vip\n79001110001,\nbad,x\n",
                 headers={"Content-Type": "text/csv"})
    assert report == {"imported": 2, "total": 3,
                      "rejected": [{"line": 4, "row": "bad,x", "error": "phone: must be 7 followed by 10 digits, "
                                                                         "like 79001234567; got 'bad'"}]}
    page = hit(api, "GET", "/clients", params={"search": "7900111", "limit": 1})
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["phone"] == "79001110001"
    edited = hit(api, "PATCH", "/clients/{id}", values=client, json={"tags": ["gold"], "attrs": {"city": ""}})
    assert edited["tags"] == ["gold"] and edited["attrs"] == {}
    assert hit(api, "GET", "/clients/{id}", values=client) == edited
    # The API's client is the command line's, field for field (plus whether it opted out).
    cli = next(c for c in world.mailer_json("clients", "list") if c["id"] == client["id"])
    assert {**cli, "opted_out": False} == edited

    # Mailings
    mailing = hit(api, "POST", "/mailings", 201, json={"text": "Привет, {name|клиент}", "start": "+1h", "end": "+2h",
                                                       "tag": ["vip"], "window": "any"})
    assert mailing["state"] == "scheduled" and mailing["filter"]["tags"] == ["vip"]
    mailing = hit(api, "PATCH", "/mailings/{id}", values=mailing, json={"start": "now", "tag": [], "days": "any"})
    assert mailing["state"] == "running" and mailing["filter"]["tags"] == []
    detail = hit(api, "GET", "/mailings/{id}", values=mailing)
    shown = world.mailer_json("mailings", "show", mailing["id"])
    assert detail == {"mailing": shown["mailing"], "stats": shown["stats"]}
    assert detail["stats"]["total"] == 3
    listed = hit(api, "GET", "/mailings")
    assert listed["total"] == 1 and listed["items"] == world.mailer_json("mailings", "list")
    messages = hit(api, "GET", "/mailings/{id}/messages", values=mailing, params={"status": "pending"})
    assert messages["total"] == 3 and {m["phone"] for m in messages["items"]} == {"79001234567", "79001110000",
                                                                                   "79001110001"}
    assert messages["items"] == shown["messages"]
    assert hit(api, "GET", "/messages/{id}/attempts", values=messages["items"][0]) == []
    paused = hit(api, "POST", "/mailings/{id}/pause", values=mailing)
    assert paused["state"] == "paused"
    assert hit(api, "POST", "/mailings/{id}/resume", values=mailing)["state"] == "running"
    resent = hit(api, "POST", "/mailings/{id}/resend-in-doubt", values=mailing)
    assert resent == {"id": mailing["id"], "resent": 0, "opted_out": 0}
    assert hit(api, "POST", "/mailings/{id}/cancel", values=mailing)["state"] == "cancelled"
    clone = hit(api, "POST", "/mailings/{id}/clone", 201, values=mailing,
                json={"only": ["cancelled"], "start": "+1h"})
    assert clone["cloned_from"] == mailing["id"] and clone["only"] == ["cancelled"]
    sent = hit(api, "POST", "/mailings/{id}/test", values=clone, json={"to": ["79991112233"]})
    assert [(r["phone"], r["outcome"], r["http_status"]) for r in sent] == [("79991112233", "sent", 200)]
    assert [(e["phone"], e["text"]) for e in read_log(sim.log_path)] == [(79991112233, "Привет, клиент")]
    # it sent a test: archived, not deleted (the test reached the gateway and stays on record)
    assert hit(api, "DELETE", "/mailings/{id}", values=clone) == {"id": clone["id"], "outcome": "archived",
                                                                  "messages": 0}
    assert hit(api, "DELETE", "/mailings/{id}", values=mailing) == {"id": mailing["id"], "outcome": "archived",
                                                                    "messages": 3}
    assert hit(api, "GET", "/mailings", params={"archived": "true"})["total"] == 2
    assert hit(api, "GET", "/mailings")["total"] == 0

    # Statistics
    assert hit(api, "GET", "/stats") == {"messages": {"cancelled": 3}, "mailings": {"cancelled": 1, "scheduled": 1}}
    every = hit(api, "GET", "/stats/mailings")
    assert every == json.loads(world.mailer("stats").stdout)
    assert hit(api, "GET", "/stats/mailings/{id}", values=mailing) == every[0]
    assert hit(api, "GET", "/health") == {"alive": 0, "consumers": []}

    # The stop list
    assert hit(api, "POST", "/optouts", json={"phones": ["79001110000", " 79001110000"], "reason": "asked"}) == {
        "added": 1, "given": 1}
    report = hit(api, "POST", "/optouts/import", data="phone\n79002220000\nnope\n", headers={"Content-Type": "text/csv"},
                 params={"reason": "list from the shop"})
    assert report["imported"] == 1 and report["rejected"][0]["line"] == 3
    stop = hit(api, "GET", "/optouts")
    assert stop["total"] == 2 and [(e["phone"], e["source"]) for e in stop["items"]] == [
        ("79002220000", "import"), ("79001110000", "api")]
    assert stop["items"] == world.mailer_json("optout", "list")
    assert hit(api, "DELETE", "/optouts/{phone}", values={"phone": "79002220000"}) == {"removed": 1}
    assert hit(api, "POST", "/inbound", json={"phone": "+79003330000", "text": "Stop"}) == {"opted_out": True,
                                                                                          "added": 1}
    assert hit(api, "DELETE", "/clients/{id}", values=client) == {"deleted": 1}
    assert api.json("GET", f"/clients/{client['id']}", 404) == {"errors": {"id": f"no client with id {client['id']}"}}

    assert ROUTES_HIT == documented_routes(api)


def test_missing_ids_are_404_in_the_domains_words(api_server):
    api = api_server
    for method, path, body, said in (
            ("GET", "/clients/7", None, "no client with id 7"),
            ("PATCH", "/clients/7", {"name": "x"}, "no client with id 7"),
            ("DELETE", "/clients/7", None, "no client with id 7"),
            ("GET", "/mailings/7", None, "no mailing with id 7"),
            ("PATCH", "/mailings/7", {"text": "x"}, "no mailing with id 7"),
            ("POST", "/mailings/7/pause", None, "no mailing with id 7"),
            ("POST", "/mailings/7/clone", None, "no mailing with id 7"),
            ("POST", "/mailings/7/resend-in-doubt", None, "no mailing with id 7"),
            ("DELETE", "/mailings/7", None, "no mailing with id 7"),
            ("GET", "/mailings/7/messages", None, "no mailing with id 7"),
            ("GET", "/stats/mailings/7", None, "no mailing with id 7"),
            ("GET", "/messages/7/attempts", None, "no message with id 7")):
        assert api.json(method, path, 404, json=body) == {"errors": {"id": said}}, (method, path)
    assert api.json("GET", "/nowhere", 404) == {"errors": {"path": "no such route: /nowhere"}}
    assert api.json("PUT", "/clients/1", 405) == {"errors": {"method": "PUT is not allowed on /clients/1"}}


def test_inbound_replies_put_stop_and_only_stop_on_the_stop_list(world, api_server):
    api = api_server
    world.mailer("clients", "add", "--phone", "79004440000")
    for text, stops in (("STOP", True), ("  стоп, пожалуйста", True), ("Stop!", True), ("СТОП", True),
                        ("stopping by later", False), ("please stop", False), ("", False), ("hello", False)):
        phone = f"7900555{len(text):02d}{int(stops)}{ord(text[:1] or 'a') % 10}"
        answer = api.json("POST", "/inbound", scope="inbound", json={"phone": phone, "text": text})
        assert answer["opted_out"] is stops, text
    # A form, as some gateways post it; the phone in E.164 with its +.
    answer = api.json("POST", "/inbound", scope="inbound", data={"phone": "+79004440000", "text": "stop"})
    assert answer == {"opted_out": True, "added": 1}
    rows = dict(world.query("SELECT phone, source FROM opt_out"))
    assert len(rows) == 5 and set(rows.values()) == {"reply"}
    listed = world.mailer_json("optout", "list", "--search", "79004440000")
    assert listed == [{**listed[0], "phone": "79004440000", "source": "reply", "reason": "replied: stop"}]
    assert listed[0]["client_id"] is not None
    # A bad phone is refused in the stop list's words; a body of neither kind is refused.
    bad = api.json("POST", "/inbound", 422, json={"phone": "12345", "text": "STOP"})
    assert list(bad["errors"]) == ["phone"]
    assert api.json("POST", "/inbound", 415, data=b"STOP", headers={"Content-Type": "text/plain"})["errors"]
    assert api.json("POST", "/inbound", 422, json={"phone": "79004440000"}) == {"errors": {"text": "is required"}}


def test_an_import_reports_like_the_command_line_and_all_or_nothing_imports_nothing(world, api_server):
    api = api_server
    csv_text = "phone,operator,tag,tz,city\n" + "".join(f"{p},,t,UTC,Omsk\n" for p in phones(3)) + "7900,,t,UTC,x\n"
    path = world.dir / "c.csv"
    path.write_text(csv_text)
    refused = api.json("POST", "/clients/import", data=csv_text.encode(), headers={"Content-Type": "text/csv"},
                       params={"all_or_nothing": "true"})
    cli = world.mailer("clients", "import", path, "--all-or-nothing", "--json", check=False)
    assert refused == json.loads(cli.stdout) and refused["imported"] == 0
    assert world.query("SELECT count(*) FROM client") == [(0,)]
    # Not UTF-8: refused whole, as the command line refuses the file.
    latin = "phone,tag\n79001234567,caf\xe9\n".encode("latin-1")
    path.write_bytes(latin)
    said = api.json("POST", "/clients/import", 422, data=latin, headers={"Content-Type": "text/csv"})
    cli = world.mailer("clients", "import", path, check=False)
    assert cli.returncode == 2 and cli.stderr == "".join(f"error: {k}: {v}\n" for k, v in said["errors"].items())
    assert api.json("POST", "/clients/import", 415, data="phone\n", headers={"Content-Type": "application/json"})
    done = api.json("POST", "/clients/import", data=csv_text.encode(), headers={"Content-Type": "text/csv"})
    assert done["imported"] == 3 and [r["line"] for r in done["rejected"]] == [5]


def test_tokens_are_stored_as_hashes_and_never_logged(world, api_server):
    api = api_server
    tokens = api.tokens
    for token in tokens.values():
        assert token.startswith("mlr_") and len(token) >= 4 + 43
    stored = dict(world.query("SELECT scope, hash FROM api_token"))
    assert stored == {scope: hashlib.sha256(t.encode()).hexdigest() for scope, t in tokens.items()}
    api.json("GET", "/clients")
    api.json("POST", "/clients", 201, json={"phone": "79001234567"})
    api.json("GET", "/clients", 403, scope="inbound")
    api.json("GET", "/clients", 401, token=tokens["read"] + "x")
    listed = world.mailer("api-token", "list").stdout
    assert "test-read" in listed and "test-operator" in listed
    # Revoked: refused from the next request on.
    token_id = next(t["id"] for t in world.mailer_json("api-token", "list") if t["scope"] == "read")
    world.mailer("api-token", "revoke", token_id)
    assert api.json("GET", "/clients", 401, scope="read") == {"errors": {"token": "unknown or revoked"}}
    api.stop()  # every log line written
    logs = api.log() + "".join(p.read_text() for p in world.dir.glob("*.log")) + listed
    assert '"GET /clients HTTP/1.1" 200' in api.log() and '"GET /clients HTTP/1.1" 401' in api.log()
    for token in tokens.values():
        assert token not in logs and token[4:10] not in logs  # not even its first characters
    database = b"".join(p.read_bytes() for p in world.dir.glob("*.db*"))
    assert not any(t.encode() in database for t in tokens.values())


def test_the_token_commands_refuse_bad_input(world):
    results = world.mailer_batch([["api-token", "create", "--scope", "admin"],
                                  ["api-token", "create"],
                                  ["api-token", "revoke", "9"],
                                  ["api-token", "create", "--scope", "read", "--name", "a\nb"]])
    assert [(r.returncode, r.stderr) for r in results] == [
        (2, "error: scope: must be one of read, operator, inbound; got 'admin'\n"),
        (2, "error: scope: is required\n"),
        (2, "error: id: no API token with id 9\n"),
        (2, "error: name: contains a newline; a name is one line of printable text\n")]
    assert world.query("SELECT count(*) FROM api_token") == [(0,)]
