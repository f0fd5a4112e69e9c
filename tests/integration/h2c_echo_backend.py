#!/usr/bin/python3
"""An HTTP/2 cleartext (prior knowledge) origin for the integration tests.

Listens on 127.0.0.1:PORT (0 = any; the chosen port is printed as
"listening PORT" on stdout) and answers every request with a JSON echo of
what it received: {"protocol": "h2c", "method", "path", "authority",
"headers": {name: value}, "body_bytes"}. One thread per connection. Uses
Debian's python3-h2.
"""
import json
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


def serve(sock: socket.socket) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    requests = {}
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    requests[ev.stream_id] = {"headers": dict(ev.headers), "body": 0}
                elif isinstance(ev, h2.events.DataReceived):
                    requests[ev.stream_id]["body"] += len(ev.data)
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    r = requests.pop(ev.stream_id)
                    h = r["headers"]
                    body = json.dumps({
                        "protocol": "h2c",
                        "method": h.get(":method"),
                        "path": h.get(":path"),
                        "authority": h.get(":authority"),
                        "headers": {k: v for k, v in h.items() if not k.startswith(":")},
                        "body_bytes": r["body"],
                    }).encode()
                    conn.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "application/json"),
                                                     ("content-length", str(len(body)))])
                    conn.send_data(ev.stream_id, body, end_stream=True)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    sock.sendall(conn.data_to_send())
                    return
            sock.sendall(conn.data_to_send())
    except OSError:
        return
    finally:
        sock.close()


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    print(f"listening {srv.getsockname()[1]}", flush=True)
    while True:
        s, _ = srv.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
