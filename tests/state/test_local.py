"""The local JSON state file: its layout, atomic writes with a backup, and refusing bad files."""

from __future__ import annotations

import json
import os

import pytest

from reconciler.errors import StateError
from reconciler.state import Snapshot, migrate, open_state
from reconciler.state.local import LocalState, _decode_layout


@pytest.fixture
def path(tmp_path):
    return tmp_path / "nested" / "state.json"


def test_the_file_is_json_with_a_version_lineage_serial_and_one_line_per_lead(path, record):
    state = LocalState(path)
    state.write([record(7, tags=["vip"]), record(8, file="leads/b.yaml", file_leads=(8, 9))])

    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    assert document["version"] == 1
    assert document["serial"] == 1
    assert document["lineage"] == state.read().lineage
    assert document["sources"][document["leads"]["7"][0]] == [
        "leads/lead-7.yaml",
        f"sha256:{7:064x}",
        [7],
    ]
    assert document["leads"]["7"][1] == {"tags": ["vip"]}
    assert '\n"7":[' in text and '\n"8":[' in text  # a lead per line keeps diffs small


def test_the_previous_version_is_kept_as_the_backup(path, record):
    state = LocalState(path)
    state.write([record(1)])
    first = path.read_bytes()
    state.write([record(2)])
    second = path.read_bytes()
    assert path.with_name("state.json.backup").read_bytes() == first

    state.write(forget=[1])

    assert path.with_name("state.json.backup").read_bytes() == second
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json", "state.json.backup"]


def test_unusual_paths_and_values_survive_a_round_trip(path, record):
    records = [
        record(1, file='leads/"odd"\\name\n.yaml', firstName="Zoë 🚀", note="line\u2028sep"),
        record(2, file="leads/ünïcode.yaml", source_hash="sha256:ff", file_leads=(2, 3)),
        record(3, file="leads/ünïcode.yaml", source_hash="sha256:ff", file_leads=(2, 3)),
    ]
    LocalState(path).write(records)

    assert LocalState(path).read().leads == {r.lead_id: r for r in records}


def test_everything_the_writer_emits_is_read_by_the_fast_reader(path, record):
    # Guards loading speed: a layout the line reader rejects would silently use the full
    # JSON parser, several times slower on a large state.
    records = [
        record(1, file='a "quoted"\\path\n.yaml', firstName="x,{y}],\n", tags=[",{", "}]"]),
        record(2, file="leads/ünïcode.yaml", source_hash="", file_leads=(2, 10**15)),
        record(3, lastName="\u2028"),
    ]
    LocalState(path).write(records)
    LocalState(path).write(forget=[3])

    fast = _decode_layout(path.read_text(encoding="utf-8"))
    assert fast is not None
    assert fast.leads == {1: records[0], 2: records[1]}


def test_a_lone_surrogate_from_yaml_is_written_escaped_and_reads_back_equal(path, record):
    written = record(1, firstName="a\ud800b")
    LocalState(path).write([written])

    assert LocalState(path).read().leads[1].applied == {"firstName": "a\ud800b"}


def test_a_file_reformatted_by_hand_still_reads_and_the_next_write_restores_the_layout(
    path, record
):
    state = LocalState(path)
    state.write([record(1, firstName="Ann"), record(2)])
    compact = path.read_text(encoding="utf-8")
    expected = LocalState(path).read()
    path.write_text(json.dumps(json.loads(compact), indent=4), encoding="utf-8")

    assert LocalState(path).read() == expected
    LocalState(path).replace_all(expected)
    assert path.read_text(encoding="utf-8") == compact


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"version": 1, "lineage": "x", "serial": 3, "sources": [', "not valid JSON"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (
            b'{"version": 1, "lineage": "x", "serial": 1, "sources": [], "leads": {"1": [0, {}]}}',
            "lead '1'",
        ),
        (b'{"version": 1, "lineage": "x", "serial": 0, "sources": [], "leads": {}}', "serial"),
    ],
)
def test_a_corrupt_file_is_an_error_and_is_never_overwritten(path, record, content, says):
    path.parent.mkdir()
    path.write_bytes(content)

    with pytest.raises(StateError) as raised:
        LocalState(path).read()
    with pytest.raises(StateError):
        LocalState(path).write([record(1)])
    with pytest.raises(StateError):
        LocalState(path).replace_all(Snapshot("x", 1, {}))

    assert path.read_bytes() == content
    assert not path.with_name("state.json.backup").exists()
    message = str(raised.value)
    assert str(path) in message and "left untouched" in message and says in message


def test_a_truncated_file_is_an_error(path, record):
    state = LocalState(path)
    state.write([record(1), record(2)])
    content = path.read_bytes()[:-20]
    path.write_bytes(content)

    with pytest.raises(StateError, match="left untouched"):
        LocalState(path).write([record(3)])
    assert path.read_bytes() == content


def test_a_file_of_an_unknown_version_is_an_error_and_is_never_overwritten(path, record):
    path.parent.mkdir()
    content = b'{"version": 2, "lineage": "x", "serial": 5, "everything": "new"}'
    path.write_bytes(content)

    with pytest.raises(StateError, match="format version 2.*left untouched"):
        LocalState(path).read()
    with pytest.raises(StateError, match="format version 2"):
        LocalState(path).write([record(1)])
    assert path.read_bytes() == content


def test_a_state_that_cannot_be_read_is_an_error(tmp_path):
    (tmp_path / "state.json").mkdir()

    with pytest.raises(StateError, match="cannot read state"):
        LocalState(tmp_path / "state.json").read()


def test_another_writer_between_two_writes_is_seen(path, record):
    first, second = LocalState(path), LocalState(path)
    first.write([record(1)])
    second.write([record(2)])

    assert first.write([record(3)]) == 3
    assert set(LocalState(path).read().leads) == {1, 2, 3}


def test_the_lock_holder_file_exists_only_while_the_lock_is_held(path):
    state = LocalState(path)
    with state.lock(timeout=0):
        holder = json.loads(path.with_name("state.json.lock.info").read_text())
        assert holder["pid"] == os.getpid()
    assert not path.with_name("state.json.lock.info").exists()


# --- migrate ---------------------------------------------------------------------------------


def test_migrate_copies_lineage_serial_and_records_exactly(tmp_path, record):
    source = open_state(str(tmp_path / "a.json"), env={})
    source.write([record(1)])
    source.write([record(2)])
    destination = open_state(str(tmp_path / "b" / "b.json"), env={})

    copied = migrate(source, destination)

    assert destination.read() == copied == source.read()
    assert (tmp_path / "b" / "b.json").read_bytes() == (tmp_path / "a.json").read_bytes()


def test_migrate_refuses_to_replace_another_lineage_unless_forced(tmp_path, record):
    source, destination = LocalState(tmp_path / "a.json"), LocalState(tmp_path / "b.json")
    source.write([record(1)])
    destination.write([record(2)])
    theirs = destination.read()

    with pytest.raises(StateError, match="another lineage.*--force"):
        migrate(source, destination)
    assert LocalState(tmp_path / "b.json").read() == theirs

    migrate(source, destination, force=True)
    assert LocalState(tmp_path / "b.json").read() == source.read()


def test_migrate_refuses_to_go_back_to_an_older_serial_unless_forced(tmp_path, record):
    source, destination = LocalState(tmp_path / "a.json"), LocalState(tmp_path / "b.json")
    source.write([record(1)])
    migrate(source, destination)
    destination.write([record(2)])

    with pytest.raises(StateError, match="is newer.*serial 2.*serial 1"):
        migrate(source, destination)
    assert destination.read().serial == 2


def test_migrate_of_an_empty_state_is_refused(tmp_path):
    with pytest.raises(StateError, match="empty"):
        migrate(LocalState(tmp_path / "none.json"), LocalState(tmp_path / "b.json"))
    assert not (tmp_path / "b.json").exists()
