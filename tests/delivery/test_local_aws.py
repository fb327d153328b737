"""delivery.local_aws's two savings (its fixes are shown on stock moto in test_smoke_check.py):
a KMS key's key pair generated when first used, moto's service packages listed once."""

from __future__ import annotations

import os

import moto.backends
import moto.kms.models
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from delivery import local_aws
from tests.support.delivery import client


@pytest.fixture
def patched_moto(monkeypatch):
    """moto in this process as the server changes it (undone after the test); the key specs
    moto generated a pair for."""
    for owner, attribute, replacement in local_aws.REPLACEMENTS:
        monkeypatch.setattr(owner, attribute, replacement)
    generated = []
    stock_private_key = local_aws._stock_private_key

    def stock(key_spec):
        generated.append(key_spec)
        return stock_private_key(key_spec)

    monkeypatch.setattr(local_aws, "_stock_private_key", stock)
    return generated


def test_a_key_pair_is_generated_when_first_used(patched_moto):
    key = moto.kms.models.Key(None, "SIGN_VERIFY", "RSA_2048", "signing", "123456789012",
                              "eu-central-1")
    assert patched_moto == []
    signature = key.private_key.sign(b"message", "RSASSA_PSS_SHA_256")
    assert key.private_key.verify(b"message", signature, "RSASSA_PSS_SHA_256")
    assert not key.private_key.verify(b"other message", signature, "RSASSA_PSS_SHA_256")
    public = load_der_public_key(key.private_key.public_key())
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    assert patched_moto == ["RSA_2048"]  # one pair, kept
    moto.kms.models.Key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "backups",
                        "123456789012", "eu-central-1")
    assert patched_moto == ["RSA_2048"]


def test_moto_packages_are_listed_once(patched_moto, monkeypatch):
    packages = tuple(local_aws._stock_moto_modules())
    assert {"s3", "ecs", "kms", "scheduler"} <= set(packages)
    listed = []
    stock_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listed.append(path) or stock_listdir(path))
    local_aws.moto_modules.cache_clear()
    dispatcher = DomainDispatcherApplication(create_backend_app)
    for service in ("s3", "ecs", "kms", "scheduler", "s3"):
        assert dispatcher.get_backend_for_host(service) == service
    assert listed == [os.path.dirname(moto.__file__)]
    assert local_aws.moto_modules() == packages


def test_keys_created_without_their_pair_answer_as_moto_does(moto_url):
    kms = client("kms", moto_url, "eu-central-1")
    symmetric = kms.create_key(Description="a backup key")["KeyMetadata"]
    assert symmetric["KeySpec"] == "SYMMETRIC_DEFAULT"
    ciphertext = kms.encrypt(KeyId=symmetric["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"secret"
    # moto answers GetPublicKey of a symmetric key with an RSA key (AWS refuses it).
    public = load_der_public_key(kms.get_public_key(KeyId=symmetric["KeyId"])["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 2048
    with pytest.raises(ClientError, match="must point to a key with usage: 'SIGN_VERIFY'"):
        kms.sign(KeyId=symmetric["KeyId"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")
    signing = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    signature = kms.sign(KeyId=signing["KeyId"], Message=b"m",
                         SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert kms.verify(KeyId=signing["KeyId"], Message=b"m", Signature=signature,
                      SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
