"""The demo keeps its keys in its data directory: an emailed link, a session cookie and the
seals outlive a restart (issue 17: a restart used to turn every link into a 400)."""

from __future__ import annotations

import stat

from funding.security import sign, unsign
from funding.settings import load_settings


def test_a_link_signed_before_a_restart_of_the_demo_still_reads_after_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo' / 'funding.db'}"
    before = load_settings({"FUNDING_ENV": "development", "DATABASE_URL": url})
    token = sign(before.secret_key, "login", {"t": 42})
    after = load_settings({"FUNDING_ENV": "development", "DATABASE_URL": url})  # a new process, the same data
    assert after.secret_key == before.secret_key and after.seal_key == before.seal_key
    assert unsign(after.secret_key, "login", token, max_age=900) == {"t": 42}
    kept = tmp_path / "demo" / "funding.db.secrets.json"
    assert kept.exists() and stat.S_IMODE(kept.stat().st_mode) == 0o600
    # Another demo (another data directory) has its own keys.
    other = load_settings({"FUNDING_ENV": "development", "DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"})
    assert other.secret_key != before.secret_key
