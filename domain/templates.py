"""Personal texts: a mailing's text may name each client's name and attributes.

    Hello, {name|клиент}! Your order waits in {attr.city}.

`{name}` is the client's name, `{attr.KEY}` one of its attributes (KEY: a-z, 0-9 and _), and after a
`|` a default for a client whose value is missing or empty (`{name|клиент}`); `{{` and `}}` are a
literal brace. Anything else between braces is refused where the text is typed ("unknown placeholder
{foo}: use {name} or {attr.KEY}"); a brace that closes nothing (`a } b`, `{ alone`) is itself.

A placeholder with no default renders empty for a client without that value: the text was checked
when it was saved, and the engine is the wrong place to refuse it (no operator is there to ask, and a
message refused for its data would be counted as failed like one the gateway refused). The editor's
preview and the default are how the operator sees and decides what a client without the value gets.

Everything here is pure: the engine renders at the mark with what that statement read of the client
(engine.dispatcher), and the longest rendering over an audience is computed from per-placeholder
maxima the database aggregates (domain.mailings.value_profile), never from a loop over clients.
"""
import dataclasses
import functools
import json
import re

from domain import segments
from domain.validation import ValidationError

NAME = "name"
ATTR = "attr."
# {{, }}, or a brace pair with no brace or newline inside (a candidate placeholder)
TOKEN_RE = re.compile(r"\{\{|\}\}|\{([^{}\n]*)\}")
PLACEHOLDER_RE = re.compile(r"\s*(name|attr\.([a-z0-9_]+))\s*(?:\|(.*))?", re.S)


@dataclasses.dataclass(frozen=True)
class Placeholder:
    key: str  # "name" or "attr.city"
    default: str | None  # None: no default (a missing value renders empty)
    source: str  # as typed, braces included

    @property
    def attr(self):
        """The attribute's key ('city'), or None for the name."""
        return self.key[len(ATTR):] if self.key.startswith(ATTR) else None

    def value(self, name, attrs):
        found = name if self.key == NAME else attrs.get(self.attr) if attrs else None
        if not found:
            return self.default or ""
        return found


@dataclasses.dataclass(frozen=True)
class Template:
    text: str  # as saved
    parts: tuple  # literal strings and Placeholders, in order

    @property
    def personal(self):
        """Whether it names anything of the client (else every client gets `static`)."""
        return any(isinstance(p, Placeholder) for p in self.parts)

    @property
    def static(self):
        """The text every client gets when it is not personal (`{{` read as `{`); None if it is."""
        if self.personal:
            return None
        return "".join(self.parts)

    @property
    def placeholders(self):
        """Each distinct (key, default) once, in order of appearance."""
        return tuple(dict.fromkeys((p.key, p.default) for p in self.parts if isinstance(p, Placeholder)))

    def render(self, name="", attrs=None):
        """The text for a client of this name and attributes (a dict, or its JSON text)."""
        if isinstance(attrs, str) or attrs is None:
            attrs = load_attrs(attrs)
        return "".join(p if isinstance(p, str) else p.value(name or "", attrs) for p in self.parts)


def unknown(source):
    hint = ""
    inner = source[1:-1].strip()
    if inner.lower().startswith(ATTR) or inner.lower() == NAME:
        hint = " (attribute keys are lower-case a-z, 0-9 and _)" if inner != inner.lower() else ""
    return f"unknown placeholder {source}: use {{name}} or {{attr.KEY}}{hint}"


def parse(text, strict=True):
    """The Template of `text`. strict: an unknown placeholder is a ValidationError on `text`; not
    strict (a text saved before placeholders existed, rendered by the engine), it stays as typed."""
    parts, literal, at = [], [], 0
    for match in TOKEN_RE.finditer(text):
        literal.append(text[at:match.start()])
        at = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
            continue
        found = PLACEHOLDER_RE.fullmatch(match.group(1))
        if found is None:
            if strict:
                raise ValidationError({"text": unknown(token)})
            literal.append(token)
            continue
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(Placeholder(found.group(1), found.group(3), token))
    literal.append(text[at:])
    if "".join(literal):
        parts.append("".join(literal))
    return Template(text, tuple(parts))


@functools.lru_cache(maxsize=256)  # a consumer renders the same few mailings' texts at every step
def compile_text(text):
    """The Template the engine renders (never raises)."""
    return parse(text or "", strict=False)


def check(text):
    """A mailing's text as saved, once its placeholders are known; ValidationError on `text`."""
    parse(text)
    return text


def load_attrs(value):
    """A client's attributes from their JSON text ({} when there are none, or they cannot be read)."""
    if not value:
        return {}
    try:
        attrs = json.loads(value)
    except ValueError:
        return {}
    return attrs if isinstance(attrs, dict) else {}


def dump_attrs(attrs):
    """Attributes as stored: compact JSON, keys sorted, non-ASCII kept as typed."""
    return json.dumps(attrs, ensure_ascii=False, sort_keys=True, separators=(",", ":")) if attrs else "{}"


# ---------------------------------------------------------------------------------------------------
# The longest rendering over an audience, from per-placeholder maxima


@dataclasses.dataclass(frozen=True)
class ValueStats:
    """What the database found of one placeholder's rendered values over an audience: the longest
    (in units as the phone counts them, at most), whether any has a character outside plain GSM-7
    (which may make the text UCS-2), and whether any has one beyond U+FFFF (two units, never split
    between parts)."""
    longest: int
    wide: bool
    astral: bool = False


PRIVATE_USE = 0xE000  # stand-ins for values that may be UCS-2: outside GSM-7, one UTF-16 unit each
ASTRAL_PRIVATE_USE = 0xF0000  # and for values with characters beyond U+FFFF: two units each


def longest_rendering(template, profile):
    """An upper bound of the text any client of the audience gets: each placeholder replaced by as
    many characters as its longest value, plain letters when every value is plain GSM-7, else
    characters outside it (so the text counts as UCS-2). profile: {(key, default): ValueStats}.
    Returns (text, {stand-in character: placeholder as typed})."""
    out, stand_ins = [], {}
    for p in template.parts:
        if isinstance(p, str):
            out.append(p)
            continue
        found = profile.get((p.key, p.default)) or ValueStats(len(p.default or ""), False)
        count = found.longest
        if found.astral:  # two units each, never split: as many as fill its units, rounded up
            char, count = chr(ASTRAL_PRIVATE_USE + len(stand_ins) % 60000), -(-count // 2)
            stand_ins.setdefault(char, p.source)
        elif found.wide:
            char = chr(PRIVATE_USE + len(stand_ins) % 6000)
            stand_ins.setdefault(char, p.source)
        else:
            char = "x"
        out.append(char * count)
    return "".join(out), stand_ins


def worst_segments(text, profile):
    """segments.Segments of the longest rendering of `text` over an audience (`profile`: see
    longest_rendering; {} for a text that names nothing), its forcing character said as the
    placeholder that forces UCS-2 when it is one."""
    template = compile_text(text)
    if not template.personal:
        return segments.count(template.static)
    rendered, stand_ins = longest_rendering(template, profile)
    counted = segments.count(rendered)
    if counted.forced_by in stand_ins:
        counted = dataclasses.replace(counted, forced_by=stand_ins[counted.forced_by])
    return counted
