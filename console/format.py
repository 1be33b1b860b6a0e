"""Turning domain values into display text. Everything user-typed becomes a literal `Text`."""
import datetime as dt
import math
import zoneinfo

from rich.text import Text

from domain import times, vocabulary


def lit(value, style=""):
    """A literal Text: `[bold]` or `[@click=...]` in user data is shown as typed."""
    return Text("" if value is None else str(value), style=style, no_wrap=True, overflow="ellipsis")


def one_line(value, width=None):
    """User text on one line (newlines shown as ⏎), optionally cut to `width` characters."""
    text = ("" if value is None else str(value)).replace("\r", "").replace("\n", " ⏎ ")
    if width is not None and len(text) > width:
        text = text[: max(0, width - 1)] + "…"
    return Text(text, no_wrap=True, overflow="ellipsis")


def local_time(value, tz=None, fmt="%Y-%m-%d %H:%M"):
    """A naive-UTC time in the operator's zone, without the zone name."""
    if value is None:
        return ""
    zone = zoneinfo.ZoneInfo(tz or times.operator_zone())
    return value.replace(tzinfo=dt.timezone.utc).astimezone(zone).strftime(fmt)


OUTCOME_STYLES = {
    "sent": "green", "retry": "yellow", "failed": "red", "expired": "magenta",
    "cancelled": "dim", "unknown": "bold red", "suppressed": "dim cyan",
}


def state_text(state):
    styles = {"scheduled": "cyan", "running": "bold green", "paused": "yellow",
              "finished": "dim", "cancelled": "dim red"}
    return Text(state, style=styles.get(state, ""))


def outcome_text(outcome):
    return Text(vocabulary.status_label(outcome), style=OUTCOME_STYLES.get(outcome, ""))


def progress_text(sent, done, total, width=20, percent=True):
    """A text bar: sent in green, other settled messages in red, the rest dim; then the percentage
    sent (unless not `percent`) and sent/total."""
    text = Text(no_wrap=True)
    if total <= 0:
        text.append("░" * width, style="dim")
        text.append("   0%  0/0" if percent else "  0/0")
        return text
    sent_cells = round(width * sent / total)
    done_cells = max(sent_cells, round(width * done / total))
    text.append("█" * sent_cells, style="green")
    text.append("█" * (done_cells - sent_cells), style="red")
    text.append("░" * (width - done_cells), style="dim")
    text.append(f" {100 * sent / total:3.0f}%  {sent}/{total}" if percent else f"  {sent}/{total}")
    return text


def finish_text(finish, compact=False):
    """A running mailing's expected finish (a stats.Finish): '≈ in 3 min' within the hour, '≈ 14:05'
    (with the date on another day) beyond; in red 'after its end: ~N will not go' when it falls after
    the end; 'spread until 14:05'; '—' when unknown. `compact` (under 120 columns, where the text
    must keep its room): '≈ 3 min', '~N won't go', 'until 14:05', 'none left'."""
    if finish is None:
        return Text("—", style="dim", no_wrap=True)
    if finish.none_pending:
        return Text("none left" if compact else "none pending", style="dim", no_wrap=True)
    if finish.spread_until is not None:
        return Text(f"{'' if compact else 'spread '}until {local_time(finish.spread_until, fmt='%H:%M')}",
                    no_wrap=True)
    if finish.late:
        return Text(f"~{finish.missed:,} won't go" if compact else f"after its end: ~{finish.missed:,} will not go",
                    style="bold red", no_wrap=True)
    soon = "≈ " if compact else "≈ in "
    if finish.seconds < 60:
        return Text(f"{soon}{max(1, math.ceil(finish.seconds))} s", no_wrap=True)
    if finish.seconds < 3600:
        return Text(f"{soon}{math.ceil(finish.seconds / 60)} min", no_wrap=True)
    read_at = finish.at - dt.timedelta(seconds=finish.seconds)
    same_day = local_time(read_at, fmt="%Y-%m-%d") == local_time(finish.at, fmt="%Y-%m-%d")
    return Text(f"≈ {local_time(finish.at, fmt='%H:%M' if same_day else '%m-%d %H:%M')}", no_wrap=True)


def page_label(event, noun):
    """'page 2 of 10,000 · 1,000,000 client(s)' (the count may still be running)."""
    if event.total is None:
        return f"page {event.page + 1:,} of … · counting {noun}(s)…"
    return f"page {event.page + 1:,} of {event.pages:,} · {event.total:,} {noun}(s)"
