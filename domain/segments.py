"""How many SMS parts a text is billed as (3GPP TS 23.038 and 23.040).

A text made only of the GSM 7-bit default alphabet goes as GSM-7: 160 septets in one part, 153 per part
once it is split (the user data header takes the rest); a character of the alphabet's extension table
(`^{}\\[~]|€` and form feed) takes two septets (escape and character), and the two are never split
across parts. One character outside both tables sends the whole text as UCS-2: 70 UTF-16 code units
in one part, 67 per part when split, a character outside the Basic Multilingual Plane (most emoji)
taking two units that are never split either. Phones and gateways split the same way, so these counts
are what the operator pays.
"""
import dataclasses
import functools

GSM7, UCS2 = "GSM-7", "UCS-2"

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

# (units in a single part, units per part of a split text)
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclasses.dataclass(frozen=True)
class Segments:
    encoding: str  # GSM7 or UCS2
    characters: int  # as the operator counts them (code points)
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    parts: int  # 0 for an empty text
    forced_by: str | None = None  # the first character that made the text UCS-2

    @property
    def per_part(self):
        single, split = LIMITS[self.encoding]
        return single if self.parts <= 1 else split

    def describe(self):
        """'70 characters, UCS-2 (because of «Ж»), 1 part'."""
        why = f" (because of «{self.forced_by}»)" if self.forced_by else ""
        return (f"{self.characters} character(s), {self.encoding}{why}, "
                f"{self.parts} part{'' if self.parts == 1 else 's'}")


def _unit_sizes(text):
    """(encoding, the first character outside GSM-7, the size in units of each character)."""
    for ch in text:
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            return UCS2, ch, [2 if ord(c) > 0xFFFF else 1 for c in text]
    return GSM7, None, [2 if c in GSM7_EXTENSION else 1 for c in text]


@functools.lru_cache(maxsize=1024)  # a consumer counts the same few mailings' texts for every send
def count(text):
    """The Segments of `text`."""
    encoding, forced_by, sizes = _unit_sizes(text)
    units = sum(sizes)
    single, split = LIMITS[encoding]
    if units <= single:
        parts = 1 if units else 0
    else:  # fill each part, never splitting a character's units between two
        parts, room = 1, split
        for size in sizes:
            if size > room:
                parts, room = parts + 1, split
            room -= size
    return Segments(encoding, len(text), units, parts, forced_by)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """What a mailing's text costs over its recipients (`price`: a settings.Price, or None)."""
    segments: Segments  # of one message
    recipients: int
    price: object = None

    @property
    def parts(self):
        return self.segments.parts * self.recipients

    @property
    def cost(self):
        return self.price.of(self.parts) if self.price is not None else None

    def as_dict(self):
        return {"encoding": self.segments.encoding, "characters": self.segments.characters,
                "parts_per_message": self.segments.parts, "forced_by": self.segments.forced_by,
                "recipients": self.recipients, "parts": self.parts,
                "cost": None if self.cost is None else f"{self.cost.amount:.2f}",
                "currency": None if self.price is None else self.price.currency}

    def describe(self):
        """'70 character(s), UCS-2 (because of «Ж»), 1 part; × 133 recipients = 133 parts, 46.55 RUB'."""
        text = f"{self.segments.describe()}; × {self.recipients:,} recipient(s) = {self.parts:,} parts"
        return text + (f", {self.cost}" if self.cost is not None else "")


def estimate(text, recipients, price=None):
    return Estimate(count(text), recipients, price)


def too_many_parts(text, max_parts, counted=None):
    """Why `text` needs the operator's confirmation (more parts than `max_parts`), or None.
    `counted`: its Segments when counted otherwise (a personal text's longest rendering)."""
    counted = counted or count(text)
    if counted.parts <= max_parts:
        return None
    return f"{counted.describe()}: more than MAILER_MAX_PARTS ({max_parts}); confirm to save it"
