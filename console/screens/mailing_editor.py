"""Create or edit a mailing. Times are read back as the instant they mean, the audience is counted
as the filter changes, a window that never opens before the end (in the audience's zones) is
pointed out, and whatever the domain refuses is shown next to its field."""
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Button, Checkbox, Input, Label, Static, TextArea

from domain import audience, mailings, segments, settings, templates, times, validation, vocabulary, windows
from domain.mailings import EDITABLE_WHILE_RUNNING
from domain.vocabulary import PAUSED, RUNNING, SCHEDULED
import service
from console.format import local_time
from console.screens.confirm import ConfirmScreen
from console.screens.form import EditForm
from console.widgets import Field, FormBody, KeyFooter
from console.workers import db_work, deliver

AUDIENCE = ("operator", "tag", "all_tags", "not_tags", "skip_recent")  # the filter's fields
INPUTS = ("start", "end") + AUDIENCE + ("window", "days")
FIELDS = ("text",) + INPUTS + ("spread",)


# The filter's fields as audience.clean_filter's arguments; each a comma list as typed.
FILTER_ARGS = {"operator": "operators", "tag": "tags", "all_tags": "all_tags", "not_tags": "not_tags",
               "skip_recent": "skip_recent"}


def filter_values(row):
    """The filter's fields of a stats.MailingRow, as the editor shows them."""
    flt = row.filter or audience.Filter.of(row.operator, row.tag)
    return {"operator": ", ".join(flt.operators), "tag": ", ".join(flt.tags), "all_tags": ", ".join(flt.all_tags),
            "not_tags": ", ".join(flt.not_tags), "skip_recent": audience.format_duration(flt.skip_recent) or ""}


class MailingEditor(EditForm):
    """Dismisses with the saved Mailing row, or None when cancelled."""

    HELP_TITLE = "Mailing editor"
    FIELDS = FIELDS
    DEFAULT_CSS = """
    MailingEditor #text-preview {
        height: auto;
        padding: 0 1;
        color: $text-muted;
    }
    MailingEditor #text-preview.-none {
        display: none;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="editor.cancel"),
        Binding("ctrl+s", "save", "Save", id="editor.save"),
    ]

    _debounce = None
    _window_debounce = None
    _window_note = None  # (inputs, text, style) from the last check of the window against start/end/zones
    _counted = None  # (filter, matching, opted out, {operator: recipients}, source) last counted
    # A personal text's audience as last read: ((filter, source), placeholders, value profile,
    # sample client or None), for its longest rendering and its preview (mailings.value_profile)
    _personal = None
    _personal_debounce = None
    known = ([], [])

    def __init__(self, mailing=None, clone_of=None):
        super().__init__()
        self.mailing = mailing  # None: a new mailing; else the stats.MailingRow to edit
        # a new mailing cloned from this stats.MailingRow: its fields pre-filled, and an Only field
        # that makes it a resend to the clients of its messages in those statuses
        self.clone_of = clone_of
        if clone_of is not None:
            self.FIELDS = FIELDS + ("only",)

    def initial_values(self):
        m = self.mailing
        if self.clone_of is not None:
            c = self.clone_of
            # from now for as long as the original ran; no window is any hour (not the default one)
            return {"text": c.text, "start": "now", "end": mailings.duration_text(c.end_at - c.start_at),
                    **filter_values(c), "window": c.window or "any",
                    "days": c.days or "", "spread": bool(c.spread), "only": ""}
        if m is None:
            return {"text": "", "start": "now", "end": "+1h", **{name: "" for name in AUDIENCE}, "window": "",
                    "days": "", "spread": False}
        iso = "%Y-%m-%dT%H:%M:%S"
        return {"text": m.text, "start": local_time(m.start_at, fmt=iso), "end": local_time(m.end_at, fmt=iso),
                **filter_values(m), "window": m.window or "", "days": m.days or "",
                "spread": bool(m.spread)}

    def compose(self):
        self.initial = self.initial_values()
        v = self.initial
        zone = times.operator_zone()
        if self.clone_of is not None:
            title = f"New mailing: a clone of mailing {self.clone_of.id}"
        elif self.mailing is None:
            title = "New mailing"
        else:
            title = f"Edit mailing {self.mailing.id} ({self.mailing.state})"
        with Vertical(classes="dialog editor-dialog"):
            yield Label(title, classes="dialog-title")
            with FormBody():
                yield from self._fields(v, zone)
            # The match count, a refusal and the buttons stay in view below the fields, which scroll.
            yield Static("", id="audience", classes="audience")
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def _fields(self, v, zone):
        yield Field("text", "Text", TextArea(v["text"], id="text", soft_wrap=True, tab_behavior="focus",
                                             show_line_numbers=False, highlight_cursor_line=False))
        # a personal text rendered for the audience's first client, shown literally
        yield Static("", id="text-preview", classes="-none")
        yield Field("start", "Start", Input(v["start"], id="start", compact=True,
                                            placeholder="now, +10m, or 2026-12-01T09:00"))
        yield Field("end", "End", Input(v["end"], id="end", compact=True,
                                        placeholder="+1h, +1d, or 2026-12-01T21:00"))
        # No max_length: it would silently cut what is typed (12 then 900 gave 129); the whole
        # value is checked, and refused with a message, instead.
        yield Field("operator", "Operators", Input(v["operator"], id="operator", compact=True,
                                                   placeholder="any operator, or like 900, 916"))
        yield Field("tag", "Tags any", Input(v["tag"], id="tag", compact=True,
                                             placeholder="any tag, or clients with one of: vip, new"))
        yield Field("all_tags", "Tags all", Input(v["all_tags"], id="all_tags", compact=True,
                                                  placeholder="optional: clients with every one of these"))
        yield Field("not_tags", "Tags none", Input(v["not_tags"], id="not_tags", compact=True,
                                                   placeholder="optional: leave out clients with any of these"))
        yield Field("skip_recent", "Skip recent", Input(v["skip_recent"], id="skip_recent", compact=True,
                                                        placeholder="optional, like 24h: leave out clients "
                                                                    "messaged lately"))
        yield Field("window", "Window", Input(v["window"], id="window", compact=True,
                                              placeholder="optional, like 09:00-21:00"))
        yield Field("days", "Days", Input(v["days"], id="days", compact=True,
                                          placeholder="every day, or like mon-fri"))
        yield Field("spread", "Spread", Checkbox("evenly until the end", v["spread"], id="spread", compact=True))
        if self.clone_of is not None:
            yield Field("only", "Only", Input(v["only"], id="only", compact=True,
                                              placeholder="everyone the filter matches, or failed,expired"))
        yield Static(Text(f"Times without an offset are in {zone}."), classes="note")

    def on_mount(self):
        self._debounce = None
        self.known = ([], [])
        if self.mailing is not None and self.mailing.state != SCHEDULED:
            for name in FIELDS:
                if name not in EDITABLE_WHILE_RUNNING:
                    self.query_one(f"#{name}").disabled = True
            self.query_one(".note", Static).update(Text(
                f"This mailing is {self.mailing.state}: only its text, end and spread can change."))
        for name in self.FIELDS:
            self._update_hint(name)
        self.query_one("#text", TextArea).focus()
        self._load_known()
        self._count_audience(*self._filter())
        self._check_window(self._window_inputs())
        self._refresh_personal()

    # -- live hints -------------------------------------------------------------------------------

    def field_value(self, name):
        widget = self.query_one(f"#{name}")
        if isinstance(widget, Checkbox):
            return widget.value
        return widget.text if isinstance(widget, TextArea) else widget.value.strip()

    @on(TextArea.Changed, "#text")
    def _text_changed(self, event):
        self._changed("text")

    @on(Input.Changed, ", ".join(f"#{name}" for name in INPUTS + ("only",)))
    def _input_changed(self, event):
        self._changed(event.input.id)

    @on(Checkbox.Changed, "#spread")
    def _spread_changed(self, event):
        self._update_hint("spread")

    def _changed(self, name):
        self._update_hint(name)  # (the form clears the field's error: FormScreen._field_changed)
        if name == "text" or (name in AUDIENCE + ("only",) and self._placeholders()):
            self._refresh_personal()
        if name in AUDIENCE + ("only",):
            if self._debounce is not None:
                self._debounce.stop()
            self._debounce = self.set_timer(0.25, lambda: self._count_audience(*self._filter()))
        if name in ("start", "end", "window", "days") and self._counted is not None:
            # the caps' shortfall is arithmetic on the counts made: shown again, no query
            self._show_audience(*self._counted)
        if name != "text":
            if self._window_debounce is not None:
                self._window_debounce.stop()
            self._window_debounce = self.set_timer(0.25, lambda: self._check_window(self._window_inputs()))

    def _update_hint(self, name):
        field = self.query_one(f"#field-{name}", Field)
        value = self.field_value(name)
        if name == "text":
            n = len(value)
            over = n > validation.MAX_TEXT
            counted = self._text_segments(value)
            long = counted.parts > settings.current().max_parts
            field.set_hint(f"{n} / {validation.MAX_TEXT} characters" + (" (too long)" if over else "")
                           + f" · {counted.encoding}"
                           + (f" (because of «{counted.forced_by}»)" if counted.forced_by else "")
                           + f", {counted.parts} SMS part{'' if counted.parts == 1 else 's'}"
                           + (f" (more than {settings.current().max_parts}: asks before saving)" if long else "")
                           + (" on its longest rendering" if templates.compile_text(value).personal else ""),
                           style="bold red" if over else "yellow" if long else "")
            try:
                templates.check(value)
            except validation.ValidationError as exc:
                field.set_hint(f"⚠ {exc.errors['text']}", style="yellow", warning=True)
            if self._counted is not None:
                self._show_audience(*self._counted)
        elif name in ("start", "end"):
            try:
                when = times.parse_when(value, name)
                field.set_hint(f"= {times.describe_time(when)}")
            except validation.ValidationError as exc:
                field.set_hint(f"⚠ {exc.errors[name]}", style="yellow", warning=True)
        elif name == "window":
            try:
                window = windows.parse_window(value)
                # the note of the last check, while it is about the fields as they are
                note = self._window_note
                if note and note[0] == self._window_inputs():  # (also a days-only check)
                    field.set_hint(note[1], style=note[2])
                elif window is None and not value and self.mailing is None and settings.current().default_window:
                    field.set_hint(f"empty: the default {settings.current().default_window} in each client's "
                                   f"local time (MAILER_DEFAULT_WINDOW); 'any' for any time of day")
                else:
                    field.set_hint("any time of day" if window is None
                                   else f"only {windows.format_window(*window)} in each client's local time")
            except validation.ValidationError as exc:
                field.set_hint(f"⚠ {exc.errors['window']}", style="yellow", warning=True)
        elif name == "days":
            try:
                days = windows.format_days(windows.parse_days(value))
                field.set_hint("every day" if days is None else f"only on {days} in each client's local time")
            except validation.ValidationError as exc:
                field.set_hint(f"⚠ {exc.errors['days']}", style="yellow", warning=True)
        elif name == "spread":
            field.set_hint(self._spread_hint(value))
        elif name == "only":
            if not value:
                field.set_hint(f"empty: a new mailing to everyone the filter matches; or a resend to the "
                               f"clients of mailing {self.clone_of.id}'s messages in these statuses: "
                               f"{', '.join(vocabulary.RESEND_STATUSES)} (unknown: in doubt, it may have "
                               f"been delivered)")
                return
            try:
                field.set_hint(f"{mailings.describe_source((self.clone_of.id, mailings.parse_statuses(value)))} "
                               f"when it starts (deleted and opted-out clients left out); the filter "
                               f"narrows them")
            except validation.ValidationError as exc:
                field.set_hint(f"⚠ {exc.errors['only']}", style="yellow", warning=True)
        elif name == "skip_recent":
            try:
                seconds = audience.parse_duration(value)
            except validation.ValidationError as exc:
                field.set_hint(f"⚠ {exc.errors['skip_recent']}", style="yellow", warning=True)
                return
            field.set_hint("nobody left out for being messaged lately" if seconds is None else
                           f"leaves out clients messaged by any mailing in the last "
                           f"{audience.format_duration(seconds)} (judged when it starts)")
        elif name in AUDIENCE:
            try:
                audience.clean_filter(**{FILTER_ARGS[name]: value}, check_known=False)
            except validation.ValidationError as exc:
                field.set_hint(f"⚠ {next(iter(exc.errors.values()))}", style="yellow", warning=True)
                return
            known = self.known[0 if name == "operator" else 1]
            shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
            field.set_hint(("comma-separated; " if value else "") + (f"known: {shown}" if known else "no values yet"))

    def _spread_hint(self, on):
        """What the Spread switch means, for this mailing as it is."""
        live = self.mailing is not None and self.mailing.state in (RUNNING, PAUSED)
        was = live and bool(self.mailing.spread)
        if on and live and not was:
            return "from now: what is unsent goes evenly until the end (a window: until it closes)"
        if not on and was:
            return "off: what is not tried yet goes now, as fast as the gateway takes it"
        if on:
            return "evenly from the start until the end (with a window: until it closes, per client zone)"
        return "off: everything goes from the start, as fast as the gateway takes it"

    def _filter(self):
        """(filter, source): the arguments of the audience's counts as the fields are now; the filter
        None while a field does not read (its hint says why)."""
        try:
            flt = audience.clean_filter(**{FILTER_ARGS[name]: self.field_value(name) for name in AUDIENCE},
                                        check_known=False)
        except validation.ValidationError:
            flt = None
        return flt, self._source()

    def _source(self):
        """A resend's (original's id, statuses) as the Only field says (None: not a resend, or not
        readable yet: its hint says why)."""
        if self.clone_of is None or not self.field_value("only"):
            return None
        try:
            return self.clone_of.id, mailings.parse_statuses(self.field_value("only"))
        except validation.ValidationError:
            return None

    @db_work(group="editor-known")
    def _load_known(self):
        known = mailings.filter_values()
        deliver(self.app, self._set_known, known)

    def _set_known(self, known):
        self.known = known
        self.query_one("#operator", Input).suggester = SuggestFromList(known[0])
        self.query_one("#tag", Input).suggester = SuggestFromList(known[1], case_sensitive=False)
        for name in AUDIENCE:
            self._update_hint(name)

    @db_work(group="editor-audience")
    def _count_audience(self, flt, source=None):
        if flt is None:  # a field does not read: its hint says why
            deliver(self.app, self._show_audience, flt, None, None, None, source)
            return
        matching = mailings.matching_count(flt, source)
        opted_out = mailings.opted_out_count(flt, source)
        # By operator only when operator caps are set and the filter does not pick one (else no query)
        by_operator = mailings.audience_by_operator(flt, matching - opted_out, source)
        deliver(self.app, self._show_audience, flt, matching, opted_out, by_operator, source)

    def _show_audience(self, flt, matching, opted_out, by_operator=None, source=None):
        """'N client(s) match (filter), M opted out · P SMS parts ≈ cost': one line at 80 columns, so
        that the buttons under it stay in view; under it, when the throughput caps cannot let the
        whole audience through before the end, what they leave out (mailings.cap_shortfall, from
        the counts already made and the fields as they are: no query of its own)."""
        if (flt, source) != self._filter():
            return
        if matching is None:
            self._counted = None
            self.query_one("#audience", Static).update(Text("the filter does not read yet: see its field",
                                                            style="yellow"))
            return
        self._counted = (flt, matching, opted_out, by_operator, source)
        who = flt.describe("no filter")
        if source is not None:
            who = mailings.describe_source(source) + ("" if who == "no filter" else f", {who}")
        recipients = matching - opted_out
        text = Text(f"{matching:,} client(s) match ", style="bold" if recipients else "bold red")
        text.append(f"({who})", style="")
        if opted_out:
            text.append(f", {opted_out:,} opted out", style="yellow")
        estimate = segments.Estimate(self._text_segments(self.field_value("text")), recipients,
                                     settings.current().segment_price)
        text.append(f" · {estimate.parts:,} SMS part{'' if estimate.parts == 1 else 's'}")
        if estimate.cost is not None:
            text.append(f" ≈ {estimate.cost}")
        short = self._cap_shortfall(by_operator)
        if short is not None:
            text.append(f"\n⚠ {short.text()}", style="bold yellow")
        self.query_one("#audience", Static).update(text)

    # -- personal texts -----------------------------------------------------------------------------

    def _placeholders(self):
        return templates.compile_text(self.field_value("text")).placeholders

    def _text_segments(self, text):
        """The text's SMS parts; a personal text's on its longest rendering over the audience last
        read (its placeholders' values as read; a placeholder read since, at its default)."""
        template = templates.compile_text(text)
        if not template.personal:
            return segments.count(template.static)
        profile = self._personal[2] if self._personal is not None else {}
        return templates.worst_segments(text, profile)

    def _refresh_personal(self):
        """Read the audience's values again when the filter or the placeholders changed (debounced);
        show the preview at once from what was read."""
        self._show_preview()
        wanted = (self._filter(), self._placeholders())
        if not wanted[1] or (self._personal is not None and self._personal[:2] == wanted):
            return
        if self._personal_debounce is not None:
            self._personal_debounce.stop()
        self._personal_debounce = self.set_timer(0.25, lambda: self._read_personal(self._filter(),
                                                                                    self.field_value("text")))

    @db_work(group="editor-personal")
    def _read_personal(self, filter_, text):
        flt, source = filter_  # (a filter that does not read yet: every client)
        profile = mailings.value_profile(text, flt, source)
        sample = mailings.sample_client(flt, source)
        sample = None if sample is None else (sample.id, sample.phone, sample.name, sample.attrs)
        deliver(self.app, self._set_personal, filter_, templates.compile_text(text).placeholders, profile, sample)

    def _set_personal(self, filter_, placeholders, profile, sample):
        self._personal = (filter_, placeholders, profile, sample)
        self._update_hint("text")
        self._show_preview()
        if self._counted is not None:
            self._show_audience(*self._counted)

    def _show_preview(self):
        """'for Анна (79000000001): Hi Анна!' under a personal text, literally; hidden otherwise."""
        preview = self.query_one("#text-preview", Static)
        template = templates.compile_text(self.field_value("text"))
        preview.set_class(not template.personal, "-none")
        if not template.personal:
            return
        if self._personal is None or self._personal[0] != self._filter():
            preview.update(Text("preview: reading the audience…"))
            return
        sample = self._personal[3]
        if sample is None:
            preview.update(Text("preview: no client matches the filter"))
            return
        _, phone, name, attrs = sample
        line = Text("for ")
        line.append(f"{name} ({phone})" if name else phone, style="bold")
        line.append(": ")
        line.append(template.render(name, attrs), style="")
        preview.update(line)

    def _cap_shortfall(self, by_operator):
        """What the caps leave out of the audience counted, with the text, start, end, window and days
        as typed (None when they fit, or while a time does not parse: its field says why)."""
        if not by_operator or (self.mailing is not None and self.mailing.state != SCHEDULED):
            return None  # one that started: the dashboard's expected finish says what is left
        try:
            now = times.utcnow()
            start, end = (times.parse_when(self.field_value(name), name, now=now) for name in ("start", "end"))
            windowed = (windows.parse_window(self.field_value("window")) is not None
                        or windows.parse_days(self.field_value("days")) is not None)
        except validation.ValidationError:
            return None
        if not self.field_value("window") and self.mailing is None and settings.current().default_window:
            windowed = True  # the default window applies
        if end <= start:
            return None
        return mailings.cap_shortfall(self.field_value("text"), start, end, by_operator, now, windowed=windowed)

    def _window_inputs(self):
        return (tuple(self.field_value(name) for name in ("start", "end", "window", "days"))
                + self._filter())

    @db_work(group="editor-window")
    def _check_window(self, inputs):
        start, end, window, day_names, flt, source = inputs
        try:
            now = times.utcnow()
            start_at, end_at = times.parse_when(start, "start", now=now), times.parse_when(end, "end", now=now)
            span, days = windows.parse_window(window), windows.parse_days(day_names)
        except validation.ValidationError:
            deliver(self.app, self._show_window_note, inputs, None)  # the fields say what is wrong
            return
        zones = mailings.audience_zones(flt, source) if flt is not None else []
        if (span is None and days is None) or not zones or end_at <= start_at:
            deliver(self.app, self._show_window_note, inputs, None)
            return
        open_in = windows.zones_where_open(start_at, end_at, span, zones, days)
        shown = " on ".join(p for p in (windows.format_window(*span) if span else "", windows.format_days(days) or "") if p)
        if not open_in:
            note = (f"⚠ {shown} never opens between the start and the end in the audience's zones "
                    f"({', '.join(sorted(zones)[:6])}{', …' if len(zones) > 6 else ''}): nobody would get it",
                    "bold yellow")
        elif len(open_in) < len(zones):
            never = sorted(set(zones) - set(open_in))
            note = (f"⚠ {shown} opens before the end in {len(open_in)} of {len(zones)} client zones; "
                    f"clients in {', '.join(never[:6])}{', …' if len(never) > 6 else ''} would never get it",
                    "yellow")
        else:
            note = None
        deliver(self.app, self._show_window_note, inputs, note)

    def _show_window_note(self, inputs, note):
        if inputs != self._window_inputs():
            return  # the fields changed meanwhile: a newer check is on its way
        self._window_note = (inputs, *note) if note else None
        self._update_hint("window")

    # -- saving -----------------------------------------------------------------------------------

    def action_save(self):
        values = {name: self.field_value(name) for name in self.FIELDS}
        if self.clone_of is not None:  # every field as typed: an empty one is not the original's
            fields = {**values, "only": values["only"] or None}
        elif self.mailing is None:
            fields = {k: (v if v or k in ("text", "start", "end") else None) for k, v in values.items()}
        else:
            fields = {k: v for k, v in values.items() if v != self.initial[k]}
            if self.mailing.state != SCHEDULED:
                fields = {k: v for k, v in fields.items() if k in EDITABLE_WHILE_RUNNING}
        self.save(fields)

    def save(self, fields):
        """Above MAILER_MAX_PARTS a new or changed text is saved only once the operator says so."""
        text, most = fields.get("text"), settings.current().max_parts
        counted = segments.count(text) if text is not None else None
        if counted is None or counted.parts <= most:
            super().save(fields)
            return

        def answered(yes):
            if yes:
                super(MailingEditor, self).save({**fields, "confirm_parts": True})

        self.app.push_screen(ConfirmScreen(f"The text is {counted.describe()}: more than MAILER_MAX_PARTS "
                                           f"({most}), and each part is billed. Save it?", yes_label="Save"),
                             answered)

    def submit(self, fields):
        if self.clone_of is not None:
            return service.clone_mailing(self.clone_of.id, **fields)
        if self.mailing is None:
            return service.create_mailing(**fields)
        return service.edit_mailing(self.mailing.id, **fields)
