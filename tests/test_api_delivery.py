"""The API driving the real thing: clients and a mailing made over HTTP are sent by a real consumer to
the gateway simulator (judged by the simulator's own log), a STOP reply keeps its phone off the wire,
and `mailer run --api` serves the API beside its consumer and takes it down with it."""
import signal
import subprocess

import requests

from simulator import read_log
from support import HOST, MAILER, ROOT, ApiServer, free_port, phones, wait_for


def test_a_mailing_made_over_the_api_is_sent_by_a_consumer(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    api = ApiServer(world)
    try:
        world.start_consumer()
        names = {p: f"Клиент {i}" for i, p in enumerate(phones(20))}
        csv_text = "phone,name,tz\n" + "".join(f"{p},{n},Europe/Moscow\n" for p, n in names.items())
        assert api.json("POST", "/clients/import", data=csv_text.encode(),
                        headers={"Content-Type": "text/csv"})["imported"] == 20
        stopped = phones(1)[0]
        assert api.json("POST", "/inbound", scope="inbound", json={"phone": stopped, "text": "СТОП"})["opted_out"]
        mailing = api.json("POST", "/mailings", 201, json={"text": "Здравствуйте, {name}!", "start": "now",
                                                           "end": "+2m", "window": "any"})
        wait_for(lambda: api.json("GET", f"/stats/mailings/{mailing['id']}")["sent"] == 19, timeout=60,
                 message="19 messages sent")
        accepted = read_log(sim.log_path)
        assert sorted((str(e["phone"]), e["text"]) for e in accepted) == sorted(
            (p, f"Здравствуйте, {n}!") for p, n in names.items() if p != stopped)
        sent = api.json("GET", f"/mailings/{mailing['id']}/messages", params={"status": "sent", "limit": 100})
        assert sent["total"] == 19 and {m["text"] for m in sent["items"]} == {e["text"] for e in accepted}
        attempts = api.json("GET", f"/messages/{sent['items'][0]['id']}/attempts")
        assert [(a["outcome"], a["http_status"]) for a in attempts] == [("sent", 200)]
        assert api.json("GET", "/health")["alive"] == 1
        assert api.json("GET", "/stats")["messages"] == {"sent": 19}
    finally:
        api.stop()


def test_mailer_run_api_serves_the_api_beside_its_consumer_and_stops_with_it(world):
    token = world.mailer_json("api-token", "create", "--scope", "operator")["token"]
    port = free_port()
    log = open(world.dir / "run.log", "w")
    run = subprocess.Popen(MAILER + ["run", "--headless", "--api", "--api-port", str(port)], env=world.env,
                           cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url, auth = f"http://{HOST}:{port}", {"Authorization": f"Bearer {token}"}
    try:
        # Without PROBE_TOKEN `mailer run` starts the simulator too: the mailing goes there.
        wait_for(lambda: requests.get(url + "/health", headers=auth, timeout=10).json()["alive"] == 1, timeout=60,
                 errors=(requests.ConnectionError, requests.Timeout),
                 message="the API, and the consumer's heartbeat through it")
        requests.post(url + "/clients", json={"phone": "79001234567"}, headers=auth, timeout=10).raise_for_status()
        mailing = requests.post(url + "/mailings", json={"text": "hi", "start": "now", "end": "+1m", "window": "any"},
                                headers=auth, timeout=10).json()
        wait_for(lambda: requests.get(f"{url}/stats/mailings/{mailing['id']}", headers=auth, timeout=5)
                 .json()["sent"] == 1, timeout=30, message="the message sent")
        assert "HTTP API started on" in (world.dir / "run.log").read_text()
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=40)
    # The API went with it.
    try:
        requests.get(url + "/openapi.json", timeout=2)
        still_up = True
    except requests.ConnectionError:
        still_up = False
    assert not still_up
    assert token not in (world.dir / "api.log").read_text()
