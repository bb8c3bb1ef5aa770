#!/usr/bin/env python3
"""static_registry: serves fixed bytes as registry manifests and blobs, for tests that need
what a real registry refuses to store (malformed JSON, schema 1, oversized manifests).

Files under ROOT: ROOT/<repo>/manifests/<reference> and ROOT/<repo>/blobs/<digest>; an
optional "<file>.type" holds the Content-Type. GET /v2/ answers 200. Prints "listening on
127.0.0.1:PORT" when ready. Standard library only; 127.0.0.1 only.
"""
import argparse
import http.server
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    root = os.path.realpath(args.root)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, code, body=b"", ctype="application/json"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?")[0]
            if path in ("/v2", "/v2/"):
                return self.reply(200, b"{}")
            rel = path[len("/v2/"):] if path.startswith("/v2/") else ""
            full = os.path.realpath(os.path.join(root, rel))
            if not rel or not full.startswith(root + os.sep) or not os.path.isfile(full):
                return self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}')
            ctype = "application/vnd.oci.image.manifest.v1+json"
            if os.path.exists(full + ".type"):
                with open(full + ".type") as f:
                    ctype = f.read().strip()
            with open(full, "rb") as f:
                return self.reply(200, f.read(), ctype)

        do_HEAD = do_GET

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
