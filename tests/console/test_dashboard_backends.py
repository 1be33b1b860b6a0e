"""The dashboard names the gateway backend the consumers send through, as their heartbeats carry each
backend's own description, and tells a dry run (nothing leaves this machine) from real sending."""
import models
from console.app import MailerApp
from engine import liveness
from engine.gateways.console import ConsoleGateway
from engine.gateways.probe import ProbeGateway
from engine.gateways.smsaero import SmsAeroGateway

from console_testkit import SIZE, plain, wait_for

KEY = "aero-key-0123456789abcdef"


async def test_the_dashboard_says_which_backend_sends_and_whether_anything_leaves():
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        consumer = app.screen.query_one("#consumer")
        liveness.beat(ConsoleGateway().describe())
        await wait_for(pilot, lambda: "1 consumer(s) alive" in plain(consumer), what="consumer alive")
        await wait_for(pilot, lambda: "gateway: console (nothing leaves this machine" in plain(consumer),
                       what="the console backend")
        assert "LOCAL gateway: nothing leaves this machine" in plain(consumer)
        assert "REAL gateway" not in plain(consumer)

        # SMS Aero's real API, with a sign written like markup: shown as typed, the key masked.
        aero = SmsAeroGateway("https://gate.smsaero.ru/v2", "ops@example.com", KEY, "[b]Shop[/b]")
        models.Heartbeat.update(gateway=aero.describe()).execute()
        await wait_for(pilot, lambda: "REAL gateway: messages are delivered" in plain(consumer),
                       what="the real gateway")
        assert f"gateway: smsaero (gate.smsaero.ru/v2, sign '[b]Shop[/b]', key {KEY[:6]}…)" in plain(consumer)
        assert KEY not in plain(consumer)

        simulated = ProbeGateway("http://127.0.0.1:8090/v1", "sim-token-0123456789")
        models.Heartbeat.update(gateway=simulated.describe()).execute()
        await wait_for(pilot, lambda: "gateway: probe (local simulator http://127.0.0.1:8090/v1" in plain(consumer),
                       what="the probe's simulator")
        assert "LOCAL gateway: nothing leaves this machine" in plain(consumer)
