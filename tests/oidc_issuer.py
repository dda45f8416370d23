"""A real OpenID Connect issuer for the tests: discovery and JWKS over HTTP on 127.0.0.1.

`OidcIssuer()` serves /.well-known/openid-configuration and /jwks from a thread, signs tokens
with its RSA keys (PyJWT), rotates them (`rotate()`), and counts the requests it answered per
path (`hits`), so a test can show what the server fetched and what it did not. No pytest here.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                issuer.hits[self.path] += 1
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
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
