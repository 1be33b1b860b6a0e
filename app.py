"""The `mailer` command line: a complete, scriptable interface to the mailing service.

With no subcommand it runs the console with a consumer beside it (and, without PROBE_TOKEN, the local
gateway simulator). Errors are one clear line on stderr and a non-zero exit:
2 for bad input (nothing is written), 3 for a database that cannot be used, 1 for a partial import.
"""
import argparse
import datetime as dt
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import zoneinfo
from pathlib import Path

import peewee as pw

import models
import service
from domain import api_tokens, clients, export, mailings, opt_outs, rates, segments, stats, templates
from domain import settings as _settings
from domain.audience import Filter
from domain.times import describe_time, operator_zone
from domain.validation import MAX_ID, ValidationError, quote_value, whole_number_error
from domain.vocabulary import CONSOLE, MESSAGE_STATUSES, PROBE, status_label
from domain.windows import format_window

EXIT_INVALID, EXIT_DATABASE, EXIT_PARTIAL = 2, 3, 1


def emit(args, data, text=None):
    if getattr(args, "json", False) or text is None:
        print(json.dumps(data, ensure_ascii=False, indent=None if getattr(args, "json", False) else 2))
    else:
        print(text)


def shown(count, total, offset):
    """A table's last line when it shows only part of what there is."""
    if offset + count >= total:
        return ""
    return f"\n({count} of {total} shown; --offset {offset + count} for the next ones)"


def parse_iso(value):
    """The command line's JSON time ('...Z') back to naive UTC, for showing in the operator's zone."""
    return dt.datetime.fromisoformat(value.rstrip("Z")) if value else None


def table(rows, columns):
    widths = [max([len(str(c))] + [len(str(r.get(c, ""))) for r in rows]) for c in columns]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(columns, widths))]
    for r in rows:
        lines.append("  ".join(str("" if r.get(c) is None else r.get(c)).ljust(w)
                               for c, w in zip(columns, widths)))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# clients


def attr_args(given):
    """--attr key=value (repeated) -> {key: value}; `key=` is the key with no value (removed by edit)."""
    attrs = {}
    for item in given or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValidationError({"attr": f"must be key=value, like city=Omsk; got {quote_value(item)}"})
        attrs[key.strip()] = value
    return attrs


def cmd_clients_add(args):
    client = service.create_client(phone=args.phone, operator=args.operator, tag=args.tag or "", tz=args.tz,
                                   name=args.name or "", attrs=attr_args(args.attr))
    emit(args, stats.client_as_dict(client), str(client.id))


def cmd_clients_edit(args):
    client = service.edit_client(args.id, phone=args.phone, operator=args.operator, tag=args.tag, tz=args.tz,
                                 name=args.name, attrs=attr_args(args.attr) or None)
    emit(args, stats.client_as_dict(client), f"client {client.id} saved")


def cmd_clients_delete(args):
    count = service.delete_clients(args.ids)
    emit(args, {"deleted": count}, f"deleted {count} client(s)")


def cmd_clients_list(args):
    query = clients.client_query(args.search).limit(args.limit).offset(args.offset)
    found = list(query)
    tags = clients.client_tags([c.id for c in found])
    rows = [stats.client_as_dict(c, tags.get(c.id, [])) for c in found]
    emit(args, rows, table([{**r, "tags": "; ".join(r["tags"])} for r in rows],
                           ["id", "phone", "operator", "tags", "tz", "name"])
         + shown(len(rows), stats.client_count(args.search), args.offset))


def cmd_clients_import(args):
    report = service.import_clients(args.file, all_or_nothing=args.all_or_nothing)
    lines = [f"imported {report.imported} of {report.total} row(s)"
             + (" (nothing, because some rows are bad)" if args.all_or_nothing and report.rejected else "")]
    lines += [f"line {n}: {why}  [{raw}]" for n, raw, why in report.rejected]
    emit(args, report.as_dict(), "\n".join(lines))
    return EXIT_PARTIAL if report.rejected else 0


def cmd_optout_add(args):
    added = service.opt_out(args.phones, "cli", args.reason)
    given = len({p.strip() for p in args.phones})  # each checked by the service: ' 7900…' is 7900…
    emit(args, {"added": added, "given": given},
         f"{added} phone(s) put on the stop list" + (f", {given - added} already on it" if given > added else ""))


def cmd_optout_remove(args):
    removed = service.opt_in(args.phones)
    emit(args, {"removed": removed, "given": len(set(args.phones))},
         f"{removed} phone(s) taken off the stop list")


def cmd_optout_list(args):
    rows = opt_outs.page(args.limit, args.offset, args.search)
    total = opt_outs.count() if not args.search else None
    lines = [{**r.as_dict(), "created_at": describe_time(r.created_at), "client_id": r.client_id or "-"}
             for r in rows]
    emit(args, [r.as_dict() for r in rows],
         table(lines, ["phone", "source", "created_at", "client_id", "reason"])
         + (shown(len(rows), total, args.offset) if total is not None else ""))


def cmd_optout_import(args):
    report = service.import_opt_outs(args.file, args.reason)
    lines = [f"{report.imported} phone(s) put on the stop list from {report.total} row(s)"]
    lines += [f"line {n}: {why}  [{raw}]" for n, raw, why in report.rejected]
    emit(args, report.as_dict(), "\n".join(lines))
    return EXIT_PARTIAL if report.rejected else 0


def cmd_clients_export(args):
    """The directory as CSV: to FILE (replaced only once whole: a failed export leaves an existing
    file as it was), or to stdout (`-` or no FILE)."""
    to_stdout = args.file in (None, "-")
    try:
        if to_stdout:
            clients.export_clients(sys.stdout)
            sys.stdout.flush()
        else:
            with export.replaced(args.file) as fh:
                clients.export_clients(fh)
    except OSError as exc:
        return export_failed(exc, to_stdout, args.file)


def export_failed(exc, to_stdout, file):
    """`error: file: <why>: <file>`, exit 2, for an export that could not be written."""
    if to_stdout:  # what is still buffered goes nowhere, instead of failing again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    print(f"error: file: {exc.strerror or exc}: {'stdout' if to_stdout else file}", file=sys.stderr)
    return EXIT_INVALID


# ---------------------------------------------------------------------------------------------------
# mailings


def mailing_fields(args):
    return {k: getattr(args, k) for k in ("text", "start", "end", "operator", "tag", "window", "days", "spread",
                                          "all_tags", "not_tags", "skip_recent")
            if getattr(args, k, None) is not None}


def cmd_mailings_create(args):
    if args.dry_run:
        return preview_mailing(args)
    mailing = service.create_mailing(**mailing_fields(args), confirm_parts=args.confirm_parts)
    emit(args, stats.mailing_as_dict(mailing), str(mailing.id))


def cmd_mailings_clone(args):
    fields = mailing_fields(args)
    if args.dry_run:
        return preview_mailing(args, mailings.clone_fields(args.id, **fields), args.only)
    mailing = service.clone_mailing(args.id, only=args.only, confirm_parts=args.confirm_parts, **fields)
    emit(args, stats.mailing_as_dict(mailing), str(mailing.id))


def cmd_mailings_delete(args):
    done = service.delete_mailing(args.id)
    emit(args, {"id": done.mailing_id, "outcome": done.outcome, "messages": done.messages}, done.describe())


def preview_mailing(args, fields=None, only=None):
    fields = mailing_fields(args) if fields is None else fields
    row, estimate, opted_out, short = mailings.preview_mailing(**fields, only=only)
    source = mailings.row_source(row)
    window = format_window(row["window_start"], row["window_end"]) if row["window_start"] is not None else "-"
    too_long = segments.too_many_parts(row["text"], _settings.current().max_parts, estimate.segments)
    personal = templates.compile_text(row["text"]).personal
    spans = mailings.spread_plan(row) if row["spread"] else []
    spread_lines = spread_plan_lines(row, spans)
    flt = Filter.of_mailing(row)
    emit(args, {"dry_run": True, "start": stats.iso(row["start_at"]), "end": stats.iso(row["end_at"]),
                "operator": row["operator"], "tag": row["tag"], "filter": flt.as_dict(),
                "window": None if window == "-" else window,
                "spread": [{"tz": s.tz, "from": stats.iso(s.start), "to": stats.iso(s.end)} for s in spans]
                if row["spread"] else None,
                **estimate.as_dict(), "personal": personal,
                "opted_out": opted_out, "needs_confirmation": bool(too_long),
                "caps": rates.Caps.of(_settings.current()).describe(),
                "cloned_from": row.get("source_id"), "only": list(source[1]) if source else None,
                "cap_shortfall": short.as_dict() if short else None}, "\n".join([
        "dry run: nothing was written",
        f"start {describe_time(row['start_at'])}, end {describe_time(row['end_at'])}",
        f"filter: {flt.describe()}; window {window}",
        *([f"audience: {mailings.describe_source(source)}, as they are now"] if source else []),
        *spread_lines,
        (f"text, its longest rendering over the audience: {estimate.segments.describe()}" if personal
         else f"text: {estimate.segments.describe()}"),
        f"recipients now: {estimate.recipients:,}"
        + (f" ({estimate.recipients + opted_out:,} match, {opted_out:,} of them opted out)" if opted_out else ""),
        f"parts in all: {estimate.parts:,}" + (f", cost {estimate.cost}" if estimate.cost is not None
                                                else " (MAILER_SEGMENT_PRICE unset: no cost)"),
    ] + ([f"needs --confirm-parts: {too_long}"] if too_long else [])
      + ([f"throughput cap: {short.text()}"] if short else [])))


def spread_plan_lines(row, spans):
    """What --dry-run says of a spread mailing: from when to when its messages go; with a window, per
    client zone (the first and the last to open, and how many between)."""
    if not row["spread"]:
        return []
    if not spans:
        return ["spread: its window never opens before the end in the audience's zones"]
    if spans[0].tz is None:
        return [f"spread evenly from {describe_time(spans[0].start)} to {describe_time(spans[0].end)}"]
    spans = sorted(spans, key=lambda s: (s.start, s.tz))
    shown = [spans[0]] if len(spans) == 1 else [spans[0], spans[-1]]
    lines = [f"spread evenly in each client zone's window until it closes ({len(spans)} zone(s)):"]
    for i, s in enumerate(shown):
        if i == 1 and len(spans) > 2:
            lines.append(f"  … {len(spans) - 2} more zone(s)")
        lines.append(f"  {s.tz}: from {describe_time(s.start)} to {describe_time(s.end)}")
    return lines


def cmd_mailings_edit(args):
    mailing = service.edit_mailing(args.id, **mailing_fields(args), confirm_parts=args.confirm_parts)
    emit(args, stats.mailing_as_dict(mailing), f"mailing {mailing.id} saved ({mailing.state})")


def cmd_mailings_state(args):
    mailing = service.set_mailing_state(args.id, args.action)
    emit(args, stats.mailing_as_dict(mailing), f"mailing {mailing.id} is {mailing.state}")


def cmd_mailings_resend(args):
    done = service.resend_in_doubt(args.id)
    emit(args, {"id": args.id, "resent": done.resent, "opted_out": done.opted_out},
         f"mailing {args.id}: {done.describe()}")


def cmd_mailings_test(args):
    rows = service.send_test(args.id, args.to)
    emit(args, [{"phone": r.phone, "msg_id": r.msg_id, "outcome": r.outcome, "http_status": r.http_status,
                 "latency_ms": r.latency_ms, "error": r.error} for r in rows],
         "\n".join(f"{r.phone}: {r.outcome}" + (f" (HTTP {r.http_status})" if r.http_status else "")
                   + (f": {r.error}" if r.error else "") for r in rows))
    return 0 if all(r.outcome == "sent" for r in rows) else EXIT_PARTIAL


def cmd_mailings_list(args):
    rows, total = stats.mailing_page(args.limit, args.offset, archived=args.archived)
    lines = [{**r.as_dict(), "progress": f"{r.count('sent')}/{r.total}", "start": describe_time(r.start_at),
              "text": r.text[:30], "state": r.state + (" (archived)" if r.archived else ""),
              "filter": r.audience} for r in rows]
    emit(args, [r.as_dict() for r in rows],
         table(lines, ["id", "state", "progress", "failed", "start", "filter", "window", "text"])
         + shown(len(rows), total, args.offset))


def cmd_mailings_show(args):
    mailing = mailings.get_mailing(args.id)
    counts = stats.mailing_row(args.id).as_dict()
    messages = [stats.message_as_dict(m) for m in
                stats.message_query(args.id, args.status).limit(args.limit).offset(args.offset)]
    lines = [{**m, "sent_at": describe_time(parse_iso(m["sent_at"]))} for m in messages]
    data = {"mailing": stats.mailing_as_dict(mailing), "stats": counts, "messages": messages}
    text = "\n".join([
        f"mailing {mailing.id}: {mailing.state}" + (f" ({mailing.state_reason})" if mailing.state_reason else "")
        + (", archived" if mailing.archived_at else ""),
        *([f"a resend to {mailings.describe_source(mailing.source)}"] if mailing.source
          else [f"cloned from mailing {mailing.source_id}"] if mailing.source_id else []),
        f"start {describe_time(mailing.start_at)}, end {describe_time(mailing.end_at)}",
        f"filter: {mailing.audience_filter.describe()}; window {mailing.window or '-'}"
        f", days {mailing.weekdays or 'every day'}" + (", spread" if mailing.spread else ""),
        "counts: " + ", ".join(f"{status_label(s)}={counts[s]}" for s in MESSAGE_STATUSES)
        + f", total={counts['total']}",
        "", table(lines, ["id", "phone", "status", "attempts", "sent_at", "last_error"])
        + shown(len(messages), stats.message_count(args.id, args.status), args.offset)])
    emit(args, data, text)


def export_statuses(given):
    """--status given once or more, each a status or a comma list: the vocabulary's words, in the
    order given, each once (None: every status)."""
    wanted = []
    for word in (w.strip() for value in given or () for w in value.split(",")):
        if word not in MESSAGE_STATUSES:
            raise ValidationError({"status": f"{quote_value(word)} is not a status: say "
                                             f"{', '.join(MESSAGE_STATUSES)} (unknown: in doubt)"})
        if word not in wanted:
            wanted.append(word)
    return wanted or None


def cmd_mailings_export(args):
    """A mailing's messages as CSV, streamed (domain.export.MessageExport, what the console's `x`
    on a mailing writes): to FILE (replaced, like `clients export`'s, only once whole: a failed
    export leaves no file and an existing one as it was), or to stdout (`-` or no FILE)."""
    view = export.MessageExport(args.id, export_statuses(args.status))
    mailings.get_mailing(args.id)  # error: id: no mailing with id N; nothing written
    header, pages = view.export_header(), view.export_pages()
    to_stdout = args.file in (None, "-")
    try:
        if to_stdout:
            export.write_rows(sys.stdout, header, pages, view.export_cells)
            sys.stdout.flush()
        else:
            export.write_csv(args.file, header, pages, cells=view.export_cells, reserved=False)
    except OSError as exc:
        return export_failed(exc, to_stdout, args.file)


def cmd_stats(args):
    rows = stats.mailing_stats(args.id)
    print(json.dumps(rows[0] if args.id is not None else rows, ensure_ascii=False))


def cmd_health(args):
    """Exit 0 when a consumer has written its heartbeat recently (the container health check)."""
    beats = [{"owner": h.owner, "host": h.host, "pid": h.pid, "backend": h.backend, "gateway": h.gateway,
              "beat_at": describe_time(h.beat_at), "alive": alive} for h, alive in stats.consumers()]
    alive = [b for b in beats if b["alive"]]
    emit(args, {"alive": len(alive), "consumers": beats},
         "\n".join(f"{'alive' if b['alive'] else 'stale'}  {b['owner']}  gateway: {b['gateway'] or '-'}  "
                   f"last beat {b['beat_at']}"
                   for b in beats) or "no consumer has ever run")
    return 0 if alive else 1


def cmd_report(args):
    from ops.report_mail import cli_report
    return cli_report(send=args.send, day=args.day, as_json=args.json)


def cmd_logs(args):
    """Everything about one mailing, message or client: the log file's records and the journal."""
    from ops import logs
    field, value = next((f, v) for f, v in (("mailing_id", args.mailing), ("message_id", args.message),
                                             ("client_id", args.client)) if v is not None)
    if field == "mailing_id":
        mailings.get_mailing(value)  # an unknown id is refused, as `stats` refuses it
    records = [{"source": "log", **r} for r in logs.matching(field, value)]
    for a in stats.journal_page(**{field[:-3]: value}, limit=None):
        records.append({"source": "journal", "ts": a.at.isoformat() + "+00:00", "msg": f"attempt {a.outcome}",
                        "mailing_id": a.mailing_id, "message_id": a.message_id, "client_id": a.client_id,
                        "http_status": a.http_status, "latency_ms": a.latency_ms, "error": a.error or None})
    records.sort(key=lambda r: r.get("ts", ""))
    if args.json:
        for r in records:
            print(json.dumps(r, ensure_ascii=False, default=str))
        return 0
    for r in records:
        if "line" in r:
            print(r["line"])
            continue
        rest = " ".join(f"{k}={v}" for k, v in r.items()
                        if k not in ("ts", "msg", "source", "level", "logger") and v is not None)
        print(f"{local_stamp(r.get('ts'))}  {r['source']:7}  {r.get('msg', '')}  {rest}")
    return 0


def local_stamp(iso):
    """A log or journal time (ISO with an offset) in the operator's zone, to the millisecond."""
    try:
        when = dt.datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso or "")
    zone = operator_zone()
    local = when.astimezone(zoneinfo.ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M:%S}.{local.microsecond // 1000:03d} {zone}"


# ---------------------------------------------------------------------------------------------------
# the HTTP API


def cmd_api(args):
    """The HTTP API (api/) served by uvicorn: one process, plain `def` routes in its thread pool."""
    import uvicorn
    from api import create_app
    print(f"the HTTP API on http://{args.host}:{args.port} (documentation: /docs, /openapi.json); "
          f"Ctrl+C stops", flush=True)
    # uvicorn's access log says the request line and status, never a header: no token reaches it.
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info", server_header=False,
                timeout_graceful_shutdown=10)
    return 0


def cmd_api_token_create(args):
    row, token = service.create_api_token(args.scope, args.name or "")
    if args.json:
        emit(args, {**api_tokens.as_dict(row), "token": token})
    else:
        print(token)  # alone on stdout: TOKEN=$(mailer api-token create --scope read)
        print(f"API token {row.id} ({row.scope}{', ' + row.name if row.name else ''}): shown this once; "
              f"only its hash is kept", file=sys.stderr)


def cmd_api_token_list(args):
    rows = [api_tokens.as_dict(r) for r in api_tokens.tokens()]
    lines = [{**r, "created_at": describe_time(parse_iso(r["created_at"])),
              "last_used_at": describe_time(parse_iso(r["last_used_at"])) if r["last_used_at"] else "never",
              "revoked_at": describe_time(parse_iso(r["revoked_at"])) if r["revoked_at"] else "-"} for r in rows]
    emit(args, rows, table(lines, ["id", "name", "scope", "created_at", "last_used_at", "revoked_at"])
         if rows else "no API token yet (mailer api-token create --scope read|operator|inbound)")


def cmd_api_token_revoke(args):
    row = service.revoke_api_token(args.id)
    emit(args, api_tokens.as_dict(row), f"API token {row.id} revoked")


def cmd_demo(args):
    from service import demo
    summary = demo.load_demo(args.clients)
    emit(args, summary, f"demo data: {summary['clients']} clients, mailings {summary['mailings']}")


# ---------------------------------------------------------------------------------------------------
# processes


def cmd_consumer(args):
    from tasks.consumer import run_consumer
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_consumer(args.workers)


def cmd_console(args):
    from console.app import run_console
    run_console(read_only=args.read_only)


def cmd_gateway_sim(args):
    import simulator
    return simulator.main(args.sim_args)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayOnFirstUse:
    """What the service sends a test message through: the engine's gateway client, made (and its
    token checked) the first time one is sent."""
    _gateway = None

    def __call__(self, msg_id, phone, text):
        if self._gateway is None:
            from engine.gateways import gateway_from_settings
            self._gateway = gateway_from_settings(_settings.current(), pool_size=1)
        return self._gateway.send(msg_id, phone, text)


class QueueWakerOnFirstUse:
    """tasks.QueueWaker, imported when first told something: huey and its redis client take longer to
    import (~170 ms) than a read such as `mailer mailings list` takes to answer."""
    _waker = None

    def _queue(self):
        if self._waker is None:
            import tasks
            self._waker = tasks.QueueWaker()
        return self._waker

    def mailing_changed(self, mailing):
        self._queue().mailing_changed(mailing)

    def work_due(self):
        self._queue().work_due()


def _die_with_parent():
    """In a child: receive SIGTERM when `mailer run` goes away, however it goes (Linux)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def cmd_run(args):
    """The console in front, a consumer (and for the probe gateway without a token, the gateway
    simulator) beside it."""
    from engine.gateways import gateway_from_settings
    settings = _settings.current()
    gateway_from_settings(settings, pool_size=1)  # credentials refused here, not in the consumer's log
    env = dict(os.environ)
    data_dir = Path(models.sqlite_path(settings.db_url) or "data/mailer.db").parent
    data_dir.mkdir(parents=True, exist_ok=True)
    children = []  # (role, process, log), for the console to watch
    if settings.gateway == CONSOLE:
        print(f"MAILER_GATEWAY=console: each message is written to the consumer's log "
              f"({data_dir / 'consumer.log'}) and counted as sent; nothing leaves this machine.", flush=True)
    if settings.gateway == PROBE and not env.get("PROBE_TOKEN"):
        port, token = _free_port(), "sim-" + secrets.token_hex(12)
        env.update(PROBE_URL=f"http://127.0.0.1:{port}/v1", PROBE_TOKEN=token)
        sim_log = open(data_dir / "gateway-sim.log", "ab")
        children.append(("simulator", subprocess.Popen(
            [sys.executable, "-m", "simulator", "--port", str(port), "--token", token,
             "--latency", "20-80", "--log", str(data_dir / "gateway-sim-accepted.jsonl")],
            env=env, stdout=sim_log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent),
            str(data_dir / "gateway-sim.log")))
        print(f"PROBE_TOKEN is not set: sending to the local gateway simulator at {env['PROBE_URL']} "
              f"(nothing leaves this machine). Set PROBE_TOKEN to use the real gateway.", flush=True)
    from service import demo
    if args.demo and demo.database_is_empty():
        demo.load_demo()
    consumer_log = open(data_dir / "consumer.log", "ab")
    children.append(("consumer", subprocess.Popen([sys.executable, "-m", "app", "consumer"], env=env,
                                                  stdout=consumer_log, stderr=subprocess.STDOUT,
                                                  preexec_fn=_die_with_parent),
                     str(data_dir / "consumer.log")))
    print(f"consumer started (log: {data_dir / 'consumer.log'})", flush=True)
    if args.api:
        api_log = open(data_dir / "api.log", "ab")
        children.append(("api", subprocess.Popen(
            [sys.executable, "-m", "app", "api", "--host", args.api_host, "--port", str(args.api_port)],
            env=env, stdout=api_log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent),
            str(data_dir / "api.log")))
        print(f"HTTP API started on http://{args.api_host}:{args.api_port} (log: {data_dir / 'api.log'})",
              flush=True)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # a closed terminal stops the children too
        signal.signal(signum, lambda *_: sys.exit(0))
    try:
        if args.headless:
            print("running headless; Ctrl+C stops", flush=True)
            while all(c.poll() is None for _, c, _ in children):
                time.sleep(0.5)
        else:
            # The console shows the gateway the consumer sends to (the simulator's, when it started one).
            os.environ.update({k: env[k] for k in ("PROBE_URL", "PROBE_TOKEN") if k in env})
            _settings.reload()
            from console.app import Child, run_console
            # The dashboard watches them: a simulator or consumer that exits is said, not hidden.
            run_console(owns_consumer=True, children=[Child(*c) for c in children])
    except KeyboardInterrupt:
        pass
    finally:
        for _, child, _ in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for _, child, _ in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


# ---------------------------------------------------------------------------------------------------
# parser


def whole_number(minimum, maximum=MAX_ID):
    """An argument type: a whole number written in the digits 0-9, from minimum to maximum."""
    def parse(text):
        why = whole_number_error(text, minimum, maximum)
        if why:
            raise argparse.ArgumentTypeError(why)
        return int(text)
    return parse


ID, COUNT = whole_number(1), whole_number(0)


def utf8_text(text):
    """An argument type for text: bytes that are not UTF-8 reach argv as lone surrogates."""
    bad = next((i for i, c in enumerate(text, 1) if "\ud800" <= c <= "\udfff"), None)
    if bad:
        raise argparse.ArgumentTypeError(f"is not valid UTF-8 (character {bad})")
    return text


def on_off(text):
    """An argument type: on or off -> True or False."""
    value = text.strip().lower()
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"must be on or off; got {quote_value(text)}")
    return value == "on"


def argument_errors(message):
    """argparse's own message -> [(field, why)]; a field is the argument's name without dashes."""
    def field(name):
        return name.split("/")[-1].lstrip("-").lower()
    if match := re.fullmatch(r"the following arguments are required: (.*)", message, re.S):
        return [(field(name), "is required") for name in match.group(1).split(", ")]
    if match := re.fullmatch(r"argument (\S+): (.*)", message, re.S):
        return [(field(match.group(1)), match.group(2))]
    if match := re.fullmatch(r"one of the arguments (.*) is required", message, re.S):
        names = match.group(1).split()
        return [("/".join(map(field, names)), f"one of {', '.join(names)} is required")]
    if match := re.fullmatch(r"unrecognized arguments: (.*)", message, re.S):
        return [("arguments", f"not recognized: {match.group(1)}")]
    return [("arguments", message)]


class Parser(argparse.ArgumentParser):
    """argparse whose own refusals (a bad number, a missing flag, an unknown choice) read like every
    other refusal: `error: <field>: <why>` on stderr, exit 2. Subcommands' parsers are of this class
    too (add_subparsers makes them of its parser's class); --help is untouched."""

    def error(self, message):
        self.exit(EXIT_INVALID,
                  "".join(f"error: {field}: {why}\n" for field, why in argument_errors(message)))


class IntermixedParser(Parser):
    """A subcommand whose positionals may come after its options (`mailings export 3 --status failed
    out.csv`), which argparse's default parsing refuses once a positional was read before an option."""
    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:  # the two passes parse_known_intermixed_args makes
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def paging(p):
    p.add_argument("--limit", type=COUNT, default=50, help="show at most this many rows (default 50)")
    p.add_argument("--offset", type=COUNT, default=0, help="skip this many rows first (default 0)")


def api_address(p, host_flag, port_flag):
    p.add_argument(host_flag, type=utf8_text, default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument(port_flag, type=whole_number(1, 65535), default=8000, help="the port (default 8000)")


def build_parser():
    parser = Parser(prog="mailer", description="SMS mailing service",
                    epilog="The database is MAILER_DB_URL (default sqlite:///data/mailer.db, in the current "
                           "folder); the README lists every variable.")
    sub = parser.add_subparsers(dest="command")

    def add(parent, name, func, help_text, json_flag=True):
        p = parent.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        if json_flag:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        return p

    def audience_flags(p, edit):
        clear = " ('' clears it)" if edit else ""
        p.add_argument("--operator", type=utf8_text, action="append",
                       help="only clients of this operator code; again (or 900,916) for any of several" + clear)
        p.add_argument("--tag", type=utf8_text, action="append",
                       help="only clients with this tag; again for any of several" + clear)
        p.add_argument("--all-tags", type=utf8_text, action="append", dest="all_tags", metavar="A,B",
                       help="only clients with every one of these tags" + clear)
        p.add_argument("--not-tag", type=utf8_text, action="append", dest="not_tags", metavar="TAG",
                       help="leave out clients with this tag; again for more" + clear)
        p.add_argument("--skip-recent", type=utf8_text, dest="skip_recent", metavar="24h",
                       help="leave out clients messaged by any mailing in the last 24h (90m, 2d, 1w; "
                            "judged when the audience is built)" + (" ('' or off: none)" if edit else ""))

    clients = sub.add_parser("clients", help="the client directory").add_subparsers(dest="action", required=True)
    p = add(clients, "add", cmd_clients_add, "add a client; prints its id")
    p.add_argument("--phone", type=utf8_text, required=True, help="7 followed by 10 digits")
    p.add_argument("--operator", type=utf8_text,
                   help="3-digit operator code (default: digits 2-4 of the phone)")
    p.add_argument("--tag", type=utf8_text, action="append",
                   help="a tag; again for more (the first is its `tag`)")
    p.add_argument("--tz", type=utf8_text, help="IANA zone (default: MAILER_TZ or this machine's)")
    p.add_argument("--name", type=utf8_text, help="the client's name, for {name} in a text")
    p.add_argument("--attr", type=utf8_text, action="append", metavar="KEY=VALUE",
                   help="an attribute for {attr.KEY} in a text (repeatable; KEY: a-z, 0-9, _)")
    p = add(clients, "edit", cmd_clients_edit, "change a client")
    p.add_argument("id", type=ID)
    for flag in ("--phone", "--operator", "--tz", "--name"):
        p.add_argument(flag, type=utf8_text)
    p.add_argument("--tag", type=utf8_text, action="append",
                   help="its tags become those given (again for more; '' for none)")
    p.add_argument("--attr", type=utf8_text, action="append", metavar="KEY=VALUE",
                   help="set an attribute (repeatable); KEY= removes it")
    p = add(clients, "delete", cmd_clients_delete, "delete clients (their messages stay)")
    p.add_argument("ids", type=ID, nargs="+", metavar="id")
    p = add(clients, "list", cmd_clients_list, "list clients, newest first")
    p.add_argument("--search", type=utf8_text, default="", help="phone, operator, tag or zone")
    paging(p)
    p = add(clients, "import", cmd_clients_import,
            "import a CSV with header phone,operator,tag,tz (tags: more tags, ';'-separated; name; any other "
            "column an attribute)")
    p.add_argument("file")
    p.add_argument("--all-or-nothing", action="store_true", help="import nothing if any row is bad")
    p = add(clients, "export", cmd_clients_export, "write the directory as CSV", json_flag=False)
    p.add_argument("file", nargs="?")

    optout = sub.add_parser("optout", help="the stop list: phones that refused mailings").add_subparsers(
        dest="action", required=True)
    p = add(optout, "add", cmd_optout_add, "put phones on the stop list (their pending messages are "
                                            "suppressed, no new mailing reaches them)")
    p.add_argument("phones", type=utf8_text, nargs="+", metavar="phone")
    p.add_argument("--reason", type=utf8_text, default="", help="why, as the client said it")
    p = add(optout, "remove", cmd_optout_remove, "take phones off the stop list (the client asked again)")
    p.add_argument("phones", type=utf8_text, nargs="+", metavar="phone")
    p = add(optout, "list", cmd_optout_list, "the stop list, newest first")
    p.add_argument("--search", type=utf8_text, default="", help="part of a phone or a reason")
    paging(p)
    p = add(optout, "import", cmd_optout_import, "put every phone of a CSV (header phone[,reason]) on the list")
    p.add_argument("file")
    p.add_argument("--reason", type=utf8_text, default="", help="the reason of rows that give none")

    mailings = sub.add_parser("mailings", help="mailings").add_subparsers(dest="action", required=True)
    for name, func, help_text in (("create", cmd_mailings_create, "create a mailing; prints its id"),
                                  ("edit", cmd_mailings_edit, "change a mailing")):
        p = add(mailings, name, func, help_text)
        if name == "edit":
            p.add_argument("id", type=ID)
        required = name == "create"
        p.add_argument("--text", type=utf8_text, required=required)
        p.add_argument("--start", type=utf8_text, required=required, help="ISO time, now, or +10m/+2h/+1d")
        p.add_argument("--end", type=utf8_text, required=required, help="ISO time or +10m/+2h/+1d")
        audience_flags(p, edit=name == "edit")
        p.add_argument("--window", type=utf8_text,
                       help="HH:MM-HH:MM in each client's local time, or 'any' (default on create: "
                            "MAILER_DEFAULT_WINDOW)")
        p.add_argument("--days", type=utf8_text,
                       help="the weekdays it sends on, in each client's local time: mon-fri, "
                            "mon,wed,fri, sat-sun, or any (default: every day)")
        p.add_argument("--confirm-parts", action="store_true",
                       help="save a text of more SMS parts than MAILER_MAX_PARTS")
        if name == "create":
            p.add_argument("--spread", action="store_true",
                           help="send its messages evenly until its end (with a window: until the "
                                "window's close in each client zone), not all at once")
            p.add_argument("--dry-run", action="store_true",
                           help="write nothing: show the audience, the SMS parts and the cost")
        else:
            p.add_argument("--spread", type=on_off, metavar="on|off",
                           help="spread its messages evenly until its end (also while it runs: what "
                                "is unsent is spread from now; off: what is not tried yet is due now)")
    p = add(mailings, "clone", cmd_mailings_clone,
            "a new mailing from mailing ID: its text, filter, window, days and spread (any of them given "
            "instead), from --start (default now) for as long as ID ran (its end minus its start) unless "
            "--end is given; prints its id. With --only, a resend: its audience is the clients of ID's "
            "messages in those statuses when it starts (deleted and opted-out clients left out, at each "
            "client's current phone), its filter narrowing them")
    p.add_argument("id", type=ID)
    p.add_argument("--only", type=utf8_text, metavar="STATUSES",
                   help="failed, expired, cancelled and/or unknown (in doubt: each may have been delivered, "
                        "so only when named), comma-separated: e.g. failed,expired")
    p.add_argument("--text", type=utf8_text)
    p.add_argument("--start", type=utf8_text, help="ISO time, now, or +10m/+2h/+1d (default: now)")
    p.add_argument("--end", type=utf8_text, help="ISO time or +10m/+2h/+1d (default: the start plus ID's duration)")
    audience_flags(p, edit=True)
    p.add_argument("--window", type=utf8_text, help="HH:MM-HH:MM in each client's local time, or 'any'")
    p.add_argument("--days", type=utf8_text, help="mon-fri, mon,wed,fri, sat-sun, or any")
    p.add_argument("--spread", type=on_off, metavar="on|off", help="spread its messages evenly until its end")
    p.add_argument("--confirm-parts", action="store_true",
                   help="save a text of more SMS parts than MAILER_MAX_PARTS")
    p.add_argument("--dry-run", action="store_true",
                   help="write nothing: show the audience, the SMS parts and the cost")
    p = add(mailings, "delete", cmd_mailings_delete,
            "delete a mailing that never started (with its messages); one that started is archived: hidden "
            "from lists (mailings list --archived shows it), its messages and journal kept for statistics "
            "and reports. A running or paused mailing is refused: cancel it first")
    p.add_argument("id", type=ID)
    for action in ("pause", "resume", "cancel"):
        p = add(mailings, action, cmd_mailings_state, f"{action} a mailing")
        p.add_argument("id", type=ID)
        p.set_defaults(action=action)
    p = add(mailings, "resend", cmd_mailings_resend,
            "send a mailing's in-doubt (unknown) messages again, with the same msgId: each may already "
            "have reached its phone")
    p.add_argument("id", type=ID)
    p.add_argument("--in-doubt", action="store_true", required=True,
                   help="the messages to resend: those whose last attempt is in doubt")
    p = add(mailings, "test", cmd_mailings_test,
            "send a mailing's text now to your own numbers (its window and statistics left alone)")
    p.add_argument("id", type=ID)
    p.add_argument("--to", type=utf8_text, action="append",
                   help="a number to send it to (again for more; default: MAILER_TEST_PHONES)")
    p = add(mailings, "list", cmd_mailings_list, "list mailings with their progress, newest first")
    p.add_argument("--archived", action="store_true", help="archived mailings too (hidden by default)")
    paging(p)
    p = add(mailings, "show", cmd_mailings_show, "a mailing, its counts and its messages")
    p.add_argument("id", type=ID)
    p.add_argument("--status", choices=MESSAGE_STATUSES)
    paging(p)
    mailings._parser_class = IntermixedParser
    p = add(mailings, "export", cmd_mailings_export,
            "a mailing's messages as CSV, streamed (what the console's x on a mailing writes)", json_flag=False)
    mailings._parser_class = Parser
    p.add_argument("id", type=ID)
    p.add_argument("--status", type=utf8_text, action="append",
                   help="only messages of this status (again, or a comma list, for more): "
                        + ", ".join(MESSAGE_STATUSES))
    p.add_argument("file", nargs="?", help="the CSV file to write (replaced once whole); - or none: stdout")

    p = add(sub, "stats", cmd_stats, "statistics as JSON, per mailing", json_flag=False)
    # Always JSON; --json is still taken (scripts pass it to every command) but not offered.
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("id", type=ID, nargs="?")
    add(sub, "health", cmd_health, "is a consumer alive? (exit 0 if so)")
    p = add(sub, "logs", cmd_logs, "everything about one mailing, message or client (log file and journal)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--mailing", type=ID)
    which.add_argument("--message", type=ID)
    which.add_argument("--client", type=ID)
    p = add(sub, "report", cmd_report, "the daily report: print it, or send it by e-mail")
    p.add_argument("--day", type=utf8_text, help="YYYY-MM-DD, today (the default) or yesterday, in MAILER_TZ")
    p.add_argument("--send", action="store_true", help="send it to MAILER_REPORT_TO")
    p = add(sub, "demo", cmd_demo, "load demo clients and mailings")
    p.add_argument("--clients", type=whole_number(0, 10_000_000), default=500)
    p = add(sub, "consumer", cmd_consumer, "run the huey consumer that sends", json_flag=False)
    p.add_argument("--workers", type=whole_number(1, 1024))
    p = add(sub, "console", cmd_console, "the operator console", json_flag=False)
    p.add_argument("--read-only", action="store_true",
                   help="look without touching: every change is refused, the database opened read-only "
                        "(exports to CSV still work)")
    p = add(sub, "run", cmd_run, "console with a consumer beside it (the default)", json_flag=False)
    p.add_argument("--demo", action="store_true", help="load demo data into an empty database")
    p.add_argument("--headless", action="store_true", help="no console: consumer (and simulator) only")
    p.add_argument("--api", action="store_true", help="the HTTP API beside them (mailer api)")
    api_address(p, "--api-host", "--api-port")
    p = add(sub, "api", cmd_api, "serve the HTTP API (JSON; documentation at /docs)", json_flag=False)
    api_address(p, "--host", "--port")
    tokens = sub.add_parser("api-token", help="tokens of the HTTP API").add_subparsers(dest="action", required=True)
    p = add(tokens, "create", cmd_api_token_create, "make a token; prints it once (only its hash is kept)")
    p.add_argument("--scope", type=utf8_text, required=True,
                   help="read (reads), operator (reads and changes) or inbound (only POST /inbound)")
    p.add_argument("--name", type=utf8_text, help="what it is for, e.g. crm")
    add(tokens, "list", cmd_api_token_list, "the tokens: id, name, scope, when made, last used, revoked")
    p = add(tokens, "revoke", cmd_api_token_revoke, "revoke a token: refused from now on")
    p.add_argument("id", type=ID)
    p = add(sub, "gateway-sim", cmd_gateway_sim, "a gateway simulator on 127.0.0.1 (--protocol probe or smsaero)",
            json_flag=False)
    p.add_argument("sim_args", nargs=argparse.REMAINDER, help="see mailer gateway-sim -- --help")
    return parser


# Commands that only read: they never create a database, so a typo in MAILER_DB_URL, or running them
# from another folder, is said, not answered from a fresh empty database.
READS_ONLY = {("clients", "list"), ("clients", "export"), ("mailings", "list"), ("mailings", "show"),
              ("mailings", "export"),
              ("optout", "list"), ("api-token", "list"),
              ("stats", None), ("logs", None), ("report", None)}


def database_exists(settings):
    """False only for a SQLite file that is not there (a server database is taken to exist)."""
    path = models.sqlite_path(settings.db_url)
    return not path or path == ":memory:" or Path(path).exists()


def refuse_a_missing_database(settings):
    path = models.sqlite_path(settings.db_url)
    if not database_exists(settings):
        raise ValidationError({"database": f"there is none at {Path(path).resolve()} (MAILER_DB_URL="
                                           f"{settings.db_url}; a relative path is from the current folder)"})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `mailer ... | head` ends quietly
    if argv[:1] == ["gateway-sim"]:
        # The simulator parses its own flags (`mailer gateway-sim --port 8090 ...`), product-free.
        import simulator
        return simulator.main([a for a in argv[1:] if a != "--"])
    parser = build_parser()
    args = parser.parse_args(argv or ["run"])
    if args.command is None:
        args = parser.parse_args(["run"])
    if args.command == "gateway-sim":
        return args.func(args) or 0
    try:
        settings = _settings.current()  # a bad variable is an `error: MAILER_...: why`, exit 2
        read_only = getattr(args, "read_only", False)
        if (args.command, getattr(args, "action", None)) in READS_ONLY or read_only:
            refuse_a_missing_database(settings)
        if args.command == "health" and not database_exists(settings):
            # The container's health probe: no database yet means no consumer yet; it makes none.
            emit(args, {"alive": 0, "consumers": []}, "no consumer has ever run (there is no database yet)")
            return 1
        models.open_database(read_only=read_only)
        from ops import logs
        logs.setup({"consumer": "consumer", "console": "console", "run": "console", "api": "api"}
                   .get(args.command, "cli"))
        if args.command not in ("consumer", "gateway-sim"):
            # The command line and the console tell the consumers through the queue.
            service.use_waker(QueueWakerOnFirstUse())
            service.use_sender(GatewayOnFirstUse())
        return args.func(args) or 0
    except ValidationError as exc:
        for field, message in exc.errors.items():
            print(f"error: {field}: {message}", file=sys.stderr)
        return EXIT_INVALID
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        if exc.filename is None:
            raise
        print(f"error: file: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_INVALID
    except (pw.OperationalError, pw.DatabaseError) as exc:
        print(f"error: the database at {models.redact_url(_settings.current().db_url)} cannot be used: "
              f"{exc}", file=sys.stderr)
        return EXIT_DATABASE
    except Exception as exc:
        if not type(exc).__module__.startswith(("redis", "psycopg", "huey")):
            raise
        # The queue (Redis, or huey's tables in PostgreSQL) is down: what the command wrote to the
        # database stays, and a consumer's sweep picks it up within a minute once the queue is back.
        url = settings.queue_url or "(the default queue)"
        print(f"error: the queue at {models.redact_url(url)} cannot be used: {exc}", file=sys.stderr)
        return EXIT_DATABASE


if __name__ == "__main__":
    sys.exit(main())
