"""The gateway backends, one interface (base.Gateway: `send(msg_id, phone, text, send_by)` -> a
Verdict, `describe()`, `request_record()`), chosen with MAILER_GATEWAY:

probe    the probe HTTP gateway (the default; PROBE_URL, PROBE_TOKEN)           probe.py
console  each message written to this process's output and log, nothing sent   console.py
smsaero  SMS Aero's HTTP API v2 (SMSAERO_EMAIL, SMSAERO_API_KEY, ...)           smsaero.py

base     the verdict, the health the attempts show, secrets masked and scrubbed
http     what the HTTP backends share: the pool, the deadline sockets, the statuses they mean alike
"""
from engine.gateways.base import Gateway, Verdict

__all__ = ["Gateway", "Verdict", "gateway_from_settings"]


def gateway_from_settings(settings, pool_size=64):
    """The backend MAILER_GATEWAY names, built from the settings; a missing or unusable credential is
    a ValidationError naming its variable (refused when a consumer starts, not at the first send)."""
    if settings.gateway == "console":
        from engine.gateways.console import ConsoleGateway
        return ConsoleGateway()
    if settings.gateway == "smsaero":
        from engine.gateways.smsaero import SmsAeroGateway
        return SmsAeroGateway(settings.smsaero_url, settings.smsaero_email, settings.smsaero_api_key,
                              settings.smsaero_sign, connect_timeout=settings.connect_timeout,
                              read_timeout=settings.read_timeout, pool_size=pool_size)
    from engine.gateways.probe import ProbeGateway
    return ProbeGateway(settings.gateway_url, settings.token, connect_timeout=settings.connect_timeout,
                        read_timeout=settings.read_timeout, pool_size=pool_size)
