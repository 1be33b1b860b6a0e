"""Richer audiences in the console (issue 13, part 1): the editor's filter fields (operators, tags any
of, all of, none of, skip recent), the live match count following each, and what is saved: the
filter in the database, the messages it materialized, the mailings table's Filter column."""
from textual.widgets import Input, TextArea

import models
import service
from console.app import MailerApp
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen
from console.widgets import Field
from domain.audience import Filter

from console_testkit import SIZE, open_screen, plain, send_in_process, table_rows, wait_for

CLIENTS = (  # each step of the filter below leaves out one more
    ("79260000000", ["vip", "gold"]),            # operator 926
    ("79000000001", ["other", "gold"]),          # neither vip nor new
    ("79000000002", ["vip"]),                    # not gold
    ("79160000003", ["new", "gold", "blocked"]),  # blocked
    ("79000000004", ["vip", "gold", "recent"]),  # messaged by the mailing before
    ("79160000005", ["new", "gold"]),            # the one left
)
STEPS = (("operator", "900, 916", 5, "operator 900 or 916"),
         ("tag", "vip, new", 4, "operator 900 or 916, tag vip or new"),
         ("all_tags", "gold", 3, "operator 900 or 916, tag vip or new, tags all of gold"),
         ("not_tags", "blocked", 2, "operator 900 or 916, tag vip or new, tags all of gold, not tag blocked"),
         ("skip_recent", "24h", 1, "operator 900 or 916, tag vip or new, tags all of gold, not tag blocked, "
                                   "not messaged in 24h"))


async def test_the_editor_counts_every_part_of_the_filter_as_it_is_typed_and_saves_it(sim):
    for phone, tags in CLIENTS:
        service.create_client(phone=phone, tag=tags)
    service.create_mailing(text="earlier", start="now", end="+1h", tag="recent", window="any")
    assert send_in_process(sim) >= 0
    assert models.Attempt.select().where(models.Attempt.outcome == "sent").count() == 1
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "3", MailingsScreen)
        editor = await open_screen(pilot, "n", MailingEditor)
        audience = editor.query_one("#audience")
        await wait_for(pilot, lambda: plain(audience).startswith("6 client(s) match (no filter)"), what="everyone")
        editor.query_one("#text", TextArea).text = "Hi"
        editor.query_one("#window", Input).value = "any"
        for name, value, count, who in STEPS:
            editor.query_one(f"#{name}", Input).value = value
            await wait_for(pilot, lambda: plain(audience).startswith(f"{count} client(s) match ({who})"),
                           what=f"the count after {name}")
        assert "leaves out clients messaged by any mailing in the last 24h" in plain(
            editor.query_one("#field-skip_recent .field-hint"))
        # a value that does not read: its field says why, and the count says it waits for it
        editor.query_one("#skip_recent", Input).value = "soon"
        await wait_for(pilot, lambda: "does not read" in plain(audience), what="the count waiting")
        assert "must be a duration like 24h" in plain(editor.query_one("#field-skip_recent .field-hint"))
        editor.query_one("#skip_recent", Input).value = "24h"
        await wait_for(pilot, lambda: plain(audience).startswith("1 client(s) match"), what="the count again")
        # a tag nobody has is refused next to its field when saving
        editor.query_one("#not_tags", Input).value = "blocked, nope"
        await pilot.press("ctrl+s")
        field = editor.query_one("#field-not_tags", Field)
        await wait_for(pilot, lambda: field.error, what="the refusal")
        assert plain(editor.query_one("#field-not_tags .field-error")).startswith("✗ no client has tag 'nope'")
        editor.query_one("#not_tags", Input).value = "blocked"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="saved")
        await wait_for(pilot, lambda: screen.table.row_count == 2, what="listed")
        assert table_rows(screen.table)[0][6].startswith("op 900,916 tag vip,new")
    mailing = models.Mailing.select().order_by(models.Mailing.id.desc()).first()
    assert mailing.audience_filter == Filter(("900", "916"), ("vip", "new"), ("gold",), ("blocked",), 86400)
    assert [m.phone for m in models.Message.select().where(models.Message.mailing == mailing.id)] == ["79160000005"]
