"""A day is a Paris day, whatever the server's time zone (funding.clock)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from funding.clock import local_date, local_day, paris_today

ROOT = Path(__file__).resolve().parent.parent
# Calls that read the process's own zone: on a UTC server they date a 23:30 (Paris 00:30) sale yesterday.
# And the UTC day of an instant where a Paris day is meant (``now.date()`` refused the day's entries
# from 23:00 UTC, Paris midnight, until UTC's own midnight).
LOCAL_TIME = re.compile(r"date\.today\(\)|datetime\.now\(\)|\.fromtimestamp\(\s*[^,()]+\)|time\.localtime\(|utcnow\(\)\.date\(\)"
                        r"|\bnow\.date\(\)")


def test_late_evening_utc_is_already_tomorrow_in_paris():
    winter = dt.datetime(2026, 12, 4, 23, 30)  # naive UTC, as stored
    assert local_day(winter) == dt.date(2026, 12, 5)
    assert local_day(winter.replace(tzinfo=dt.UTC)) == dt.date(2026, 12, 5)
    assert paris_today(winter) == dt.date(2026, 12, 5)
    assert local_date(int(winter.replace(tzinfo=dt.UTC).timestamp())) == dt.date(2026, 12, 5)
    summer = dt.datetime(2026, 7, 1, 22, 30)  # UTC+2
    assert local_day(summer) == dt.date(2026, 7, 2)
    assert local_day(dt.datetime(2026, 7, 1, 21, 59)) == dt.date(2026, 7, 1)


def test_the_app_never_reads_the_servers_own_time_zone():
    offenders = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                 for folder in ("funding", "webhooks", "stripe_sandbox")
                 for path in sorted((ROOT / folder).rglob("*.py"))
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if LOCAL_TIME.search(line)]
    assert offenders == [], "use funding.clock (paris_today, local_day) or funding.db.utcnow:\n" + "\n".join(offenders)
