"""Minting from Python: signing keys from a seed, fresh, or from a sealed key
file (keyseal-keyfile, the issuer's own key-file code), and issue()
round-trips through the Validator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import keyseal
from conftest import HERE, NOW, utc

KEY_FILE = HERE / "data" / "test.key"
PASSPHRASE = "correct horse battery staple"


def test_generate_gives_distinct_keys_and_secrets_do_not_print() -> None:
    a, b = keyseal.SigningKey.generate(), keyseal.SigningKey.generate()
    assert a.key_id != b.key_id
    assert a.public_key.startswith("kspub1.") and len(a.public_key_bytes) == 32
    assert "redacted" in repr(a) and a.key_id in repr(a)
    assert not hasattr(a, "seed") and not hasattr(a, "to_seed")


def test_from_key_file() -> None:
    key = keyseal.SigningKey.from_key_file(KEY_FILE, PASSPHRASE)
    assert key.key_id == "7cba3005a027729e"
    assert key.public_key_bytes == keyseal.SigningKey.from_seed(bytes([7] * 32)).public_key_bytes
    assert keyseal.SigningKey.from_key_file(str(KEY_FILE), PASSPHRASE).key_id == key.key_id
    # The earlier name of the same call.
    assert keyseal.SigningKey.from_vault(KEY_FILE, PASSPHRASE).key_id == key.key_id


def test_from_vault_failures(tmp_path: Path) -> None:
    with pytest.raises(keyseal.WrongPassphrase) as info:
        keyseal.SigningKey.from_vault(KEY_FILE, "wrong")
    assert isinstance(info.value, keyseal.VaultError) and info.value.code == "wrong_passphrase"
    with pytest.raises(ValueError):
        keyseal.SigningKey.from_vault(KEY_FILE, "")
    with pytest.raises(FileNotFoundError):
        keyseal.SigningKey.from_vault(tmp_path / "missing.key", PASSPHRASE)
    damaged = tmp_path / "damaged.key"
    damaged.write_text(KEY_FILE.read_text().replace("keyseal-signing-key/v1", "other/v9"))
    with pytest.raises(keyseal.VaultError) as vinfo:
        keyseal.SigningKey.from_vault(damaged, PASSPHRASE)
    assert vinfo.value.code == "vault"
    not_json = tmp_path / "x.key"
    not_json.write_text("{")
    with pytest.raises(keyseal.VaultError):
        keyseal.SigningKey.from_vault(not_json, PASSPHRASE)
    with pytest.raises(keyseal.VaultError) as dinfo:  # a directory: no ledger is read
        keyseal.SigningKey.from_key_file(tmp_path, PASSPHRASE)
    assert "export-sealed" in str(dinfo.value)


def test_a_vaults_key_exported_sealed_opens(tmp_path: Path) -> None:
    """A vault made by the keyseal CLI (scripts/test.sh points KEYSEAL_CLI
    at the binary when the Rust step built it): its active key, exported
    still sealed, opens here; the vault directory itself is refused."""
    cli = os.environ.get("KEYSEAL_CLI") or shutil.which("keyseal")
    if not cli or not Path(cli).is_file():
        pytest.skip("no keyseal CLI binary (set KEYSEAL_CLI) to make a vault with")
    vault, exported = tmp_path / "vault", tmp_path / "signing.key"
    env = dict(os.environ, KEYSEAL_PASSPHRASE=PASSPHRASE)
    subprocess.run([cli, "--vault", str(vault), "init", "--product", "acme-cad"],
                   check=True, env=env, capture_output=True, timeout=120)
    subprocess.run([cli, "--vault", str(vault), "keys", "export-sealed", "--out", str(exported)],
                   check=True, env=env, capture_output=True, timeout=120)
    assert exported.stat().st_mode & 0o077 == 0  # readable by its owner only
    key = keyseal.SigningKey.from_key_file(exported, PASSPHRASE)
    listed = subprocess.run([cli, "--vault", str(vault), "--json", "keys", "list"],
                            check=True, env=env, capture_output=True, timeout=120)
    active = [k["key_id"] for k in json.loads(listed.stdout) if k["status"] == "active"]
    assert active == [key.key_id]
    with pytest.raises(keyseal.WrongPassphrase):
        keyseal.SigningKey.from_key_file(exported, "wrong")
    with pytest.raises(keyseal.VaultError):
        keyseal.SigningKey.from_vault(vault, PASSPHRASE)
    # A key file is never overwritten.
    again = subprocess.run([cli, "--vault", str(vault), "keys", "export-sealed", "--out", str(exported)],
                           env=env, capture_output=True, timeout=120)
    assert again.returncode != 0 and b"exists" in again.stderr


def test_webhook_mint_then_validate() -> None:
    key = keyseal.SigningKey.from_key_file(KEY_FILE, PASSPHRASE)
    text = keyseal.issue(
        key,
        product="acme-cad",
        customer="cus_42",
        plan="team",
        issued_at=utc(NOW),
        expires=utc(NOW) + timedelta(days=365),
        not_before=utc(NOW) - timedelta(hours=1),
        grace=timedelta(days=14),
        entitlements={"sso", "export-pdf"},
        extensions={"seats": "10", "region": "eu"},
        max_version="5.2.x",
    )
    assert text.startswith("ks1.")
    v = keyseal.Validator(key.keyring_line(), "acme-cad", app_version="5.2.9", device=None,
                          clock=lambda: NOW, state=keyseal.MemoryStateStore())
    lic = v.validate(text)
    assert lic.entitlements == {"sso", "export-pdf"}
    assert lic.extensions == {"region": "eu", "seats": "10"} and lic.extension("seats") == "10"
    assert lic.max_version == "5.2.x" and lic.grace == timedelta(days=14)
    assert lic.not_before == utc(NOW - 3600) and lic.expires_at == utc(NOW + 365 * 86_400)
    assert len(lic.id) == 32
    with pytest.raises(keyseal.VersionNotCovered):
        keyseal.Validator(key.keyring_line(), "acme-cad", app_version="5.3.0", device=None,
                          clock=lambda: NOW, state=keyseal.MemoryStateStore()).validate(text)
    with pytest.raises(keyseal.UnknownKey) as info:
        keyseal.Validator(keyseal.SigningKey.generate().keyring_line(), "acme-cad", device=None,
                          clock=lambda: NOW, state=keyseal.MemoryStateStore()).validate(text)
    assert info.value.key_id == key.key_id


def test_random_license_ids_and_default_issue_time() -> None:
    key = keyseal.SigningKey.generate()
    before = datetime.now(timezone.utc).replace(microsecond=0)
    a = keyseal.issue(key, product="acme-cad", customer="c", plan="p")
    b = keyseal.issue(key, product="acme-cad", customer="c", plan="p")
    v = keyseal.Validator(key.keyring_line(), "acme-cad", device=None, state=keyseal.MemoryStateStore())
    la, lb = v.validate(a), v.validate(b)
    assert la.id != lb.id
    assert la.issued_at >= before and la.expires_at is None
