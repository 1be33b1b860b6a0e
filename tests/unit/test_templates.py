"""Personal texts' templates (domain.templates): parsing, defaults, literal braces, unknown
placeholders, and the longest rendering the cost is counted on."""
import pytest

from domain import segments
from domain.templates import ValueStats, check, compile_text, dump_attrs, load_attrs, parse, worst_segments
from domain.validation import ValidationError, validate_attrs

pytestmark = pytest.mark.unit


def refusal(text):
    with pytest.raises(ValidationError) as caught:
        check(text)
    return caught.value.errors


def test_name_and_attributes_render_for_each_client():
    t = parse("Hi {name}, see you in {attr.city}!")
    assert t.personal and t.static is None
    assert t.render("Анна", {"city": "Omsk"}) == "Hi Анна, see you in Omsk!"
    assert t.render("Bob", '{"city": "Tver", "size": "L"}') == "Hi Bob, see you in Tver!"
    assert [p for p in t.placeholders] == [("name", None), ("attr.city", None)]


def test_defaults_apply_to_a_missing_or_empty_value_and_none_renders_empty():
    t = parse("{name|клиент}: {attr.city|your city} {attr.size}.")
    assert t.render("", {}) == "клиент: your city ."
    assert t.render("Ann", {"city": "", "size": "M"}) == "Ann: your city M."
    assert parse("{name|}!").render("", None) == "!"
    assert parse("{ name | a|b }").render("", {}) == " a|b "  # the default is as typed after the first |


def test_double_braces_are_literal_and_a_lone_brace_is_itself():
    t = parse("{{name}} is {name}; a } b {")
    assert t.render("Ann", {}) == "{name} is Ann; a } b {"
    plain = parse("price {{10}} }}")
    assert not plain.personal and plain.static == "price {10} }"
    assert compile_text("no placeholders at all").static == "no placeholders at all"


@pytest.mark.parametrize("text, shown", [
    ("Hi {foo}", "{foo}"), ("{}", "{}"), ("{attr.}", "{attr.}"), ("{attr.City}", "{attr.City}"),
    ("{Name}", "{Name}"), ("{attr.a-b}", "{attr.a-b}"), ("{nam e}", "{nam e}"),
])
def test_an_unknown_placeholder_is_refused_on_the_text_field(text, shown):
    errors = refusal(text)
    assert list(errors) == ["text"]
    assert errors["text"].startswith(f"unknown placeholder {shown}: use {{name}} or {{attr.KEY}}")


def test_the_engine_never_refuses_a_text_saved_before_and_keeps_unknown_ones_as_typed():
    assert compile_text("{foo} {name}").render("Ann", {}) == "{foo} Ann"


def test_attributes_are_stored_as_compact_json_and_read_back_whatever_is_stored():
    assert dump_attrs({"z": "1", "city": "Омск"}) == '{"city":"Омск","z":"1"}'
    assert dump_attrs({}) == "{}"
    assert load_attrs('{"city":"Омск"}') == {"city": "Омск"}
    assert load_attrs("not json") == {} and load_attrs("[1]") == {} and load_attrs(None) == {}


def test_attribute_keys_and_values_are_checked():
    assert validate_attrs({"city": " Omsk ", "empty": ""}) == {"city": "Omsk"}
    with pytest.raises(ValidationError, match="attribute key 'City' must be"):
        validate_attrs({"City": "x"})
    with pytest.raises(ValidationError, match="city: contains a newline"):
        validate_attrs({"city": "a\nb"})
    with pytest.raises(ValidationError, match="city: is 201 characters"):
        validate_attrs({"city": "x" * 201})


def test_segments_are_counted_on_the_longest_rendering():
    text = "Hi {name}! " + "x" * 140
    # the longest name (10 plain characters) makes 153 characters: two parts
    two = worst_segments(text, {("name", None): ValueStats(10, False)})
    assert (two.encoding, two.characters, two.parts) == (segments.GSM7, 10 + len(text) - 6, 1)
    long = worst_segments(text, {("name", None): ValueStats(20, False)})
    assert long.parts == 2
    # a name outside GSM-7 somewhere in the audience: UCS-2, said as the placeholder that forces it
    wide = worst_segments("Hi {name|friend}!", {("name", "friend"): ValueStats(6, True)})
    assert (wide.encoding, wide.forced_by, wide.characters) == (segments.UCS2, "{name|friend}", 10)
    # nobody has a value: the default's length
    assert worst_segments("{attr.city|Moscow}", {}).characters == 6
    assert worst_segments("plain {{text}}", {}) == segments.count("plain {text}")
