"""Field ownership in reconciler.yaml: policies by dotted path, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import InvalidLeadFilesError
from reconciler.ownership import Ownership, load_ownership


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reconciler.yaml"
    path.write_text(text)
    return path


def test_policies_by_field_with_nested_keys_taking_their_objects_policy(tmp_path: Path) -> None:
    owned = load_ownership(
        config(
            tmp_path, "fields:\n  stage: enforce\n  inquiry: initial\n  inquiry.priceMax: shared\n"
        )
    )
    assert owned.policy("stage") == "enforce"
    assert owned.policy("inquiry.priceMin") == "initial"  # from its object
    assert owned.policy("inquiry.priceMax") == "shared"  # its own
    assert owned.policy("firstName") == "shared"  # not listed
    assert owned.source == str(tmp_path / "reconciler.yaml")


def test_no_config_file_means_every_field_is_shared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_ownership(None) == Ownership()
    assert Ownership().policy("tags") == "shared"


def test_reconciler_yaml_in_the_working_folder_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config(tmp_path, "fields:\n  tags: enforce\n")
    monkeypatch.chdir(tmp_path)
    assert load_ownership(None).policy("tags") == "enforce"


def test_every_unknown_field_or_policy_is_reported_with_its_line(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        "fields:\n"
        "  stage: enforce\n"
        "  stagee: shared\n"
        "  inquiry.prceMin: initial\n"
        "  tags: always\n"
        "  firstName.first: shared\n"
        "  leadId: enforce\n",
    )
    with pytest.raises(InvalidLeadFilesError) as raised:
        load_ownership(path)
    shown = [str(p) for p in raised.value.problems]
    where = str(path)
    assert shown == [
        f"{where}:3: stagee: unknown field: 'stagee' is not a field of a lead; "
        "did you mean 'stage'?",
        f"{where}:4: inquiry.prceMin: unknown field: 'prceMin' is not a field of inquiry; "
        "did you mean 'priceMin'?",
        f"{where}:5: tags: unknown policy 'always'; use one of shared, enforce, initial",
        f"{where}:6: firstName.first: firstName has no keys to own separately",
        f"{where}:7: leadId: unknown field: 'leadId' is not a field of a lead",
    ]


def test_a_config_given_explicitly_must_exist_and_be_a_regular_file(tmp_path: Path) -> None:
    import os

    with pytest.raises(InvalidLeadFilesError, match="cannot read the config"):
        load_ownership(tmp_path / "missing.yaml")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InvalidLeadFilesError, match="not a regular file"):
        load_ownership(fifo)
