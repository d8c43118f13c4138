"""The local JSON state file: its layout, atomic writes with a backup, and refusing bad files."""

from __future__ import annotations

import json
import os

import pytest

from reconciler.errors import StateError
from reconciler.state import LeadRecord, Snapshot, migrate, open_state
from reconciler.state.local import LocalState
from reconciler.state.snapshot_file import decode_layout


@pytest.fixture
def path(tmp_path):
    return tmp_path / "nested" / "state.json"


def test_the_file_is_json_with_a_version_lineage_serial_and_one_line_per_lead(path, record):
    state = LocalState(path)
    state.write([record(7, tags=["vip"]), record(8, file="leads/b.yaml", file_leads=(8, 9))])

    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    assert document["version"] == 2
    assert document["serial"] == 1
    assert document["lineage"] == state.read().lineage
    assert document["sources"][document["leads"]["7"][0]] == [
        "leads/lead-7.yaml",
        f"sha256:{7:064x}",
        [7],
    ]
    assert document["leads"]["7"][1] == {"tags": ["vip"]}
    assert '\n"7":[' in text and '\n"8":[' in text  # a lead per line keeps diffs small


def test_a_write_after_the_first_is_one_line_appended_to_the_journal(path, record):
    state = LocalState(path)
    state.write([record(1)])
    snapshot = path.read_bytes()

    assert state.write([record(2, tags=["vip"])], forget=[1]) == 2

    assert path.read_bytes() == snapshot  # the snapshot is not rewritten
    lineage = state.read().lineage
    assert path.with_name("state.json.journal").read_text("utf-8") == (
        f'{{"serial":2,"lineage":"{lineage}","records":[[2,"leads/lead-2.yaml",'
        f'"sha256:{2:064x}",[2],{{"tags":["vip"]}}]],"forget":[1]}}\n'
    )
    assert LocalState(path).read() == state.read()
    assert LocalState(path).read().leads == {2: record(2, tags=["vip"])}


def test_folding_keeps_the_previous_snapshot_as_the_backup_and_it_with_the_journal_is_current(
    path, record
):
    state = LocalState(path)
    state.write([record(1)])
    first = path.read_bytes()
    state.write([record(2)])
    state.write([record(3)])

    state.compact()

    assert path.with_name("state.json.backup").read_bytes() == first
    current = LocalState(path).read()
    assert (current.serial, set(current.leads)) == (3, {1, 2, 3})
    # The snapshot lost: the backup and the journal still make the current state.
    path.write_bytes(first)
    assert LocalState(path).read() == current


def test_the_journal_is_folded_once_it_outgrows_its_share_of_the_snapshot(
    path, record, monkeypatch
):
    monkeypatch.setattr("reconciler.state.local.FOLD_MIN_BYTES", 400)
    state = LocalState(path)
    state.write([record(1)])
    snapshots = {path.read_bytes()}
    for lead_id in range(2, 12):
        state.write([record(lead_id)])
        snapshots.add(path.read_bytes())

    assert 2 <= len(snapshots) <= 6  # folded now and then, not on every write
    journal = path.with_name("state.json.journal").stat().st_size
    assert journal < 2 * 400 + 200
    assert LocalState(path).read() == state.read()
    assert sorted(LocalState(path).read().leads) == list(range(1, 12))


def test_an_append_cut_short_by_a_crash_is_not_part_of_the_state_and_is_cut_by_the_next_write(
    path, record
):
    state = LocalState(path)
    state.write([record(1)])
    state.write([record(2)])
    journal = path.with_name("state.json.journal")
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"serial":3,"lineage":"x","records":[[3,"le')

    assert set(LocalState(path).read().leads) == {1, 2}
    assert LocalState(path).write([record(4)]) == 3
    assert journal.read_bytes().startswith(whole)
    assert set(LocalState(path).read().leads) == {1, 2, 4}


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (b"garbage\n", "entry 2 does not start with a serial"),
        (b'{"serial":5,"lineage":"LINEAGE","records":[],"forget":[]}\n', "serial 5, expected 3"),
        (b'{"serial":3,"lineage":"0000","records":[],"forget":[]}\n', "another lineage"),
        (b'{"serial":3,"lineage":"LINEAGE","records":[[1]],"forget":[]}\n', "entry 2"),
    ],
)
def test_a_corrupt_journal_is_an_error_and_is_never_overwritten(path, record, entry, says):
    state = LocalState(path)
    state.write([record(1)])
    state.write([record(2)])
    journal = path.with_name("state.json.journal")
    lineage = state.read().lineage
    assert lineage is not None
    content = journal.read_bytes() + entry.replace(b"LINEAGE", lineage.encode())
    journal.write_bytes(content)
    snapshot = path.read_bytes()

    with pytest.raises(StateError) as raised:
        LocalState(path).read()
    with pytest.raises(StateError):
        LocalState(path).write([record(3)])

    assert journal.read_bytes() == content and path.read_bytes() == snapshot
    assert says in str(raised.value) and "left untouched" in str(raised.value)


def test_a_journal_without_its_snapshot_is_an_error(path, record):
    state = LocalState(path)
    state.write([record(1)])
    state.write([record(2)])
    path.unlink()

    with pytest.raises(StateError, match="missing but its journal.*left untouched"):
        LocalState(path).write([record(3)])
    assert not path.exists()


def test_a_version_1_file_is_read_and_written_on(path, record):
    path.parent.mkdir()
    path.write_text(
        '{"version": 1, "lineage": "6f1c7d52-0000-4000-8000-000000000000", "serial": 4,\n'
        '"sources":[\n["leads/a.yaml","9f2c",[1]]\n],\n"leads":{\n'
        '"1":[0,{"firstName":"Ann"}]\n}}\n',
        "utf-8",
    )
    state = LocalState(path)
    assert state.read().leads == {
        1: LeadRecord(1, "leads/a.yaml", "9f2c", (1,), '{"firstName":"Ann"}')
    }

    assert state.write([record(2)]) == 5
    assert set(LocalState(path).read().leads) == {1, 2}


def test_replace_all_over_a_journal_leaves_exactly_the_new_state(path, record):
    state = LocalState(path)
    state.write([record(1)])
    state.write([record(2)])
    replacement = Snapshot("6f1c7d52-0000-4000-8000-000000000000", 9, {3: record(3)})

    state.replace_all(replacement)

    assert LocalState(path).read() == replacement
    assert not path.with_name("state.json.journal").exists()
    assert LocalState(path).write([record(4)]) == 10


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
    LocalState(path).compact()

    fast = decode_layout(path.read_text(encoding="utf-8"))
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
    content = b'{"version": 3, "lineage": "x", "serial": 5, "everything": "new"}'
    path.write_bytes(content)

    with pytest.raises(StateError, match="format version 3.*left untouched"):
        LocalState(path).read()
    with pytest.raises(StateError, match="format version 3"):
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
    LocalState(tmp_path / "a.json").compact()  # the source's last write is in its journal
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
