"""Personal texts on the wire (issue 13, part 2), in process on SQLite and PostgreSQL: each client's
own rendering is what the gateway received and what the database recorded; a text that names nothing
goes as it always did; the longest rendering over an audience is aggregated by the database."""
import io

import pytest

import service
from domain import mailings, segments
from domain.audience import Filter
from domain.templates import ValueStats
from domain.vocabulary import SENT
from models import Message
from simulator import read_log
from test_dispatcher import running_mailing, send_all

pytestmark = [pytest.mark.engine, pytest.mark.xdist_group("engine")]

CSV = ("phone,name,tz,city,size\n"
       "79000000001,Анна,Europe/Moscow,Омск,L\n"
       "79000000002,Bob,Europe/Moscow,,M\n"
       "79000000003,,Europe/Moscow,Tver,\n")
EXPECTED = {79000000001: "Анна, {ваш} заказ ждёт в Омск (L).",
            79000000002: "Bob, {ваш} заказ ждёт в городе (M).",
            79000000003: "клиент, {ваш} заказ ждёт в Tver ()."}


def test_each_client_gets_its_own_rendering_and_the_database_records_it(backend, simulator):
    sim = simulator()
    assert service.import_clients(io.StringIO(CSV)).imported == 3
    mailing = running_mailing("{name|клиент}, {{ваш}} заказ ждёт в {attr.city|городе} ({attr.size}).")
    send_all(sim)
    log = read_log(sim.log_path)
    assert {e["phone"]: e["text"] for e in log} == EXPECTED
    recorded = {int(m.phone): (m.status, m.text) for m in Message.select().where(Message.mailing == mailing.id)}
    assert recorded == {phone: (SENT, text) for phone, text in EXPECTED.items()}


def test_a_client_changed_before_the_mark_gets_the_text_as_it_is_then(backend, simulator):
    sim = simulator()
    service.import_clients(io.StringIO(CSV))
    mailing = running_mailing("Hi {name}!")
    anna = Message.get((Message.mailing == mailing.id) & (Message.phone == "79000000001")).client_id
    service.edit_client(anna, name="Anna", attrs={"city": ""})
    send_all(sim)
    assert {e["phone"]: e["text"] for e in read_log(sim.log_path)}[79000000001] == "Hi Anna!"


def test_a_text_that_names_nothing_goes_as_typed_with_its_literal_braces(backend, simulator):
    sim = simulator()
    service.import_clients(io.StringIO(CSV))
    mailing = running_mailing("Sale {{-20%}} today, a } b")
    send_all(sim)
    assert {e["text"] for e in read_log(sim.log_path)} == {"Sale {-20%} today, a } b"}
    assert {m.text for m in Message.select().where(Message.mailing == mailing.id)} == {"Sale {-20%} today, a } b"}


def test_the_longest_rendering_is_aggregated_over_the_audience(backend):
    service.import_clients(io.StringIO(CSV))
    service.create_client(phone="79000000009", name="Christopher", tag="vip", attrs={"city": "Moscow"})
    text = "{name|клиент} {attr.city} {attr.zip|none}"
    assert mailings.value_profile(text) == {
        ("name", "клиент"): ValueStats(11, True),  # Christopher; Анна and клиент are wide
        ("attr.city", None): ValueStats(6, True), ("attr.zip", "none"): ValueStats(4, False)}
    assert mailings.value_profile(text, Filter(tags=("vip",))) == {
        ("name", "клиент"): ValueStats(11, False), ("attr.city", None): ValueStats(6, False),
        ("attr.zip", "none"): ValueStats(4, False)}
    counted = mailings.text_segments(text, Filter(tags=("vip",)))
    assert (counted.encoding, counted.characters) == (segments.GSM7, 11 + 1 + 6 + 1 + 4)
    wide = mailings.text_segments(text)
    assert (wide.encoding, wide.forced_by) == (segments.UCS2, "{name|клиент}")


def test_emoji_in_values_count_two_units_and_the_bound_holds(backend):
    """A character beyond U+FFFF is two UTF-16 units, never split between parts: the longest rendering
    over the audience must count at least the parts the phone will (it counted one unit each)."""
    emoji = "\U0001F600" * 200
    service.create_client(phone="79000000001", attrs={"e": emoji})
    service.create_client(phone="79000000002", attrs={"e": "Екатерина"})  # wide, but one unit each
    text = "{attr.e}{attr.e}"
    real = segments.count(emoji * 2)
    counted = mailings.text_segments(text)
    assert real.parts == 13 and counted.parts >= real.parts and counted.encoding == segments.UCS2
    assert segments.too_many_parts(text, 6, counted)  # the confirmation is asked, as for the text typed
    # without emoji, values are counted exactly: one unit a character
    service.edit_client(1, attrs={"e": "Ёлка"})
    assert mailings.value_profile(text)[("attr.e", None)] == ValueStats(9, True, False)
