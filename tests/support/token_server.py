#!/usr/bin/env python3
"""token_server: a small Docker Registry v2 token-auth server for silo's integration tests.

Implements the token protocol the CNCF registry (docker/distribution 2.8) delegates to when
configured with `auth: token: {realm, service, issuer, rootcertbundle}`:

  GET /token?service=SVC&scope=repository:NAME:pull,push[&scope=...]   (HTTP basic auth)
  POST /token  (form: grant_type=password&username=U&password=P&service=SVC&scope=...)

answers 200 with JSON {"token", "access_token", "expires_in", "issued_at"}. The token is an
RS256 JWT signed with --key; the registry trusts it because --cert (the certificate of that
key) is its rootcertbundle. The JWT header names the key the way the registry looks it up
(--key-id-mode):
  kid   "kid" = the libtrust key id of the public key: base32 of the first 30 bytes of the
        SHA-256 of the DER SubjectPublicKeyInfo, in 4-character groups joined by ':'. The
        registry finds it among the keys of its rootcertbundle (the default).
  x5c   "x5c" = [base64 DER of --cert]; the registry verifies the chain against the bundle.
  both  both headers (the registry prefers x5c).
Debian's docker-registry 2.8.2 accepts each (tests/integration/peers_test.cc checks all).

Access: the valid user (--user/--password) gets every action it asks for on every repository
(and registry:catalog:*). Wrong credentials: 401. No credentials: like Docker Hub, a token
with no access at all, or with pull-only access when --anonymous-pull is given.
--deny-push makes even the valid user's tokens pull-only.

Every request is logged as one line in --log (appended, flushed), so tests can count token
requests and check that clients cache tokens:
  <n> <METHOD> <path?query> user=<name|-> status=<code> access=<type:name:actions;...|->
The key must be RSA (PKCS#8 "PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY" PEM, unencrypted);
signing is pure Python (or `openssl dgst -sha256 -sign` with --openssl-sign).
Standard library only. Prints "listening on 127.0.0.1:PORT" on stdout when ready (with
--port 0 the kernel picks the port). SIGTERM ends it.
"""

import argparse
import base64
import binascii
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# ---------------------------------------------------------------------------------------
# PEM, DER and RSA


def pem_blocks(text):
    """[(label, der_bytes)] of every PEM block in text."""
    out = []
    label = None
    body = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("-----BEGIN ") and line.endswith("-----"):
            label = line[len("-----BEGIN "):-5]
            body = []
        elif line.startswith("-----END ") and label is not None:
            out.append((label, base64.b64decode("".join(body))))
            label = None
        elif label is not None and ":" not in line:  # skip RFC 1421 headers
            body.append(line)
    return out


def der_read(data, pos):
    """(tag, content, next_pos) of the DER element at pos."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, data[pos:pos + length], pos + length


def der_children(content):
    out = []
    pos = 0
    while pos < len(content):
        tag, value, pos = der_read(content, pos)
        out.append((tag, value))
    return out


class RsaKey:
    """An RSA private key parsed from PEM: n, e, d and the CRT parameters."""

    def __init__(self, pem_text):
        blocks = pem_blocks(pem_text)
        if not blocks:
            raise ValueError("no PEM block in the key file")
        label, der = blocks[0]
        if label == "PRIVATE KEY":  # PKCS#8: version, algorithm, OCTET STRING(RSAPrivateKey)
            _, seq, _ = der_read(der, 0)
            parts = der_children(seq)
            algorithm = der_children(parts[1][1])
            if algorithm[0][1] != bytes.fromhex("2a864886f70d010101"):  # rsaEncryption
                raise ValueError("the key is not RSA (only RS256 is implemented)")
            der = parts[2][1]
        elif label != "RSA PRIVATE KEY":
            raise ValueError("unsupported key PEM block: " + label)
        _, seq, _ = der_read(der, 0)
        ints = [int.from_bytes(v, "big") for tag, v in der_children(seq) if tag == 0x02]
        _, self.n, self.e, self.d, self.p, self.q, self.dp, self.dq, self.qinv = ints[:9]
        self.size = (self.n.bit_length() + 7) // 8

    def sign_sha256(self, message):
        """RSASSA-PKCS1-v1_5 signature of SHA-256(message)."""
        digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(message).digest()
        pad = self.size - len(digest_info) - 3
        m = int.from_bytes(b"\x00\x01" + b"\xff" * pad + b"\x00" + digest_info, "big")
        # CRT: two half-size exponentiations instead of one full-size one.
        m1 = pow(m, self.dp, self.p)
        m2 = pow(m, self.dq, self.q)
        h = (self.qinv * (m1 - m2)) % self.p
        s = m2 + h * self.q
        if pow(s, self.e, self.n) != m:
            raise RuntimeError("RSA signature self-check failed")
        return s.to_bytes(self.size, "big")


def openssl_sign_sha256(key_path, message):
    proc = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_path], input=message,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise RuntimeError("openssl dgst -sign failed: " + proc.stderr.decode(errors="replace"))
    return proc.stdout


def certificate_spki(cert_der):
    """The DER SubjectPublicKeyInfo inside an X.509 certificate."""
    _, cert, _ = der_read(cert_der, 0)
    _, tbs, _ = der_read(cert, 0)
    fields = []
    pos = 0
    while pos < len(tbs):
        start = pos
        tag, _, pos = der_read(tbs, pos)
        fields.append((tag, tbs[start:pos]))
    if fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    return fields[5][1]


def libtrust_key_id(spki_der):
    """The key id docker/libtrust (and so the registry) gives a public key."""
    b32 = base64.b32encode(hashlib.sha256(spki_der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---------------------------------------------------------------------------------------
# The server


class TokenServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def parse_scope(scope):
    """(type, name, [actions]) of "repository:NAME:pull,push"; None if malformed. NAME may
    hold ':' (registry:catalog:* has none, but a name with a port would)."""
    first = scope.find(":")
    last = scope.rfind(":")
    if first <= 0 or last == first:
        return None
    actions = [a for a in scope[last + 1:].split(",") if a]
    return scope[:first], scope[first + 1:last], actions


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "silo-token-server/1"

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's name
        pass  # our own log is written per request

    def log_line(self, user, status, access):
        cfg = self.server.cfg
        with cfg.lock:
            cfg.count += 1
            granted = ";".join("%s:%s:%s" % (a["type"], a["name"], ",".join(a["actions"])) for a in access) or "-"
            line = "%d %s %s user=%s status=%d access=%s\n" % (cfg.count, self.command, self.path, user or "-",
                                                                 status, granted)
            if cfg.log_file is not None:
                cfg.log_file.write(line)
                cfg.log_file.flush()

    def reply(self, status, obj, extra_headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path != "/token":
            self.log_line(None, 404, [])
            self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "try /token"}]})
            return
        user = password = None
        header = self.headers.get("Authorization", "")
        if header[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", None
        self.issue(params, user, password, oauth=False)

    def do_POST(self):
        # The OAuth2 form of the protocol (docker login, containerd): grant_type=password.
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"), keep_blank_values=True)
        if url.path != "/token":
            self.log_line(None, 404, [])
            self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "try /token"}]})
            return
        grant = (form.get("grant_type") or [""])[0]
        if grant != "password":
            self.log_line(None, 400, [])
            self.reply(400, {"error": "unsupported_grant_type"})
            return
        self.issue(form, (form.get("username") or [""])[0], (form.get("password") or [""])[0], oauth=True)

    def issue(self, params, user, password, oauth):
        cfg = self.server.cfg
        if user is not None and (user != cfg.user or password != cfg.password):
            self.log_line(user, 401, [])
            self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username or password"}]},
                       [("WWW-Authenticate", 'Basic realm="silo-token-server"')])
            return
        service = (params.get("service") or [""])[0]
        if service and service != cfg.service:
            self.log_line(user, 400, [])
            self.reply(400, {"errors": [{"code": "DENIED", "message": "unknown service " + service}]})
            return
        access = []
        for scope_param in params.get("scope", []):
            for scope in scope_param.split(" "):  # several scopes may share one parameter
                parsed = parse_scope(scope)
                if parsed is None:
                    continue
                kind, name, actions = parsed
                if user is None:
                    allowed = ["pull"] if cfg.anonymous_pull and kind == "repository" else []
                elif cfg.deny_push:
                    allowed = ["pull"] if kind == "repository" else []
                else:
                    allowed = None  # everything asked for
                granted = [a for a in actions if allowed is None or a in allowed]
                if granted:
                    access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": cfg.issuer,
            "sub": user or "",
            "aud": cfg.service,
            "exp": now + cfg.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": b64url(os.urandom(12)),
            "access": access,
        }
        token = cfg.make_jwt(claims)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.log_line(user, 200, access)
        body = {"token": token, "access_token": token, "expires_in": cfg.expires_in, "issued_at": issued}
        if oauth:
            body["scope"] = " ".join(params.get("scope", []))
        self.reply(200, body)


class Config:
    def __init__(self, args):
        self.user = args.user
        self.password = args.password
        self.issuer = args.issuer
        self.service = args.service
        self.expires_in = args.expires_in
        self.anonymous_pull = args.anonymous_pull
        self.deny_push = args.deny_push
        self.lock = threading.Lock()
        self.count = 0
        self.log_file = open(args.log, "a", encoding="utf-8") if args.log else None
        with open(args.key, encoding="ascii") as f:
            self.key = RsaKey(f.read())
        self.key_path = args.key
        self.openssl_sign = args.openssl_sign
        with open(args.cert, encoding="ascii") as f:
            certs = [der for label, der in pem_blocks(f.read()) if label == "CERTIFICATE"]
        if not certs:
            raise ValueError("no certificate in " + args.cert)
        spki = certificate_spki(certs[0])
        self.header = {"typ": "JWT", "alg": "RS256"}
        if args.key_id_mode in ("kid", "both"):
            self.header["kid"] = libtrust_key_id(spki)
        if args.key_id_mode in ("x5c", "both"):
            self.header["x5c"] = [base64.b64encode(der).decode() for der in certs]
        self.encoded_header = b64url(json.dumps(self.header, separators=(",", ":")).encode())

    def make_jwt(self, claims):
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = (self.encoded_header + "." + payload).encode()
        if self.openssl_sign:
            signature = openssl_sign_sha256(self.key_path, signing_input)
        else:
            signature = self.key.sign_sha256(signing_input)
        return signing_input.decode() + "." + b64url(signature)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--key", required=True, help="RSA private key (PEM) that signs the tokens")
    p.add_argument("--cert", required=True, help="its certificate (PEM): the registry's rootcertbundle")
    p.add_argument("--issuer", required=True, help="the registry's auth.token.issuer")
    p.add_argument("--service", required=True, help="the registry's auth.token.service")
    p.add_argument("--expires-in", type=int, default=300, help="token lifetime in seconds")
    p.add_argument("--log", help="append one line per request here")
    p.add_argument("--anonymous-pull", action="store_true", help="anonymous tokens may pull")
    p.add_argument("--deny-push", action="store_true", help="the valid user may only pull")
    p.add_argument("--key-id-mode", choices=("kid", "x5c", "both"), default="kid",
                   help="how the JWT header names the signing key")
    p.add_argument("--openssl-sign", action="store_true", help="sign with `openssl dgst` instead of Python")
    args = p.parse_args()

    cfg = Config(args)
    server = TokenServer(("127.0.0.1", args.port), Handler)
    server.cfg = cfg
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("listening on 127.0.0.1:%d kid=%s" % (server.server_address[1], cfg.header.get("kid", "-")), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
