"""Reading an operator's CSV file: opened as UTF-8 (with or without a byte order mark), refused
whole, with where and why, when it is not; and the report of an import, line by line."""
from dataclasses import dataclass

from domain.validation import ValidationError


@dataclass
class ImportReport:
    imported: int
    rejected: list  # (line number, raw line, reason)
    total: int

    def as_dict(self):
        return {"imported": self.imported, "total": self.total,
                "rejected": [{"line": n, "row": raw, "error": why} for n, raw, why in self.rejected]}


def read_csv_file(path, read):
    """read(file object) for the CSV file at `path`; a file that cannot be opened or is not UTF-8 is
    a ValidationError on `file` (rows go in only after the whole file is read: nothing was imported)."""
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except IsADirectoryError:
        raise ValidationError({"file": f"is a directory: {path}"}) from None
    except OSError as exc:  # missing, unreadable: the reason the system gives
        raise ValidationError({"file": f"{exc.strerror or exc}: {path}"}) from None
    with fh:
        try:
            return read(fh)
        except UnicodeDecodeError as exc:
            raise ValidationError({"file": not_utf8(path, exc)}) from None


def not_utf8(path, exc):
    """Why a CSV file is refused when it is not UTF-8 (Latin-1, Windows-1251...): where its first bad
    byte is, found again line by line (no UTF-8 sequence spans a newline)."""
    offset = 0
    try:
        with open(path, "rb") as raw:
            for line_no, line in enumerate(raw, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as found:
                    return (f"is not UTF-8 text (byte {offset + found.start + 1} of the file, "
                            f"0x{line[found.start]:02X}, on line {line_no}); save it as UTF-8 and "
                            f"import it again")
                offset += len(line)
    except OSError:
        pass
    return f"is not UTF-8 text ({exc.reason}); save it as UTF-8 and import it again"
