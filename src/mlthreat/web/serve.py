"""Running the board: a uvicorn server on a socket we bind ourselves (so the port, the token and
the allowed Host names are known before the first request), in the foreground for the command
line or in a thread for tests and notebooks."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from mlthreat.web.app import Board, create_app

LOOPBACK = "127.0.0.1"


@dataclass
class Served:
    url: str          # the address to open, token included
    token: str
    port: int
    server: uvicorn.Server
    sock: socket.socket


def prepare(board: Board, host: str = LOOPBACK, port: int = 0) -> Served:
    """Bind `host`:`port` (0: a free port) and build the server; nothing is served yet.
    ValueError if `host` is not one concrete address of this machine's."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"--host {host}: give an IP address, e.g. 127.0.0.1") from exc
    if address.is_unspecified:
        raise ValueError(f"--host {host}: listening on every interface is refused; give the "
                         "one address the other participants will use")
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror}; pick another "
                         "--port or leave it out for a free one") from exc
    sock.listen(64)
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(24)
    shown = f"[{host}]" if address.version == 6 else host
    hosts = {f"{LOOPBACK}:{port}", f"localhost:{port}", f"{shown}:{port}"}
    app = create_app(board, token, hosts)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                            limit_concurrency=64, timeout_keep_alive=5)
    return Served(f"http://{shown}:{port}/?token={token}", token, port,
                  uvicorn.Server(config), sock)


def serve(served: Served) -> None:
    """Serve until Ctrl-C."""
    try:
        served.server.run(sockets=[served.sock])
    finally:
        served.sock.close()


@contextmanager
def running(board: Board, host: str = LOOPBACK) -> Iterator[Served]:
    """The board served from a thread until the block ends (tests, notebooks)."""
    served = prepare(board, host)
    thread = threading.Thread(target=served.server.run, kwargs={"sockets": [served.sock]},
                              daemon=True)
    thread.start()
    try:
        while not served.server.started:
            if not thread.is_alive():
                raise RuntimeError("the board's server did not start")
            threading.Event().wait(0.02)
        yield served
    finally:
        served.server.should_exit = True
        thread.join(timeout=10)
        served.sock.close()
