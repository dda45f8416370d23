"""X.509 client certificates, verified by the TLS-terminating proxy in front of the server.

The room holds the AuthMethod `X509Method` and `normalize_dn`, the one canonical form of a
subject DN that users are stored and looked up under (also used by `occi-server users create
--x509-dn`). The proxy checks the certificate against its client CA and passes on what it found
in `X-SSL-Client-Verify` (SUCCESS), `X-SSL-Client-S-DN` and/or `X-SSL-Client-Cert`; those
headers are believed only from the addresses in `x509_proxies`: from anywhere else they are
ignored (and logged), since any client can send them.

The canonical DN is RFC 4514 as cryptography writes it (most specific first:
`CN=Carol,DC=example,DC=org`). Accepted on the way in: RFC 4514/2253 (HAProxy's
`ssl_c_s_dn(,0,rfc2253)`, nginx's `$ssl_client_s_dn`), OpenSSL's one-line form (HAProxy's
default `ssl_c_s_dn`: `/DC=org/DC=example/CN=Carol`), and the certificate itself, PEM
(URL-encoded as nginx's `$ssl_client_escaped_cert`, or plain) or base64 DER (HAProxy's
`ssl_c_der,base64`). No falcon here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import logging
import re
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from cryptography import x509
from cryptography.x509.oid import NameOID

from occi.errors import BadRequest
from occi.identity.grants import principal_for
from occi.identity.principal import AuthFailed, Presented, Principal
from occi.identity.store import IdentityTx
from occi.settings import Settings, SettingsError

if TYPE_CHECKING:
    from occi.store.base import Store

log = logging.getLogger(__name__)

VERIFY, SUBJECT, CERT = "x-ssl-client-verify", "x-ssl-client-s-dn", "x-ssl-client-cert"
HEADERS = (VERIFY, SUBJECT, CERT)
#: the longest DN and certificate header looked at (characters)
MAX_DN = 4096
MAX_CERT = 32 * 1024
#: X.509 has no HTTP authentication scheme; this one names what the server wants
CHALLENGE = 'Certificate realm="occi"'

#: attribute names (upper-case) as OpenSSL and RFC 4514 write them
_ATTRIBUTES = {
    "CN": NameOID.COMMON_NAME,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
    "USERID": NameOID.USER_ID,
    "STREET": NameOID.STREET_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "E": NameOID.EMAIL_ADDRESS,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "SN": NameOID.SURNAME,
    "GN": NameOID.GIVEN_NAME,
    "GIVENNAME": NameOID.GIVEN_NAME,
    "TITLE": NameOID.TITLE,
    "INITIALS": NameOID.INITIALS,
    "PSEUDONYM": NameOID.PSEUDONYM,
    "DNQUALIFIER": NameOID.DN_QUALIFIER,
    "GENERATIONQUALIFIER": NameOID.GENERATION_QUALIFIER,
    "POSTALCODE": NameOID.POSTAL_CODE,
    "BUSINESSCATEGORY": NameOID.BUSINESS_CATEGORY,
}


class _AnyCase(dict):  # type: ignore[type-arg]
    """The attribute names for cryptography's RFC 4514 parser, whatever their case (it must
    not be empty: the parser would take an empty mapping for none)."""

    def __init__(self) -> None:
        super().__init__(_ATTRIBUTES)

    def get(self, key, default=None):  # type: ignore[no-untyped-def]
        return _ATTRIBUTES.get(str(key).upper(), default)


#: a slash that begins the next `attr=` of a one-line DN (values may hold other slashes)
_ONELINE_SPLIT = re.compile(r"/(?=[A-Za-z][A-Za-z0-9.-]*=)")


def _oneline(text: str) -> x509.Name:
    """`/DC=org/DC=example/CN=Carol` (OpenSSL's X509_NAME_oneline), root first."""
    attrs = []
    for part in _ONELINE_SPLIT.split(text[1:]):
        attr, sep, value = part.partition("=")
        oid = _ATTRIBUTES.get(attr.upper())
        if oid is None and re.fullmatch(r"[0-9]+(\.[0-9]+)+", attr):
            oid = x509.ObjectIdentifier(attr)
        if not sep or oid is None:
            raise ValueError(f"unknown attribute {attr!r}")
        attrs.append(x509.NameAttribute(oid, value))
    return x509.Name(attrs)


def normalize_dn(text: str) -> str:
    """The canonical (RFC 4514) form of a subject DN given in RFC 4514/2253 or OpenSSL's
    one-line form; BadRequest when it is neither."""
    text = text.strip()
    try:
        if len(text) > MAX_DN:
            raise ValueError(f"longer than {MAX_DN} characters")
        if text.startswith("/"):
            name = _oneline(text)
        else:
            name = x509.Name.from_rfc4514_string(text, _AnyCase())
        if not len(name):
            raise ValueError("no attributes")
        return name.rfc4514_string()
    except ValueError as exc:
        raise BadRequest(
            f"{text[:200]!r} is not a distinguished name (CN=Carol,DC=example,DC=org or "
            f"/DC=org/DC=example/CN=Carol): {exc or 'unparsable'}"
        ) from exc


def subject_of_certificate(text: str) -> str:
    """The canonical subject DN of a certificate sent as PEM (URL-encoded or not; newlines
    may have become spaces) or as base64 DER; ValueError when it is none of these."""
    if len(text) > MAX_CERT:
        raise ValueError(f"a certificate header longer than {MAX_CERT} characters")
    if "%" in text:
        text = urllib.parse.unquote(text)
    m = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, re.S)
    body = m.group(1) if m else text
    try:
        der = base64.b64decode(re.sub(r"\s+", "", body), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from exc
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for item in filter(None, re.split(r"[\s,]+", text.strip())):
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise SettingsError(f"setting x509_proxies: {item!r} is not an address: {exc}") from exc
    return out


class X509Method:
    """Client certificates, as the trusted proxies report them."""

    name = "x509"

    def __init__(self, proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network]):
        self.proxies = proxies
        self._told: set[str] = set()

    def challenge(self) -> str:
        return CHALLENGE

    def trusted(self, remote_addr: str) -> bool:
        try:
            addr = ipaddress.ip_address(remote_addr.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.proxies)

    def find(self, headers: Mapping[str, str], remote_addr: str) -> Presented | None:
        if not any(h in headers for h in HEADERS):
            return None
        if not self.trusted(remote_addr):
            if remote_addr not in self._told and len(self._told) < 100:
                self._told.add(remote_addr)
                log.warning(
                    "ignored the X-SSL-Client-* headers from %s: not a proxy in x509_proxies",
                    remote_addr or "an unknown address",
                )
            return None
        verify = headers.get(VERIFY, "").strip()
        if verify in ("", "NONE") and not any(headers.get(h, "").strip() for h in (SUBJECT, CERT)):
            return None  # no certificate presented (nginx says NONE): another method may apply
        if verify != "SUCCESS":
            raise AuthFailed(f"the proxy did not verify the client certificate ({verify[:80]!r})")
        try:
            if headers.get(CERT, "").strip():
                dn = subject_of_certificate(headers[CERT].strip())
            elif headers.get(SUBJECT, "").strip():
                dn = normalize_dn(headers[SUBJECT])
            else:
                raise AuthFailed(
                    "the proxy verified a certificate but sent neither its subject nor it"
                )
        except (ValueError, BadRequest) as exc:
            raise AuthFailed(
                f"the proxy sent an unreadable client certificate subject: {exc}"
            ) from exc
        key = hashlib.sha256(dn.encode()).hexdigest()
        return Presented(method=self.name, key=key, user=None, secret=dn)

    def verify(self, presented: Presented, store: Store) -> Principal:
        dn = cast(str, presented.secret)
        with store.begin(readonly=True) as tx:
            ident = IdentityTx(tx)  # type: ignore[arg-type]
            user = ident.user_by_x509(dn)
            if user is None:
                raise AuthFailed(f"no user has the certificate subject {dn}")
            return principal_for(ident, user, self.name)


def method_from_settings(settings: Settings) -> X509Method:
    """The X.509 method trusting the proxies of `x509_proxies`; SettingsError when it names
    none or something that is not an address."""
    proxies = parse_networks(settings.x509_proxies)
    if not proxies:
        raise SettingsError("setting auth lists x509, but x509_proxies names no proxy")
    return X509Method(proxies)


#: the name occi.identity.authn.methods_from_settings looks for
from_settings = method_from_settings
