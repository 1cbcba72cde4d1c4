"""Keys: generation, files with mode 0600, no secret in any text or pickle."""

from __future__ import annotations

import os
import pickle
import stat

import pytest

import pi_match


def test_generate_save_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = pi_match.Key.generate()
    assert len(key.id) == 16 and int(key.id, 16) >= 0
    assert key != pi_match.Key.generate()
    path = tmp_path / "agency.key"
    key.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert pi_match.Key.load(path) == key
    with pytest.raises(FileExistsError, match="overwrite=True"):
        key.save(path)
    other = pi_match.Key.generate()
    other.save(path, overwrite=True)
    assert pi_match.Key.load(path) == other
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_secret_never_shown(test_key: pi_match.Key) -> None:
    secret_hex = bytes(range(32)).hex()
    for text in (repr(test_key), str(test_key), f"{test_key}"):
        assert secret_hex[:16] not in text and test_key.id in text
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(test_key)


def test_key_id_is_published_and_not_a_plain_hash(test_key: pi_match.Key, data_dir) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    assert test_key.id == (data_dir / "format_v1" / "test_key_id.txt").read_text().strip()
    assert test_key.id not in hashlib.sha256(bytes(range(32))).hexdigest()


def test_bad_key_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "k"
    p.write_text("hello")
    os.chmod(p, 0o600)
    with pytest.raises(pi_match.PiMatchError, match="not a pi_match key file"):
        pi_match.Key.load(p)
    p.write_text("pi_match-key-v1:" + "ab" * 31)
    with pytest.raises(pi_match.PiMatchError, match="damaged") as e:
        pi_match.Key.load(p)
    assert "abab" not in str(e.value)
    with pytest.raises(FileNotFoundError):
        pi_match.Key.load(tmp_path / "missing.key")
    with pytest.raises(pi_match.PiMatchError, match="32 bytes"):
        pi_match.Key.from_bytes(b"short")


def test_world_readable_key_warns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "k"
    pi_match.Key.generate().save(p)
    os.chmod(p, 0o644)
    with pytest.warns(pi_match.InsecureKeyFileWarning, match="chmod 600"):
        pi_match.Key.load(p)
