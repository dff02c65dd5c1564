"""The request handler both test servers build on: HTTP/1.1 keep-alive, as requests' pool
expects of the real services, and no Nagle delay."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler


class KeepAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add
        # ~40 ms to every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
