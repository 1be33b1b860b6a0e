"""Demo data so a newcomer sees the service work within seconds: clients across operators, tags and
zones, a mailing running now and one starting shortly.

Only into an empty database: demo mailings on a real directory would message real clients."""
import io
import random

import service
from domain.validation import ValidationError
from models import Client, Mailing

DEMO_ZONES = ("Europe/Moscow", "Asia/Yekaterinburg", "Asia/Novosibirsk", "Asia/Vladivostok",
              "Europe/Kaliningrad", "Europe/London", "America/New_York")
DEMO_OPERATORS = ("900", "901", "912", "916", "926", "999")
DEMO_TAGS = ("vip", "new", "regular", "")


def demo_csv(count, seed=7):
    rng = random.Random(seed)
    out = io.StringIO()
    out.write("phone,operator,tag,tz\n")
    used = set()
    while len(used) < count:
        phone = f"7{rng.choice(DEMO_OPERATORS)}{rng.randrange(10**7):07d}"
        if phone in used:
            continue
        used.add(phone)
        out.write(f"{phone},,{rng.choice(DEMO_TAGS)},{rng.choice(DEMO_ZONES)}\n")
    out.seek(0)
    return out


def database_is_empty():
    return not (Client.select().exists() or Mailing.select().exists())


def load_demo(clients=500):
    """Load `clients` demo clients and two mailings; ValidationError({"demo": ...}) unless the
    database has no client and no mailing yet."""
    if not database_is_empty():
        raise ValidationError({"demo": "the database already has clients or mailings; demo data "
                                       "loads only into an empty one (its mailings would go to "
                                       "every matching client)"})
    report = service.import_clients(demo_csv(clients))
    now_mailing = service.create_mailing(text="Welcome to our service! Reply STOP to opt out.",
                                       start="now", end="+1h", tag="vip")
    later = service.create_mailing(text="Weekend sale: -20% on everything [until Sunday]",
                                 start="+2m", end="+1d", operator="900")
    return {"clients": report.imported, "mailings": [now_mailing.id, later.id]}
