"""A stand-in for a site's device-flow certificate tool (CSCS ``cscs-key``, Cineca ``step ssh
certificate``, Isambard ``clifton auth``), run by the engine as issuer ``command``.

    python device_tool.py --key KEY --ca CA --principal USER [--ask QUESTION --expect ANSWER]
                          [--fail WORDS] [--silent] [--helper] [--lifetime +1h]

It prints a link to a tiny HTTP endpoint of its own on 127.0.0.1 and a code, then waits (a
blocking ``handle_request``, no polling) until the code is posted there ("approved"), then
writes ``KEY`` (a new ed25519 key) and ``KEY-cert.pub`` signed with ``ssh-keygen -s CA`` for
``USER`` and exits 0. ``--ask`` first asks a question on its terminal and reads the answer
(asked again while it is not ``--expect``); ``--fail`` prints its words and exits 3;
``--silent`` prints nothing and waits for a signal; ``--helper`` starts a child in its
process group first and prints its pid (a cancel must end both).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

CODE = "WDJB-MJHT"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--principal", required=True)
    parser.add_argument("--lifetime", default="+1h")
    parser.add_argument("--ask")
    parser.add_argument("--expect")
    parser.add_argument("--fail")
    parser.add_argument("--silent", action="store_true")
    parser.add_argument("--helper", action="store_true")
    args = parser.parse_args()

    if args.helper:
        helper = subprocess.Popen(["sleep", "600"])
        print(f"helper pid {helper.pid}", flush=True)
    if args.silent:
        signal.pause()
        return 1
    print("Contacting the identity provider...", flush=True)
    if args.fail:
        print(args.fail, file=sys.stderr, flush=True)
        return 3
    if args.ask:
        while True:
            sys.stdout.write(args.ask)
            sys.stdout.flush()
            answer = sys.stdin.readline().rstrip("\n")
            if answer == args.expect:
                break
            print("Sorry, that is not right.", flush=True)

    approved: list[bool] = []

    class Approve(BaseHTTPRequestHandler):
        def log_message(self, format: str, *values: object) -> None:
            pass

        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            good = query.get("user_code") == [CODE]
            body = b"approved\n" if good else b"wrong code\n"
            self.send_response(200 if good else 400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if good:
                approved.append(True)

    server = HTTPServer(("127.0.0.1", 0), Approve)
    port = server.server_address[1]
    print(f"To sign in, open http://127.0.0.1:{port}/device and enter code {CODE}", flush=True)
    print("Waiting for you to sign in in the browser...", flush=True)
    while not approved:
        server.handle_request()
    server.server_close()

    for path in (args.key, args.key + ".pub", args.key + "-cert.pub"):
        if os.path.exists(path):
            os.unlink(path)
    os.makedirs(os.path.dirname(args.key), mode=0o700, exist_ok=True)
    keygen = [
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", args.key],
        ["ssh-keygen", "-q", "-s", args.ca, "-I", f"device_{args.principal}", "-n",
         args.principal, "-V", args.lifetime, args.key + ".pub"],
    ]  # fmt: skip
    for argv in keygen:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
    print(f"Certificate written to {args.key}-cert.pub", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
