"""The API's doors and refusals over real HTTP: every route refused without a token (401) and to a
token whose scope does not cover it (403); bad input refused with exactly the command line's words
for the same input; garbage of every kind a 4xx in the one shape, never a 500 or a traceback."""
import json

METHODS_THAT_READ = {"GET"}


def routes(server):
    doc = server.http.get(server.url + "/openapi.json", timeout=10).json()
    return sorted((method.upper(), path) for path, item in doc["paths"].items() for method in item)


def concrete(path):
    return path.replace("{id}", "1").replace("{phone}", "79001234567")


def test_every_route_needs_a_token_and_a_scope_that_covers_it(world, api_server):
    api = api_server
    found = routes(api)
    assert len(found) >= 20
    for method, path in found:
        url = concrete(path)
        for scope, token in ((None, None), ("bad", "mlr_" + "x" * 43), ("bearer-less", None)):
            headers = {"Authorization": api.tokens["operator"]} if scope == "bearer-less" else {}
            response = api.call(method, url, scope=None, token=token, headers=headers, json={})
            assert response.status_code == 401, (method, path, scope, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert list(response.json()["errors"]) == ["token"]
        read = api.call(method, url, scope="read", json={})
        inbound = api.call(method, url, scope="inbound", json={})
        if method in METHODS_THAT_READ:
            assert read.status_code not in (401, 403), (method, path, read.text)
        else:
            assert read.status_code == 403, (method, path, read.text)
            assert read.json() == {"errors": {"token": "a read token cannot do this: it needs "
                                                       + ("an inbound or operator token" if path == "/inbound"
                                                          else "an operator token")}}
        if path == "/inbound":
            assert inbound.status_code == 422  # let in, and told the body lacks its fields
        else:
            assert inbound.status_code == 403, (method, path, inbound.text)
    # Nothing was written by any refused request.
    assert world.query("SELECT (SELECT count(*) FROM client) + (SELECT count(*) FROM mailing) "
                       "+ (SELECT count(*) FROM opt_out)") == [(0,)]


# (command line, method, path, JSON body): the same bad input both ways.
SAME_REFUSALS = [
    (["clients", "add", "--phone", "8900123456"], "POST", "/clients", {"phone": "8900123456"}),
    (["clients", "add", "--phone", "79001234567", "--tz", "Mars/Base", "--operator", "9x"],
     "POST", "/clients", {"phone": "79001234567", "tz": "Mars/Base", "operator": "9x"}),
    (["clients", "add", "--phone", "79001234567", "--tag", "a;b", "--tag", "c;d"],
     "POST", "/clients", {"phone": "79001234567", "tags": ["a;b", "c;d"]}),
    (["clients", "add", "--phone", "79001234567", "--attr", "Bad Key=1"],
     "POST", "/clients", {"phone": "79001234567", "attrs": {"Bad Key": "1"}}),
    (["clients", "add", "--phone", "79001234567", "--name", "x" * 101],
     "POST", "/clients", {"phone": "79001234567", "name": "x" * 101}),
    (["clients", "add", "--phone", "79000000001"], "POST", "/clients", {"phone": "79000000001"}),  # exists
    (["clients", "edit", "1", "--phone", "79000000002"], "PATCH", "/clients/1", {"phone": "79000000002"}),
    (["clients", "edit", "1", "--tz", "Nowhere"], "PATCH", "/clients/1", {"tz": "Nowhere"}),
    (["mailings", "create", "--text", "", "--start", "tomorrow", "--end", "+1h"],
     "POST", "/mailings", {"text": "", "start": "tomorrow", "end": "+1h"}),
    (["mailings", "create", "--text", "hi {foo}", "--start", "now", "--end=-1h"],
     "POST", "/mailings", {"text": "hi {foo}", "start": "now", "end": "-1h"}),
    (["mailings", "create", "--text", "x", "--start", "now", "--end", "+1h", "--tag", "nobody", "--operator", "999",
      "--window", "25:00-26:00", "--days", "someday", "--skip-recent", "forever"],
     "POST", "/mailings", {"text": "x", "start": "now", "end": "+1h", "tag": ["nobody"], "operator": ["999"],
                           "window": "25:00-26:00", "days": "someday", "skip_recent": "forever"}),
    (["mailings", "create", "--text", "я" * 500, "--start", "now", "--end", "+1h"],
     "POST", "/mailings", {"text": "я" * 500, "start": "now", "end": "+1h"}),
    (["mailings", "create", "--text", "a\tb", "--start", "now", "--end", "+1h"],
     "POST", "/mailings", {"text": "a\tb", "start": "now", "end": "+1h"}),
    (["mailings", "edit", "1", "--operator", "900"], "PATCH", "/mailings/1", {"operator": ["900"]}),
    (["mailings", "pause", "2"], "POST", "/mailings/2/pause", None),
    (["mailings", "resume", "1"], "POST", "/mailings/1/resume", None),
    (["mailings", "cancel", "3"], "POST", "/mailings/3/cancel", None),  # no such mailing
    (["mailings", "resend", "2", "--in-doubt"], "POST", "/mailings/2/resend-in-doubt", None),
    (["mailings", "delete", "1"], "DELETE", "/mailings/1", None),
    (["mailings", "clone", "2", "--only", "sent"], "POST", "/mailings/2/clone", {"only": ["sent"]}),
    (["mailings", "clone", "2", "--end", "+1s", "--start", "+1h"], "POST", "/mailings/2/clone",
     {"start": "+1h", "end": "+1s"}),
    (["mailings", "test", "1", "--to", "123"], "POST", "/mailings/1/test", {"to": ["123"]}),
    (["mailings", "test", "1"], "POST", "/mailings/1/test", None),
    (["optout", "add", "79001234567", "--reason", "a\nb"], "POST", "/optouts",
     {"phones": ["79001234567"], "reason": "a\nb"}),
    (["optout", "add", "+7900"], "POST", "/optouts", {"phones": ["+7900"]}),
    (["optout", "remove", "7900"], "DELETE", "/optouts/7900", None),
    (["clients", "list", "--offset", "12a"], "GET", "/clients?offset=12a", None),  # (a page is at most 1000 rows)
    (["mailings", "show", "0"], "GET", "/mailings/0", None),
    (["mailings", "show", "１"], "GET", "/mailings/１", None),  # a full-width digit
    (["stats", "99999999999999999999"], "GET", "/stats/mailings/99999999999999999999", None),
]


def test_bad_input_is_refused_in_the_command_lines_words(world, api_server):
    api = api_server
    world.mailer("clients", "add", "--phone", "79000000001", "--tag", "vip")
    world.mailer("clients", "add", "--phone", "79000000002")
    running = world.mailer_json("mailings", "create", "--text", "x", "--start", "now", "--end", "+1h")
    scheduled = world.mailer_json("mailings", "create", "--text", "x", "--start", "+1h", "--end", "+2h")
    assert (running["id"], running["state"], scheduled["id"]) == (1, "running", 2)
    before = world.query("SELECT count(*) FROM client"), world.query("SELECT count(*), max(updated_at) FROM mailing")
    cli_results = world.mailer_batch([argv for argv, *_ in SAME_REFUSALS])
    for (argv, method, path, body), cli in zip(SAME_REFUSALS, cli_results):
        assert cli.returncode == 2, (argv, cli.stdout, cli.stderr)
        response = api.call(method, path, json=body)
        missing = cli.stderr.startswith("error: id: no ")  # an id that names nothing: 404, same words
        assert response.status_code == (404 if missing else 422), (argv, response.status_code, response.text)
        said = "".join(f"error: {field}: {why}\n" for field, why in response.json()["errors"].items())
        assert said == cli.stderr, argv
    after = world.query("SELECT count(*) FROM client"), world.query("SELECT count(*), max(updated_at) FROM mailing")
    assert after == before


GARBAGE = [
    ("not JSON", b"{nope", "application/json"),
    ("not UTF-8", b'{"phone": "7900\xff\xfe"}', "application/json"),
    ("an array", b"[1, 2, 3]", "application/json"),
    ("a number", b"12", "application/json"),
    ("null", b"null", "application/json"),
    ("deep nesting", b"[" * 5000 + b"]" * 5000, "application/json"),
    ("a huge number", b'{"phone": 1' + b"0" * 5000 + b"}", "application/json"),
    ("wrong types", b'{"phone": ["7900"], "text": {"a": 1}, "tags": "x", "attrs": [1], "spread": "maybe",'
                    b' "start": 5, "phones": "79001234567", "to": 7}', "application/json"),
    ("unknown fields", b'{"phone": "79001234567", "text": "x", "sneaky": true, "id": 3}', "application/json"),
    ("no content type", b'{"phone": "79001234567"}', ""),
    ("a form", b"phone=79001234567", "application/x-www-form-urlencoded"),
    ("NUL bytes", b'{"phone": "7900\\u0000", "text": "\\u0000", "name": "\\ud800"}', "application/json"),
]


def test_garbage_is_a_4xx_in_one_shape_never_a_500(world, api_server):
    api = api_server
    world.mailer("clients", "add", "--phone", "79000000001")
    world.mailer("mailings", "create", "--text", "x", "--start", "+1h", "--end", "+2h")
    doc = api.http.get(api.url + "/openapi.json", timeout=10).json()
    with_body = [(method.upper(), path, op["requestBody"].get("required", False))
                 for path, item in doc["paths"].items() for method, op in item.items() if "requestBody" in op]
    assert len(with_body) >= 10
    for name, body, kind in GARBAGE:
        for method, path, required in with_body:
            if name == "null" and not required:
                continue  # no body where none is needed (clone, test send): null says just that
            headers = {"Content-Type": kind} if kind else {}
            response = api.call(method, concrete(path), data=body, headers=headers)
            assert 400 <= response.status_code < 500, (name, method, path, response.status_code, response.text)
            errors = response.json()["errors"]
            assert errors and all(isinstance(k, str) and isinstance(v, str) for k, v in errors.items())
    assert world.query("SELECT count(*) FROM client") == [(1,)]
    assert "Traceback" not in api.log()


def test_huge_and_odd_ids_and_paging_are_refused_not_crashed(api_server):
    api = api_server
    for path in ("/clients/9223372036854775808", "/clients/-1", "/clients/1.5", "/clients/0x10", "/clients/%00",
                 "/mailings/1e3", "/clients?limit=1001", "/clients?offset=-5", "/mailings?archived=perhaps",
                 "/mailings/1/messages?status=bogus", "/optouts?limit=%FF"):
        response = api.call("GET", path)
        assert response.status_code in (404, 422), (path, response.status_code, response.text)
        assert json.loads(response.text)["errors"], path
    # A search of bytes that are not UTF-8 finds nothing (they are read as U+FFFD), and says so.
    assert api.json("GET", "/clients?search=%ED%A0%80")["items"] == []
    assert api.json("GET", "/clients/9223372036854775807", 404) == {
        "errors": {"id": "no client with id 9223372036854775807"}}
    assert "Traceback" not in api.log()
