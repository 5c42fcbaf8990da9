"""Listeners that sit where a master's socket would be and do not behave like one."""

from __future__ import annotations

import socket
import threading


class SilentListener:
    """Accepts connections and says nothing (a master stopped with SIGSTOP looks like this),
    or says something that is not the mux protocol."""

    def __init__(self, path: str, says: bytes = b"") -> None:
        self.says = says
        self.accepted = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)  # kept open while the test runs: the peer must time out
            if self.says:
                conn.sendall(self.says)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()
