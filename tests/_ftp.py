"""A real FTP server (pyftpdlib) on 127.0.0.1 serving a temporary folder, for storage tests over
a network protocol (fsspec's `ftp://`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

USER = "wanhe"
PASSWORD = "render-farm"


@contextmanager
def ftp_server(root: Path, *, perm: str = "elradfmwMT", port: int = 0) -> Iterator[str]:
    """Serve `root` on loopback `port` (default: a free one); yield the base URL
    `ftp://user:pw@127.0.0.1:port`.

    The server thread polls every 0.2 s, so closing it takes at most that long."""
    pytest.importorskip("pyftpdlib")
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    root.mkdir(parents=True, exist_ok=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(USER, PASSWORD, str(root), perm=perm)
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer, "timeout": 30})
    server = ThreadedFTPServer(("127.0.0.1", port), handler)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2},
                              name="test-ftp", daemon=True)
    thread.start()
    try:
        yield f"ftp://{USER}:{PASSWORD}@127.0.0.1:{port}"
    finally:
        server.close_all()
        thread.join(timeout=10)
