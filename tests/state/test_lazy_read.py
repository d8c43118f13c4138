"""Reading the local snapshot lazily: records built only when looked at, read as an eager parse.

A no-op plan of a large state looks at no record's applied values, so the snapshot's leads are
a mapping over the file's text (`LayoutLeads`); what a user sees must not change: the same
records, the same errors, and a plan after journaled writes that sees them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import StateError
from reconciler.plan import make_plan
from reconciler.state import LeadRecord, applied_files
from reconciler.state.journal import Leads
from reconciler.state.local import LocalState
from reconciler.state.snapshot_file import LayoutLeads, decode


@pytest.fixture
def path(tmp_path):
    return tmp_path / "state.json"


def _varied(record) -> list[LeadRecord]:
    """Files of one and several leads, applied wholly, in part, at two hashes, or moved."""
    return [
        record(1),
        record(2, file="pair.yaml", source_hash="h2", file_leads=(2, 3), tags=["a,{b}],\n"]),
        record(3, file="pair.yaml", source_hash="h2", file_leads=(2, 3)),
        record(4, file="half.yaml", source_hash="h4", file_leads=(4, 5)),  # 5 never applied
        record(6, file="mixed.yaml", source_hash="h6", file_leads=(6, 7)),
        record(7, file="mixed.yaml", source_hash="h7", file_leads=(6, 7)),  # two hashes
        record(8, file="moved.yaml", source_hash="h8", file_leads=(8, 9)),
        record(9, file="elsewhere.yaml", source_hash="h9", file_leads=(9,)),
        record(10**15, firstName="Zoë 🚀"),
    ]


def _eager(text: str) -> dict[int, LeadRecord]:
    """The records as the full JSON parser reads the same file (pretty-printed, so not lazily)."""
    leads = decode(json.dumps(json.loads(text), indent=2), "x").leads
    assert type(leads) is dict
    return leads


def test_the_lazy_leads_answer_every_question_as_the_eager_reading_does(path, record):
    LocalState(path).write(_varied(record))
    text = path.read_text("utf-8")

    lazy, eager = decode(text, "x").leads, _eager(text)

    assert isinstance(lazy, LayoutLeads)
    assert len(lazy) == len(eager) == 9
    assert sorted(lazy) == sorted(eager)
    assert all(lead_id in lazy for lead_id in eager)
    assert 5 not in lazy and lazy.get(5) is None
    with pytest.raises(KeyError):
        lazy[5]
    assert lazy.get(2) == eager[2] and lazy[2].applied == {"tags": ["a,{b}],\n"]}
    assert dict(lazy) == eager
    assert (
        applied_files(lazy)
        == applied_files(eager)
        == {
            "leads/lead-1.yaml": ("sha256:" + f"{1:064x}", (1,)),
            "pair.yaml": ("h2", (2, 3)),
            "elsewhere.yaml": ("h9", (9,)),
            f"leads/lead-{10**15}.yaml": ("sha256:" + f"{10**15:064x}", (10**15,)),
        }
    )


def test_applied_files_of_a_lazy_state_builds_no_record(path, record, monkeypatch):
    # Guards the no-op plan's speed: building 100,000 records would cost a third of it.
    LocalState(path).write(_varied(record))
    lazy = LocalState(path).read().leads

    def no_record(self, lead_id):
        raise AssertionError(f"record {lead_id} was built")

    monkeypatch.setattr(LayoutLeads, "__getitem__", no_record)
    assert len(applied_files(lazy)) == 4


def test_a_source_listed_twice_by_hand_counts_as_one(path):
    path.write_text(
        '{"version": 2, "lineage": "l", "serial": 1,\n"sources":[\n'
        '["p.yaml","h",[1,2]],\n["p.yaml","h",[1,2]]\n],\n"leads":{\n'
        '"1":[0,{}],\n"2":[1,{}]\n}}\n',
        encoding="utf-8",
    )
    leads = LocalState(path).read().leads

    assert isinstance(leads, LayoutLeads)
    assert applied_files(leads) == applied_files(dict(leads)) == {"p.yaml": ("h", (1, 2))}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('"2":[7,{"firstName":"B"}]', "lead '2' is not [source index, applied values]"),
        ('"02":[1,{"firstName":"B"}]', "lead '02' is not [source index, applied values]"),
        ('"2":[1,{"firstName":"B"]', "not valid JSON"),
        ('"2":[1,["firstName"]]', "lead '2': the applied values are not a JSON object"),
    ],
)
def test_a_malformed_lead_line_is_refused_as_before(path, record, line, says):
    LocalState(path).write([record(1), record(2)])
    text = path.read_text("utf-8")
    path.write_text(text.replace(text.splitlines()[-2], line), encoding="utf-8")

    with pytest.raises(StateError, match="left untouched") as raised:
        LocalState(path).read()
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("edit", "first_name"),
    [
        (lambda text: text.replace('"firstName":"Lead 1"', '"firstName":\n"Lead 1"'), "Lead 1"),
        (lambda text: text.replace('"2":[1,', '"1":[0,{"firstName":"B"}],\n"2":[1,'), "B"),
    ],
    ids=["a newline inside a line", "a leadId twice (the last counts)"],
)
def test_valid_json_off_the_layout_reads_as_json_says(path, record, edit, first_name):
    LocalState(path).write([record(1), record(2)])
    edited = edit(path.read_text("utf-8"))
    path.write_text(edited, encoding="utf-8")

    leads = LocalState(path).read().leads

    assert not isinstance(leads, LayoutLeads)  # the full parser read it
    assert leads == _eager(edited) == {1: record(1, firstName=first_name), 2: record(2)}


def test_journaled_writes_over_a_lazy_snapshot_read_back_and_stay_lazy(path, record):
    LocalState(path).write(_varied(record))
    state = LocalState(path)
    state.write([record(5, file="half.yaml", source_hash="h4", file_leads=(4, 5))], forget=[9])
    state.write([record(1, source_hash="new", firstName="Ann")])

    leads = LocalState(path).read().leads

    assert isinstance(leads, Leads)  # not copied into a dict, which would build every record
    expected = {r.lead_id: r for r in _varied(record) if r.lead_id != 9}
    expected[5] = record(5, file="half.yaml", source_hash="h4", file_leads=(4, 5))
    expected[1] = record(1, source_hash="new", firstName="Ann")
    assert dict(leads) == expected and len(leads) == len(expected)
    assert (
        applied_files(leads)
        == applied_files(expected)
        == {
            "leads/lead-1.yaml": ("new", (1,)),
            "pair.yaml": ("h2", (2, 3)),
            "half.yaml": ("h4", (4, 5)),
            f"leads/lead-{10**15}.yaml": ("sha256:" + f"{10**15:064x}", (10**15,)),
        }
    )
    LocalState(path).compact()
    assert dict(LocalState(path).read().leads) == expected


def _lead(root: Path, name: str, lead_id: int, first_name: str) -> None:
    (root / name).write_text(f"leadId: {lead_id}\nfirstName: {first_name}\n", "utf-8")


def _apply(leads: Path, state: LocalState) -> None:
    plan, _ = make_plan(leads, state.read(), state_name="test")
    records = [c.record for c in plan.changes if c.record is not None]
    state.write([*records, *plan.refresh], forget=[c.lead_id for c in plan.changes if not c.record])


def test_a_plan_after_journaled_writes_compares_with_what_they_wrote(tmp_path, path):
    leads = tmp_path / "leads"
    leads.mkdir()
    for lead_id, name in [(1, "Ann"), (2, "Bob"), (3, "Cy")]:
        _lead(leads, f"lead-{lead_id}.yaml", lead_id, name)
    _apply(leads, LocalState(path))  # the snapshot
    _lead(leads, "lead-2.yaml", 2, "Robert")
    (leads / "lead-3.yaml").unlink()
    _apply(leads, LocalState(path))  # the journal
    assert path.with_name("state.json.journal").exists()

    unchanged, _ = make_plan(leads, LocalState(path).read(), state_name="test")
    assert (unchanged.changes, unchanged.unchanged) == ((), 2)

    _lead(leads, "lead-2.yaml", 2, "Rob")
    _lead(leads, "lead-3.yaml", 3, "Cy")
    plan, _ = make_plan(leads, LocalState(path).read(), state_name="test")
    assert [
        (c.lead_id, c.action, [(f.before, f.after) for f in c.fields]) for c in plan.changes
    ] == [
        (2, "update", [("Robert", "Rob")]),
        (3, "manage", [(None, "Cy")]),
    ]
