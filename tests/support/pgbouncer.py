"""A real PgBouncer (Debian's package) in transaction pooling mode, in front of the tests' PostgreSQL.

French PaaS (Scalingo, Clever Cloud) put one in front of PostgreSQL: each transaction may run
on another server connection, so nothing may outlive one. :class:`PgBouncer` starts it on a
free port (as the ``postgres`` system user when the tests run as root: it refuses root) and
stops it; its URL is the test database's with ``?pgbouncer=1``, which funding.db.create_engine
reads as "transaction pooling in front" (funding.ops.pgbouncer)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

BINARY = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgBouncer:
    def __init__(self, server_url: str, users: list[str], *, pool_size: int = 4):
        if BINARY is None:
            raise FileNotFoundError("pgbouncer is not installed (apt-get install pgbouncer)")
        server = make_url(server_url)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        (self.dir / "users.txt").write_text("".join(f'"{u}" ""\n' for u in users))
        (self.dir / "pgbouncer.ini").write_text(f"""[databases]
* = host={server.host or '127.0.0.1'} port={server.port or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir / 'users.txt'}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
server_reset_query =
logfile = {self.dir / 'pgbouncer.log'}
pidfile = {self.dir / 'pgbouncer.pid'}
""")
        self.dir.chmod(0o777)
        for f in self.dir.iterdir():
            f.chmod(0o666)
        self.server_url = server_url
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, database_url: str) -> str:
        """``database_url`` (same role, same database) through this PgBouncer."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.update_query_dict({"pgbouncer": "1"}).render_as_string(hide_password=False)

    def __enter__(self) -> PgBouncer:
        as_root = ["-u", "postgres"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen([BINARY, *as_root, str(self.dir / "pgbouncer.ini")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = (self.dir / "pgbouncer.log").read_text() if (self.dir / "pgbouncer.log").exists() else ""
                raise RuntimeError(f"pgbouncer did not start: {err}{log}")
            time.sleep(0.05)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
