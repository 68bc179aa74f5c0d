"""Every setting a deployment passes as a secret file (<NAME>_FILE) is read from that file,
lists included (earlier encryption keys, during a key rotation)."""

from __future__ import annotations

from studio.env import env_list, env_str


def test_a_list_setting_is_read_from_its_file(tmp_path, monkeypatch):
    keys = tmp_path / "retired"
    keys.write_text("old-key-1, old-key-2\n")
    monkeypatch.setenv("FLOWGATE_RETIRED_ENCRYPTION_KEYS_FILE", str(keys))
    monkeypatch.delenv("FLOWGATE_RETIRED_ENCRYPTION_KEYS", raising=False)
    assert env_list("FLOWGATE_RETIRED_ENCRYPTION_KEYS", []) == ["old-key-1", "old-key-2"]


def test_a_file_wins_over_the_variable_and_defaults_still_apply(tmp_path, monkeypatch):
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    monkeypatch.setenv("SECRET_KEY", "from-variable")
    assert env_str("SECRET_KEY") == "from-file"
    monkeypatch.delenv("ALLOWED_HOSTS", raising=False)
    monkeypatch.delenv("ALLOWED_HOSTS_FILE", raising=False)
    assert env_list("ALLOWED_HOSTS", ["localhost"]) == ["localhost"]
