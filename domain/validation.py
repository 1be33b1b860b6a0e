"""What a client's and a mailing's fields may be. Every error names the field it concerns, so the
command line says `error: <field>: <why>` and a screen shows it next to the field."""
import functools
import re
import unicodedata
import zoneinfo

MAX_TEXT = 1000
MAX_TAG = 64


class ValidationError(ValueError):
    def __init__(self, errors):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# Digits are the ASCII 0-9 only, everywhere: Python's `\d` and str.isdigit() also take Arabic-Indic,
# full-width or superscript digits, and '٧٩٠٠١٢٣٤٥٦٧' would be a second client for 79001234567.
PHONE_RE = re.compile(r"7[0-9]{10}")
OPERATOR_RE = re.compile(r"[0-9]{3}")


def quote_value(value, limit=40):
    """repr(value) for an error message, cut short when it is long."""
    value = str(value)
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} characters)"


def foreign_digit_note(value):
    """'; only the digits 0-9 ...' naming the first non-ASCII digit of value, else ''."""
    c = next((c for c in value if c.isdigit() and not c.isascii()), None)
    return "" if c is None else f"; only the digits 0-9 are accepted, not {c!r} (U+{ord(c):04X})"


MAX_ID = 2 ** 63 - 1  # the largest id SQLite and PostgreSQL store


def whole_number_error(text, minimum, maximum=MAX_ID):
    """Why `text` is not a whole number written in the digits 0-9 from minimum to maximum (an id
    beyond 64 bits would overflow the database driver; a negative limit means no limit to SQLite),
    or None. One text for the command line's arguments and the HTTP API's parameters."""
    text = str(text)
    if (not re.fullmatch(r"[0-9]+", text) or len(text.lstrip("0")) > len(str(maximum))
            or not minimum <= int(text) <= maximum):
        return (f"must be a whole number from {minimum} to {maximum}; got {quote_value(text)}"
                f"{foreign_digit_note(text)}")
    return None


def unreadable(value):
    """Why value cannot be stored: a lone surrogate (bytes that were not UTF-8, as argv delivers them)
    or a control character other than a newline (NUL, tab, escape sequences, C1 codes); else None."""
    for i, c in enumerate(value, 1):
        if "\ud800" <= c <= "\udfff":
            return f"is not valid UTF-8 (character {i})"
        if c != "\n" and unicodedata.category(c) == "Cc":
            return f"contains a control character U+{ord(c):04X} at position {i}"
    return None


def validate_phone(value):
    value = str(value).strip()
    if PHONE_RE.fullmatch(value):
        return value
    # The hint is written in ASCII digits whatever digits were typed.
    digits = "".join(c if c.isascii() else str(unicodedata.decimal(c))
                     for c in value if c.isdecimal())
    hint = ""
    if len(digits) == 11 and digits[0] in "78":
        hint = f" (did you mean 7{digits[1:]}?)"
    elif len(digits) == 10:
        hint = f" (did you mean 7{digits}?)"
    raise ValidationError({"phone": f"must be 7 followed by 10 digits, like 79001234567; "
                                    f"got {quote_value(value)}{hint}{foreign_digit_note(value)}"})


def validate_operator(value, field="operator"):
    value = str(value).strip()
    if not OPERATOR_RE.fullmatch(value):
        raise ValidationError({field: f"must be 3 digits, like 900; got {quote_value(value)}"
                                      f"{foreign_digit_note(value)}"})
    return value


def validate_tag(value, field="tag"):
    value = (value or "").strip()
    if len(value) > MAX_TAG:
        raise ValidationError({field: f"is {len(value)} characters; at most {MAX_TAG}"})
    why = unreadable(value) or ("contains a newline" if "\n" in value else None)
    if why:
        raise ValidationError({field: f"{why}; a tag is one line of printable text"})
    return value


@functools.lru_cache(maxsize=1)
def known_zones():
    return frozenset(zoneinfo.available_timezones())


def validate_tz(value, field="tz"):
    value = (value or "").strip()
    if value not in known_zones():
        raise ValidationError({field: f"unknown time zone {value!r}; use an IANA name like "
                                      f"Europe/Moscow or UTC"})
    return value


def validate_text(value):
    """A message's text: newlines (CRLF read as LF) and printable characters only. A control
    character (NUL, tab, ESC of a terminal escape sequence, C1 codes like CSI U+009B) is refused, as
    are lone surrogates: what bytes that are not UTF-8 become in argv."""
    value = (value or "").replace("\r\n", "\n")
    why = unreadable(value)
    if why:
        raise ValidationError({"text": why if why.startswith("is not")
                               else f"{why}; only newlines are allowed"})
    if not value.strip():
        raise ValidationError({"text": "must not be empty"})
    if len(value) > MAX_TEXT:
        raise ValidationError({"text": f"is {len(value)} characters; at most {MAX_TEXT}"})
    return value



# Personal texts (issue 13, part 2): a client's name and free attributes, named in a text as {name}
# and {attr.KEY} (domain.templates).
MAX_NAME = 100
MAX_ATTR_VALUE = 200
MAX_ATTRS = 32
ATTR_KEY_RE = re.compile(r"[a-z0-9_]{1,32}")


def validate_name(value, field="name"):
    value = (value or "").strip()
    if len(value) > MAX_NAME:
        raise ValidationError({field: f"is {len(value)} characters; at most {MAX_NAME}"})
    why = unreadable(value) or ("contains a newline" if "\n" in value else None)
    if why:
        raise ValidationError({field: f"{why}; a name is one line of printable text"})
    return value


# A client's own fields, and the CSV columns that carry them: an attribute of one of these names
# could not come back from the directory's export (its column would be read as the field).
RESERVED_ATTR_KEYS = frozenset({"phone", "operator", "tag", "tags", "tz", "name"})


def validate_attr_key(key, field="attr"):
    if not ATTR_KEY_RE.fullmatch(key or ""):
        raise ValidationError({field: f"attribute key {quote_value(key)} must be 1-32 of a-z, 0-9 and _ "
                                      f"(like city or last_order)"})
    if key in RESERVED_ATTR_KEYS:
        raise ValidationError({field: f"attribute key {key!r} is a client's own field; "
                                      f"name the attribute otherwise (like {key}2)"})
    return key


def validate_attr_value(key, value, field="attr"):
    value = (value or "").strip()
    if len(value) > MAX_ATTR_VALUE:
        raise ValidationError({field: f"{key}: is {len(value)} characters; at most {MAX_ATTR_VALUE}"})
    why = unreadable(value) or ("contains a newline" if "\n" in value else None)
    if why:
        raise ValidationError({field: f"{key}: {why}; a value is one line of printable text"})
    return value


def validate_attrs(attrs, field="attr"):
    """{key: value} checked; empty values dropped (an attribute with no value is no attribute)."""
    clean = {}
    for key, value in (attrs or {}).items():
        value = validate_attr_value(validate_attr_key(key, field), value, field)
        if value:
            clean[key] = value
    if len(clean) > MAX_ATTRS:
        raise ValidationError({field: f"{len(clean)} attributes; at most {MAX_ATTRS}"})
    return clean
