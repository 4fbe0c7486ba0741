"""Config errors a person can act on: near misses get a suggestion, YAML numbers are told to be
quoted as written, long values are cut."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedkeeper.config import load_config
from fedkeeper.eks_versions import DEFAULT_VERSION
from fedkeeper.errors import ConfigError
from fedkeeper.wording import MAX_SHOWN, closest, did_you_mean, shown
from tests.conftest import EXAMPLE


def errors_of(tmp_path: Path, old: str, new: str) -> list[str]:
    text = EXAMPLE.read_text()
    assert old in text
    path = tmp_path / "federation.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    return exc.value.errors


def test_a_misspelt_required_key_gets_one_line_naming_the_key_it_misspells(
    tmp_path: Path,
) -> None:
    assert errors_of(tmp_path, "\n  vpc:", "\n  vcp:") == [
        "aws.vcp: is not a known key; did you mean vpc? (aws.vpc is required)"
    ]


def test_a_misspelt_optional_key_gets_did_you_mean(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "\n  kubernetes_version:", "\n  kubernetes_verison:")
    assert errors == [
        "eks.kubernetes_verison: is not a known key; did you mean kubernetes_version?"
    ]


def test_an_unknown_key_like_no_other_lists_the_keys_that_belong_there(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "\n  vpc:", "\n  zebra: 1\n  vpc:")
    assert errors == [
        "aws.zebra: is not a known key; remove it (keys here: region, vpc, vpn, cloudtrail)"
    ]


def test_an_unquoted_version_is_told_to_quote_it_as_written(tmp_path: Path) -> None:
    errors = errors_of(
        tmp_path, f'kubernetes_version: "{DEFAULT_VERSION}"', "kubernetes_version: 1.30"
    )
    line = next(
        i for i, t in enumerate(EXAMPLE.read_text().splitlines(), 1) if "kubernetes_version:" in t
    )
    assert errors == [
        f"eks.kubernetes_version: 1.30 is a YAML number (line {line}), not a string; quote it: "
        'kubernetes_version: "1.30"'
    ]


def test_a_yaml_boolean_where_a_string_belongs_is_named_a_boolean(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "cluster_name: onprem", "cluster_name: yes")
    assert errors[0].startswith("onprem.cluster_name: yes is a YAML boolean")
    assert 'quote it: cluster_name: "yes"' in errors[0]


def test_a_long_value_is_cut_in_the_message(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "name: fed-demo", "name: " + "x" * 5000)
    assert len(errors) == 1
    assert len(errors[0]) < 300
    assert "(5,000 characters)" in errors[0] and errors[0].startswith("name: 'xxx")


def test_close_words_are_suggested_and_swapped_letters_come_first() -> None:
    assert closest("vcp", ["region", "vpn", "vpc", "cloudtrail"]) == "vpc"
    assert closest("eu-wst-1", ["eu-west-1", "eu-west-2", "us-west-1"]) == "eu-west-1"
    assert closest("VPC", ["vpc", "vpn"]) == "vpc"


def test_nothing_is_suggested_for_an_unrelated_word() -> None:
    assert closest("zebra", ["region", "vpc", "vpn"]) is None
    assert did_you_mean("zebra", ["region"]) == ""


def test_shown_keeps_short_values_and_cuts_long_ones_saying_their_length() -> None:
    assert shown("vpc") == "'vpc'"
    long = shown("y" * 1000)
    assert len(long) < MAX_SHOWN + 25 and long.endswith("… (1,000 characters)")
