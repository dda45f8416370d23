"""EC2 key pairs: SSH public keys the project keeps by name (CreateKeyPair makes the pair and
answers the private key once; ImportKeyPair takes an OpenSSH public key). RunInstances hands
the public key to the compute as OCCI's ssh_key mixin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from occi.ec2 import ids
from occi.ec2.actions import lists
from occi.ec2.errors import Ec2Error, invalid
from occi.ec2.front import Action, Call
from occi.service.ec2_records import KeyPair

_NAME = re.compile(r"[\x20-\x7e]{1,255}")
KEY_TYPES = ("rsa", "ed25519")


def _name(call: Call) -> str:
    name = call.params.required("KeyName")
    if not _NAME.fullmatch(name):
        raise invalid("a key pair's name is 1 to 255 ASCII characters")
    return name


def _colons(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def _fingerprint(public: Any) -> str:
    """AWS's: the MD5 of the DER public key for RSA, the SHA-256 (Base64) of the OpenSSH
    key's blob for ed25519."""
    if isinstance(public, rsa.RSAPublicKey):
        der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return _colons(hashlib.md5(der).digest())  # noqa: S324 - AWS's fingerprint, not a MAC
    blob = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    raw = base64.b64decode(blob.split()[1])
    return base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def _openssh(public: Any) -> str:
    return public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def _store(call: Call, pair: KeyPair, tags: list[tuple[str, str]]) -> None:
    if not call.records.add_keypair(call.ctx, pair, tags):
        raise Ec2Error("InvalidKeyPair.Duplicate", f"The keypair '{pair.name}' already exists.")


def _tags(call: Call) -> list[tuple[str, str]]:
    from occi.ec2.actions.instances import tag_specs

    return tag_specs(call, "key-pair")


def create_key_pair(call: Call) -> dict[str, Any]:
    name = _name(call)
    key_type = call.params.get("KeyType") or "rsa"
    if key_type not in KEY_TYPES:
        raise invalid(f"KeyType must be rsa or ed25519, not {key_type[:40]!r}")
    key_format = call.params.get("KeyFormat") or "pem"
    if key_format != "pem":
        raise invalid("this server makes key pairs in the pem format only")
    tags = _tags(call)
    call.service.authorize(call.ctx, "create")
    private: Any
    if key_type == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        material = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        material = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    public = private.public_key()
    pair = KeyPair(
        ids.random_id("key-"),
        name,
        _fingerprint(public),
        key_type,
        _openssh(public),
        datetime.now(UTC),
    )
    _store(call, pair, tags)
    return {
        "keyName": name,
        "keyFingerprint": pair.fingerprint,
        "keyMaterial": material.decode(),
        "keyPairId": pair.id,
        "tagSet": lists.tag_set(dict(tags)),
    }


def import_key_pair(call: Call) -> dict[str, Any]:
    name = _name(call)
    encoded = call.params.required("PublicKeyMaterial")
    if encoded.startswith(("ssh-", "ecdsa-")):
        text = encoded.encode()  # sent as it is by a hand-made request, not Base64 as the SDKs do
    else:
        try:
            text = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("PublicKeyMaterial must be Base64 (the SDKs encode it)") from None
    try:
        public = serialization.load_ssh_public_key(text.strip())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise invalid(
            "Key is not in valid OpenSSH public key format (ssh-rsa or ssh-ed25519 AAAA...)"
        ) from None
    if isinstance(public, rsa.RSAPublicKey):
        key_type = "rsa"
    elif isinstance(public, ed25519.Ed25519PublicKey):
        key_type = "ed25519"
    else:
        raise invalid("only RSA and ed25519 keys are accepted")
    tags = _tags(call)
    pair = KeyPair(
        ids.random_id("key-"),
        name,
        _fingerprint(public),
        key_type,
        _openssh(public),
        datetime.now(UTC),
    )
    _store(call, pair, tags)
    return {
        "keyFingerprint": pair.fingerprint,
        "keyName": name,
        "keyPairId": pair.id,
        "tagSet": lists.tag_set(dict(tags)),
    }


def describe_key_pairs(call: Call) -> dict[str, Any]:
    names = call.params.listed("KeyName")
    pair_ids = call.params.listed("KeyPairId")
    pairs = call.records.keypairs(call.ctx)
    tags = call.records.tags(call.ctx, [p.id for p in pairs])
    for wanted, have in ((names, {p.name for p in pairs}), (pair_ids, {p.id for p in pairs})):
        missing = [w for w in wanted if w not in have]
        if missing:
            raise Ec2Error(
                "InvalidKeyPair.NotFound", f"The key pair '{missing[0][:80]}' does not exist"
            )
    chosen = [
        p for p in pairs if (not names or p.name in names) and (not pair_ids or p.id in pair_ids)
    ]
    with_public = call.params.flag("IncludePublicKey")
    items: list[dict[str, Any]] = [
        {
            "keyPairId": p.id,
            "keyFingerprint": p.fingerprint,
            "keyName": p.name,
            "keyType": p.key_type,
            "tagSet": lists.tag_set(tags.get(p.id)),
            "publicKey": p.public_key if with_public else None,
            "createTime": p.created_at,
        }
        for p in chosen
    ]
    items = lists.apply_filters(
        items,
        call.params.filters(),
        {
            "key-name": lambda k: k["keyName"],
            "key-pair-id": lambda k: k["keyPairId"],
            "fingerprint": lambda k: k["keyFingerprint"],
            "key-type": lambda k: k["keyType"],
        },
        lambda k: {t["key"]: t["value"] for t in k["tagSet"]},
    )
    return {"keySet": items}


def delete_key_pair(call: Call) -> dict[str, Any]:
    """EC2 answers true whether the pair existed or not."""
    name = call.params.get("KeyName")
    pair_id = call.params.get("KeyPairId")
    if not name and not pair_id:
        raise Ec2Error("MissingParameter", "The request must contain the parameter KeyName")
    call.records.delete_keypairs(call.ctx, name, pair_id)
    return {"return": True}


ACTIONS = {
    "CreateKeyPair": Action(create_key_pair, "keypair", "create"),
    "ImportKeyPair": Action(import_key_pair, "keypair", "create"),
    "DescribeKeyPairs": Action(describe_key_pairs, "keypair", "read"),
    "DeleteKeyPair": Action(delete_key_pair, "keypair", "delete"),
}
