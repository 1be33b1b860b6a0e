"""The console's key bindings as data: which classes bind which keys (the help screen lists them, and
they are the ids a keymap may name), and the operator's keymap file (MAILER_KEYMAP).

The bindings are found by walking the console's classes, not listed by hand: a screen added later is
in the help, and its ids can be rebound, without anyone remembering to add it here.
"""
import difflib
import re

from textual.binding import Binding
from textual.dom import DOMNode

# A key as Textual names it ("ctrl+s", "pagedown", "question_mark") or one printable character ("?").
KEY_RE = re.compile(r"[A-Za-z0-9_]+(\+[A-Za-z0-9_]+)*|\S")
# "id = keys" or "id: keys" (a flat YAML mapping reads the same); a "keymap:" line above is ignored.
LINE_RE = re.compile(r"^\s*([\w.-]+)\s*[=:]\s*(.*?)\s*$")


class KeymapError(Exception):
    """The keymap file cannot be applied; str() says every reason, one a line."""


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def own_bindings(cls, inherited=False):
    """The Bindings `cls` declares (with inherited=True, its bases' too, the nearest first), without
    Textual's system bindings (ctrl+c and the like, which are not the console's to explain)."""
    found = []
    for klass in (cls.__mro__ if inherited else (cls,)):
        for b in klass.__dict__.get("BINDINGS", ()):
            b = b if isinstance(b, Binding) else Binding(*b)
            if not b.system and all(b.key != f.key for f in found):
                found.append(b)
    return found


def title_of(cls):
    return (cls.__dict__.get("HELP_TITLE") or cls.__dict__.get("SUB_TITLE") or cls.__name__)


def binding_sections(app_class):
    """[(title, class, [Binding])]: the app (with Textual's own keys), then each console screen and
    widget that declares BINDINGS: the app's modes in their order, then the others by title."""
    classes = {c for c in _subclasses(DOMNode)
               if c.__module__.startswith("console.") and "BINDINGS" in c.__dict__ and c is not app_class}
    modes = [c for c in getattr(app_class, "MODES", {}).values() if c in classes]
    rest = sorted(classes - set(modes), key=title_of)
    sections = [(title_of(app_class), app_class, own_bindings(app_class, inherited=True))]
    return sections + [(title_of(c), c, own_bindings(c)) for c in modes + rest]


def known_ids(app_class):
    return {b.id for _, _, bindings in binding_sections(app_class) for b in bindings if b.id}


def parse_keymap(text, ids):
    """{binding id: keys} from the text of a keymap file; KeymapError names each bad line."""
    keymap, errors = {}, []
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()  # comments: a '#' at the start or after a space
        if not line or line.rstrip(":").strip() == "keymap":
            continue
        match = LINE_RE.match(line)
        if not match:
            errors.append(f"line {number}: expected `binding.id = keys`, got {raw.strip()!r}")
            continue
        binding_id, keys = match.group(1), match.group(2).strip("'\"").strip()
        if binding_id not in ids:
            close = difflib.get_close_matches(binding_id, sorted(ids), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            errors.append(f"line {number}: no binding has the id {binding_id!r}{hint}")
            continue
        parts = [k.strip() for k in keys.split(",")]
        bad = [k for k in parts if not KEY_RE.fullmatch(k)]
        if not keys or bad:
            errors.append(f"line {number}: {binding_id}: not a key: {', '.join(map(repr, bad)) or 'nothing'}")
            continue
        if binding_id in keymap:
            errors.append(f"line {number}: {binding_id} is bound twice")
            continue
        keymap[binding_id] = ",".join(parts)
    if errors:
        raise KeymapError("\n".join(errors))
    return keymap


def read_keymap(path, ids):
    """The keymap in the file at `path`; KeymapError when it is missing, unreadable or wrong."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise KeymapError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise KeymapError(f"{path} is not UTF-8 text") from None
    return parse_keymap(text, ids)
