"""A real OpenID Connect issuer for the tests: discovery and JWKS over HTTP on 127.0.0.1.

`OidcIssuer()` serves /.well-known/openid-configuration and /jwks from a thread (and, for a
browser login, /authorize, which approves at once, and /token), signs tokens
with its RSA keys (PyJWT), rotates them (`rotate()`), and counts the requests it answered per
path (`hits`), so a test can show what the server fetched and what it did not. No pytest here.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

#: the key each signing algorithm is made with, and how its public half becomes a JWK
KEYS: dict[str, tuple[Any, Any]] = {
    "RS256": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
    "PS256": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
    "ES256": (lambda: ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
    "ES384": (lambda: ec.generate_private_key(ec.SECP384R1()), ECAlgorithm),
    "EdDSA": (ed25519.Ed25519PrivateKey.generate, OKPAlgorithm),
}


class OidcIssuer:
    def __init__(self) -> None:
        #: kid -> private key; the first is the one tokens are signed with
        self.keys: dict[str, Any] = {}
        #: kid -> the algorithm it signs with
        self.algs: dict[str, str] = {}
        self.hits: Counter[str] = Counter()
        #: characters of junk added to the JWKS (an issuer answering too much)
        self.padding = 0
        #: whether each JWK names its algorithm (optional in a JWKS)
        self.jwk_alg = True
        self.rotate()
        issuer = self

        #: the authorization code flow (a browser login): the client id and secret it knows,
        #: the claims of whoever "logs in" at /authorize (no page: it approves at once), and
        #: the codes it gave (code -> redirect_uri)
        self.clients: dict[str, str] = {}
        self.login_claims: dict[str, Any] = {}
        self.codes: dict[str, str] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                issuer.hits[self.path] += 1
                if self.path.startswith("/authorize?"):
                    self._authorize()
                    return
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {
                        "issuer": issuer.url,
                        "jwks_uri": issuer.url + "/jwks",
                        "authorization_endpoint": issuer.url + "/authorize",
                        "token_endpoint": issuer.url + "/token",
                    }
                elif self.path == "/jwks":
                    body = {"keys": issuer.jwks(), "padding": "x" * issuer.padding}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorize(self) -> None:
                q = dict(parse_qsl(urlsplit(self.path).query))
                if q.get("client_id") not in issuer.clients or q.get("response_type") != "code":
                    self.send_error(400)
                    return
                code = uuid.uuid4().hex
                issuer.codes[code] = q["redirect_uri"]
                target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                issuer.hits[self.path] += 1
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
                client, _, secret = base64.b64decode(value or "").decode().partition(":")
                ok = (
                    self.path == "/token"
                    and scheme == "Basic"
                    and issuer.clients.get(client) == secret
                    and form.get("grant_type") == "authorization_code"
                    and issuer.codes.pop(form.get("code", ""), None) == form.get("redirect_uri")
                )
                if not ok:
                    self.send_error(400)
                    return
                token = issuer.token(**issuer.login_claims)
                data = json.dumps({"access_token": token, "token_type": "Bearer"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def rotate(self, keep_old: bool = False, alg: str = "RS256") -> str:
        """A new signing key for `alg` (its kid returned); the old ones are withdrawn unless
        kept."""
        kid = uuid.uuid4().hex[:12]
        key = KEYS[alg][0]()
        self.keys = {kid: key, **(self.keys if keep_old else {})}
        self.algs[kid] = alg
        return kid

    @property
    def kid(self) -> str:
        return next(iter(self.keys))

    def jwks(self) -> list[dict[str, Any]]:
        out = []
        for kid, key in self.keys.items():
            alg = self.algs[kid]
            jwk = KEYS[alg][1].to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "use": "sig", **({"alg": alg} if self.jwk_alg else {})})
        return out

    def claims(self, **claims: Any) -> dict[str, Any]:
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.url,
            "sub": "subject-1",
            "aud": "occi",
            "iat": now,
            "exp": now + 300,
        }
        base.update(claims)
        return {k: v for k, v in base.items() if v is not None}

    def token(
        self,
        *,
        kid: str | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A token signed by the current key (or `kid`'s), with these claims over the
        defaults (iss, sub, aud occi, iat, exp in 5 minutes; None drops one)."""
        kid = kid or self.kid
        return jwt.encode(
            self.claims(**claims),
            self.keys[kid],
            algorithm=self.algs[kid],
            headers={"kid": kid, **(headers or {})},
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
