#!/usr/bin/env python3
"""fault_proxy: a fault-injecting HTTP/1.1 reverse proxy on 127.0.0.1 for silo's tests.

Sits in front of a registry (--upstream http://127.0.0.1:Q, or https:// with --upstream-ca)
and forwards every request (keep-alive on both sides, Range and every other end-to-end header
passed through, request and response bodies streamed in 64 KiB pieces, never buffered
whole), except that it injects faults, drawn per request from a random generator seeded with
--seed:

  drop      close the client connection without answering (the request is not forwarded)
  truncate  forward, send the headers (the full Content-Length) and part of the body, then
            close the connection; the part is --truncate-fraction of the body (default: a
            random fraction in [0.1, 0.9]), always at least one byte short. A response with
            no body (HEAD, 204, 304, Content-Length 0) is dropped instead ("truncate->drop").
  429       answer 429 Too Many Requests with Retry-After: --retry-after seconds (not forwarded)
  503       answer 503 Service Unavailable (not forwarded)
  delay     sleep --delay-ms before handling (combines with the others)

Probabilities: --drop, --truncate, --status429, --status503 (one draw per request picks at
most one of them; their sum must not exceed 1), --delay (probability of the delay; defaults
to 1 when --delay-ms is set).

--fail-first N makes faults deterministic: the first N requests to each path (the URL path
without the query, any method) always get a fault, picked among the enabled faults in
proportion to their probabilities (all four equally if none is set), and every later request
to that path passes untouched, so a client that retries at least N times always succeeds.
--path-regex and --methods restrict faults (and the --fail-first counting) to matching
requests; others always pass.

The Host header is passed through and X-Forwarded-Proto: http is added, so a registry builds
upload Location URLs that point back at the proxy.

Log (--log FILE, appended and flushed, one line per request):
  <n> conn=<c> <METHOD> <path?query> range=<Range|-> fault=<none|drop|truncate|429|503|...>
      delay_ms=<d> status=<code|-> bytes=<body bytes sent>/<length|?|->  [note]
(on one line). Prints "listening on 127.0.0.1:PORT" on stdout when ready (--listen-port 0:
any free port). SIGTERM ends it. Standard library only.
"""

import argparse
import http.client
import itertools
import os
import random
import re
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

PIECE = 64 * 1024
FAULTS = ("drop", "truncate", "429", "503")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "expect"}


class Config:
    def __init__(self, args):
        self.args = args
        url = urllib.parse.urlsplit(args.upstream)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise SystemExit("--upstream must be http://HOST:PORT or https://HOST:PORT")
        self.upstream_https = url.scheme == "https"
        self.upstream_host = url.hostname
        self.upstream_port = url.port or (443 if self.upstream_https else 80)
        self.ssl_context = None
        if self.upstream_https:
            self.ssl_context = ssl.create_default_context(cafile=args.upstream_ca)
        self.weights = {"drop": args.drop, "truncate": args.truncate, "429": args.status429, "503": args.status503}
        if sum(self.weights.values()) > 1.0 + 1e-9:
            raise SystemExit("--drop + --truncate + --status429 + --status503 must not exceed 1")
        self.delay_prob = args.delay if args.delay is not None else (1.0 if args.delay_ms > 0 else 0.0)
        self.path_re = re.compile(args.path_regex) if args.path_regex else None
        self.methods = {m.strip().upper() for m in args.methods.split(",")} if args.methods else None
        self.rng = random.Random(args.seed)
        self.lock = threading.Lock()
        self.request_ids = itertools.count(1)
        self.connection_ids = itertools.count(1)
        self.per_path = {}
        self.log_file = open(args.log, "a", encoding="utf-8") if args.log else None

    def log(self, line):
        if self.log_file is None:
            return
        with self.lock:
            self.log_file.write(line + "\n")
            self.log_file.flush()

    def decide(self, method, path):
        """(fault or None, delay in seconds) for one request."""
        key = urllib.parse.urlsplit(path).path
        if self.path_re is not None and not self.path_re.search(path):
            return None, 0.0
        if self.methods is not None and method not in self.methods:
            return None, 0.0
        with self.lock:
            delay = self.args.delay_ms / 1000.0 if self.rng.random() < self.delay_prob else 0.0
            if self.args.fail_first is not None:
                seen = self.per_path.get(key, 0) + 1
                self.per_path[key] = seen
                if seen > self.args.fail_first:
                    return None, 0.0
                weights = [self.weights[f] for f in FAULTS]
                if sum(weights) <= 0:
                    weights = [1.0] * len(FAULTS)
                return self.rng.choices(FAULTS, weights=weights)[0], delay
            r = self.rng.random()
            for fault in FAULTS:
                r -= self.weights[fault]
                if r < 0:
                    return fault, delay
            return None, delay

    def truncate_fraction(self):
        if self.args.truncate_fraction is not None:
            return self.args.truncate_fraction
        with self.lock:
            return self.rng.uniform(0.1, 0.9)

    def connect(self):
        if self.upstream_https:
            return http.client.HTTPSConnection(self.upstream_host, self.upstream_port, timeout=self.args.upstream_timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=self.args.upstream_timeout)


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "silo-fault-proxy/1"

    def setup(self):
        super().setup()
        self.cfg = self.server.cfg
        self.conn_id = next(self.cfg.connection_ids)
        self.upstream = None

    def finish(self):
        self.close_upstream()
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's name
        pass  # our own log line per request

    def close_upstream(self):
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def abort_client(self):
        """Closes the client connection now (FIN; unread request bytes may turn it into RST)."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def write(self, data):
        try:
            self.wfile.write(data)
        except OSError as e:
            raise ClientGone(str(e)) from e

    # Every method goes through proxy().
    def do_GET(self):
        self.proxy()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def request_body_framing(self):
        """("length", n), ("chunked", None) or (None, 0)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return "chunked", None
        length = self.headers.get("Content-Length")
        if length is not None:
            return "length", int(length)
        return None, 0

    def proxy(self):
        n = next(self.cfg.request_ids)
        fault, delay = self.cfg.decide(self.command, self.path)
        # The log line is written just before the client can see the end of the exchange
        # (the last body bytes, the close), so a client that is done finds its requests logged.
        self.entry = {"n": n, "fault": fault or "none", "delay": delay, "status": "-", "bytes": "-", "note": "",
                      "logged": False}
        if delay:
            time.sleep(delay)
        try:
            if fault == "drop":
                self.emit_log()
                self.abort_client()
            elif fault in ("429", "503"):
                self.answer_fault(fault)
            else:
                self.forward(fault == "truncate")
        except ClientGone as e:
            self.entry["note"] = "client gone: %s" % e
            self.close_connection = True
            self.close_upstream()
        self.emit_log()

    def emit_log(self):
        e = self.entry
        if e["logged"]:
            return
        e["logged"] = True
        line = "%d conn=%d %s %s range=%s fault=%s delay_ms=%d status=%s bytes=%s" % (
            e["n"], self.conn_id, self.command, self.path, self.headers.get("Range", "-"), e["fault"],
            int(e["delay"] * 1000), e["status"], e["bytes"])
        if e["note"]:
            line += " " + e["note"]
        self.cfg.log(line)

    def answer_fault(self, fault):
        if fault == "429":
            status, reason, code = 429, "Too Many Requests", "TOOMANYREQUESTS"
        else:
            status, reason, code = 503, "Service Unavailable", "UNAVAILABLE"
        body = ('{"errors":[{"code":"%s","message":"injected by fault_proxy"}]}\n' % code).encode()
        framing, length = self.request_body_framing()
        if framing == "length" and length <= 1 << 20:
            self.rfile.read(length)  # small bodies are discarded to keep the connection
        elif framing is not None:
            self.close_connection = True
        head = "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (status, reason, len(body))
        if fault == "429":
            head += "Retry-After: %d\r\n" % self.cfg.args.retry_after
        if self.close_connection:
            head += "Connection: close\r\n"
        self.entry["status"] = str(status)
        self.entry["bytes"] = "0/0" if self.command == "HEAD" else "%d/%d" % (len(body), len(body))
        self.emit_log()
        self.write(head.encode() + b"\r\n" + (b"" if self.command == "HEAD" else body))

    def send_upstream_request(self):
        """Sends the request line, headers and body upstream; returns the response."""
        framing, length = self.request_body_framing()
        for attempt in (1, 2):
            fresh = self.upstream is None
            if fresh:
                self.upstream = self.cfg.connect()
            try:
                self.upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                drop = {h.strip().lower() for h in self.headers.get("Connection", "").split(",")}
                for name, value in self.headers.items():
                    if name.lower() in HOP_BY_HOP or name.lower() in drop:
                        continue
                    self.upstream.putheader(name, value)
                if "X-Forwarded-Proto" not in self.headers:
                    self.upstream.putheader("X-Forwarded-Proto", "http")
                if framing == "chunked":
                    self.upstream.putheader("Transfer-Encoding", "chunked")
                self.upstream.endheaders()
                if framing == "length":
                    self.copy_length_body(length)
                elif framing == "chunked":
                    self.copy_chunked_body()
                return self.upstream.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # A kept-alive upstream connection the registry had closed: once more on a
                # new one, when no request body was consumed yet.
                self.close_upstream()
                if fresh or attempt == 2 or framing is not None:
                    raise
        raise AssertionError("unreachable")

    def copy_length_body(self, remaining):
        while remaining > 0:
            data = self.rfile.read(min(PIECE, remaining))
            if not data:
                raise ClientGone("request body ended early")
            self.upstream.send(data)
            remaining -= len(data)

    def copy_chunked_body(self):
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ClientGone("chunked request body ended early")
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers up to the empty line
                    trailer = self.rfile.readline(8192)
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                self.upstream.send(b"0\r\n\r\n")
                return
            remaining = size
            self.upstream.send(b"%x\r\n" % size)
            while remaining > 0:
                data = self.rfile.read(min(PIECE, remaining))
                if not data:
                    raise ClientGone("chunked request body ended early")
                self.upstream.send(data)
                remaining -= len(data)
            self.rfile.readline(16)  # CRLF after the chunk
            self.upstream.send(b"\r\n")

    def forward(self, truncate):
        entry = self.entry
        try:
            resp = self.send_upstream_request()
        except (OSError, http.client.HTTPException) as e:
            self.close_upstream()
            body = ("fault_proxy: upstream error: %s\n" % e).encode()
            self.close_connection = True
            entry.update(status="502", bytes="%d/%d" % (len(body), len(body)), note="upstream error")
            self.emit_log()
            self.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                       b"Connection: close\r\n\r\n%s" % (len(body), body))
            return
        entry["status"] = str(resp.status)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        length_header = resp.getheader("Content-Length")
        length = int(length_header) if length_header is not None and not no_body else None
        if no_body:
            mode = "none"
        elif length is not None:
            mode = "length"
        elif resp.chunked:
            mode = "chunked"
        else:
            mode = "close"
        cut = None
        if truncate:
            if mode == "none" or length == 0:
                # Nothing to cut: drop the connection instead, unanswered.
                entry.update(fault="truncate->drop", status="-")
                self.close_upstream()
                self.emit_log()
                self.abort_client()
                return
            if length is not None:
                cut = min(length - 1, int(length * self.cfg.truncate_fraction()))
            else:
                cut = max(1, int(PIECE * self.cfg.truncate_fraction()))
        if mode == "close":
            self.close_connection = True

        drop = {h.strip().lower() for h in (resp.getheader("Connection") or "").split(",")}
        head = ["HTTP/1.1 %d %s" % (resp.status, resp.reason)]
        for name, value in resp.getheaders():
            if name.lower() in HOP_BY_HOP or name.lower() in drop:
                continue
            head.append("%s: %s" % (name, value))
        if mode == "chunked":
            head.append("Transfer-Encoding: chunked")
        if self.close_connection or cut is not None:
            head.append("Connection: close")
        head = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")

        total = "-" if mode == "none" else (str(length) if length is not None else "?")
        sent = 0
        if mode == "none":
            entry["bytes"] = "-"
            self.emit_log()
        self.write(head)
        try:
            while mode != "none":
                want = PIECE if cut is None else min(PIECE, cut - sent)
                if want <= 0:
                    break
                data = resp.read1(want)
                if not data:
                    break
                if mode == "length" and cut is None and sent + len(data) >= length:
                    entry["bytes"] = "%d/%s" % (sent + len(data), total)
                    self.emit_log()  # before the client has the whole body
                if mode == "chunked":
                    self.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.write(data)
                sent += len(data)
        except (OSError, http.client.HTTPException) as e:
            entry["note"] = "upstream broke mid-body: %s" % e
            cut = sent  # the client gets a short body
        if not entry["logged"]:
            entry["bytes"] = "%d/%s" % (sent, total)
            self.emit_log()
        if mode == "chunked" and cut is None:
            self.write(b"0\r\n\r\n")
        if cut is not None or mode == "close":
            self.close_upstream()
            self.abort_client()
            return
        resp.read()  # marks the response finished (b"" here) so the connection is reusable
        if resp.will_close:
            self.close_upstream()


class ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen-port", type=int, required=True, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--upstream", required=True, help="http://HOST:PORT or https://HOST:PORT")
    p.add_argument("--upstream-ca", help="CA certificate (PEM) for an https upstream")
    p.add_argument("--upstream-timeout", type=float, default=60.0, help="seconds")
    p.add_argument("--drop", type=float, default=0.0, help="probability of closing without an answer")
    p.add_argument("--truncate", type=float, default=0.0, help="probability of cutting the body short")
    p.add_argument("--status429", type=float, default=0.0, help="probability of 429 + Retry-After")
    p.add_argument("--status503", type=float, default=0.0, help="probability of 503")
    p.add_argument("--delay-ms", type=int, default=0, help="delay applied with probability --delay")
    p.add_argument("--delay", type=float, default=None, help="probability of the delay (default 1 if --delay-ms)")
    p.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds of the 429 answers")
    p.add_argument("--truncate-fraction", type=float, default=None,
                   help="part of the body a truncated response carries (default random in [0.1, 0.9])")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fail-first", type=int, default=None, metavar="N",
                   help="fault exactly the first N requests per path, then none")
    p.add_argument("--path-regex", help="only requests whose path?query matches get faults")
    p.add_argument("--methods", help="only these methods get faults, e.g. GET,HEAD")
    p.add_argument("--log", help="append one line per request here")
    args = p.parse_args()

    cfg = Config(args)
    server = ProxyServer(("127.0.0.1", args.listen_port), Handler)
    server.cfg = cfg
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("listening on 127.0.0.1:%d upstream %s" % (server.server_address[1], args.upstream), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
