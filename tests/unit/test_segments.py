"""SMS parts against reference cases (3GPP TS 23.038/23.040), worked out by hand."""
import pytest

from domain import segments
from domain.segments import GSM7, UCS2


@pytest.mark.parametrize("text, encoding, units, parts", [
    ("", GSM7, 0, 0),
    ("a" * 160, GSM7, 160, 1),
    ("a" * 161, GSM7, 161, 2),
    ("a" * 306, GSM7, 306, 2),
    ("a" * 307, GSM7, 307, 3),
    ("Reply STOP to opt out: 50% off @ shop!", GSM7, 38, 1),
    ("€" * 80, GSM7, 160, 1),  # an extension character is two septets
    ("€" * 81, GSM7, 162, 2),  # 76 of them fill a part's 153 septets (152), the 77th goes on
    ("^{}\\[~]|€", GSM7, 18, 1),
    # 306 septets would fit two parts, but the euro sign's escape and character are never split
    ("a" * 152 + "€" + "a" * 152, GSM7, 306, 3),
    ("Ж" * 70, UCS2, 70, 1),
    ("Ж" * 71, UCS2, 71, 2),
    ("Ж" * 134, UCS2, 134, 2),
    ("Ж" * 135, UCS2, 135, 3),
    ("Ж" * 1000, UCS2, 1000, 15),  # the 1,000 Cyrillic characters: 15 parts
    ("😀" * 35, UCS2, 70, 1),  # outside the BMP: two UTF-16 units each
    ("😀" * 36, UCS2, 72, 2),
    ("a" * 66 + "😀" * 3, UCS2, 72, 2),  # 66 + 2 units is 68 > 67: the first emoji opens part 2
    ("a" * 66 + "😀" + "a" * 66, UCS2, 134, 3),  # 134 units, yet the emoji cannot straddle parts
    ("ç", UCS2, 1, 1),  # only the capital Ç is in the GSM-7 alphabet
])
def test_reference_cases(text, encoding, units, parts):
    counted = segments.count(text)
    assert (counted.encoding, counted.units, counted.parts) == (encoding, units, parts)
    assert counted.characters == len(text)


def test_the_character_that_forced_ucs2_is_named():
    counted = segments.count("Sale today! Скидка 10%")
    assert counted.forced_by == "С" and counted.encoding == UCS2
    assert counted.describe() == "22 character(s), UCS-2 (because of «С»), 1 part"
    assert segments.count("plain").forced_by is None


def test_per_part_is_the_split_size_once_split():
    assert segments.count("a" * 160).per_part == 160
    assert segments.count("a" * 161).per_part == 153
    assert segments.count("Ж" * 71).per_part == 67
