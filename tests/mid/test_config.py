"""mid.yaml: required keys, relative paths, anchors, token; one clear line per refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SessionPki
from trustcircle._time import system_clock
from trustcircle.errors import BadInputError, LimitExceededError, NotAuthenticatedError
from trustcircle.mid import load_anchors, load_mid_config, read_token

GOOD = """\
instance_url: http://127.0.0.1:8080/
name: mid1
token_file: mid.token
anchors: [ca/root.pem]
notarizers: ["abababababababababababababababababababababababababababababababab"]
instance_name: prod
work_dir: work
log_dir: logs
boot_config: boot-config.yaml
jdbc: {inventory: "sqlite:///inv.db"}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mid.yaml"
    path.write_text(text)
    return path


def test_paths_are_relative_to_the_yaml_file_and_defaults_apply(tmp_path: Path) -> None:
    config = load_mid_config(_write(tmp_path, GOOD))
    base = tmp_path.resolve()
    assert config.instance_url == "http://127.0.0.1:8080"
    assert config.anchors == (base / "ca/root.pem",)
    assert config.token_file == base / "mid.token"
    assert config.work_dir == base / "work"
    assert config.boot_config == base / "boot-config.yaml"
    assert config.agent == "mid.server.mid1"
    assert (config.poll_wait, config.max_batch, config.exec_timeout) == (25.0, 20, 60.0)
    assert config.jdbc == {"inventory": "sqlite:///inv.db"}


def test_missing_key_is_named(tmp_path: Path) -> None:
    text = GOOD.replace("token_file: mid.token\n", "")
    with pytest.raises(BadInputError, match="key token_file is missing") as info:
        load_mid_config(_write(tmp_path, text))
    assert "\n" not in info.value.message


def test_notarizers_are_required_fingerprints(tmp_path: Path) -> None:
    pin = "ab" * 32
    without = GOOD.replace(f'notarizers: ["{pin}"]\n', "")
    with pytest.raises(BadInputError, match="key notarizers is missing"):
        load_mid_config(_write(tmp_path, without))
    with pytest.raises(BadInputError, match="SHA-256 fingerprint"):
        load_mid_config(_write(tmp_path, GOOD.replace(pin, "cm_runtime.pem")))
    assert load_mid_config(_write(tmp_path, GOOD.replace(pin, pin.upper()))).notarizers == (pin,)


def test_misspelt_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="unknown key anchor: check its spelling"):
        load_mid_config(_write(tmp_path, GOOD + "anchor: x.pem\n"))


def test_bad_url_and_bad_poll_wait_are_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="key instance_url"):
        load_mid_config(_write(tmp_path, GOOD.replace("http://127.0.0.1:8080/", "ftp://x")))
    with pytest.raises(BadInputError, match="key poll_wait"):
        load_mid_config(_write(tmp_path, GOOD + "poll_wait: 600\n"))


def test_oversized_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LimitExceededError):
        load_mid_config(_write(tmp_path, GOOD + "#" * 300_000 + "\n"))


def test_anchors_load_and_a_leaf_is_refused_as_anchor(tmp_path: Path, test_pki: SessionPki) -> None:
    text = GOOD.replace("ca/root.pem", str(test_pki.files.root_pem))
    config = load_mid_config(_write(tmp_path, text))
    assert load_anchors(config, test_pki.now) == (test_pki.root,)
    leaf = GOOD.replace("ca/root.pem", str(test_pki.files.cert_pem["code_signing"]))
    with pytest.raises(BadInputError, match="cannot be a trust anchor"):
        load_anchors(load_mid_config(_write(tmp_path, leaf)), test_pki.now)


def test_missing_anchor_file_names_the_key(tmp_path: Path) -> None:
    config = load_mid_config(_write(tmp_path, GOOD))
    with pytest.raises(BadInputError, match=r"does not exist.*key anchors"):
        load_anchors(config, system_clock())


def test_token_is_read_and_empty_token_refused(tmp_path: Path) -> None:
    config = load_mid_config(_write(tmp_path, GOOD))
    (tmp_path / "mid.token").write_text("secret-token\n")
    assert read_token(config) == "secret-token"
    (tmp_path / "mid.token").write_text("\n")
    with pytest.raises(NotAuthenticatedError, match="mid_server"):
        read_token(config)


def test_instance_name_is_pinned_in_the_config(tmp_path: Path) -> None:
    """Never learned from the instance: one answering another name would get its MIDs to
    accept statements meant for that instance."""
    with pytest.raises(BadInputError, match="key instance_name is missing"):
        load_mid_config(_write(tmp_path, GOOD.replace("instance_name: prod\n", "")))
