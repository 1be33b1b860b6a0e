"""Turning domain values into display text. Everything user-typed becomes a literal `Text`."""
import datetime as dt
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


def page_label(event, noun):
    """'page 2 of 10,000 · 1,000,000 client(s)' (the count may still be running)."""
    if event.total is None:
        return f"page {event.page + 1:,} of … · counting {noun}(s)…"
    return f"page {event.page + 1:,} of {event.pages:,} · {event.total:,} {noun}(s)"
