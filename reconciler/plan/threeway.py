"""Deciding one lead: the file (D), the last-applied state (B) and, when read, Lofty (L).

Per managed field — a top-level field, or a key of a nested object (`inquiry.priceMin`):

| case | meaning | plan |
|---|---|---|
| D != B, L = B | a change made in git | send it |
| D != B, L = D | already so in Lofty | no call; the state takes D |
| D = B, L != B | drift: edited in Lofty | by the field's policy: kept and reported, or reverted |
| D != B, L != B, L != D | conflict: both changed | the lead is not sent |

and by the field's policy (`reconciler.yaml`): `shared` as above; `enforce` — the file wins, so
drift is reverted and a both-changed field is sent, never a conflict; `initial` — sent when the
lead comes under management, then never compared or sent again.

A PUT overwrites more than the fields that changed: a nested object goes whole and some fields
travel together (`TRAVEL_TOGETHER`). A field sent that way which was edited in Lofty since the
last apply is a conflict too. Without L (an offline plan, or a field Lofty never shows) only
D and B are compared, as before reading Lofty was possible.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.live import LiveLead
from reconciler.model import KEYED_PATHS, OWNERSHIP_FIELDS, PROPERTY_ADDRESS_FIELDS, TAG_FIELDS
from reconciler.ownership import Ownership, Policy
from reconciler.plan.result import Conflict, ConflictAction, Drift, DriftAction

# Fields sent together when any of them is sent. `tags` replaces the whole tag set in Lofty:
# sent alone it would drop the tagsAdd names. Lofty reads ownershipId in the light of
# ownershipScope: either sent alone is refused (OFFICE/PERSONAL need the id) or misread.
TRAVEL_TOGETHER = (TAG_FIELDS, frozenset(OWNERSHIP_FIELDS))
# Keys that say which record a nested object is (Lofty finds a property by id, else address):
# they go with the object even when their policy would hold them back.
_IDENTITY = {"property": frozenset({"id", *PROPERTY_ADDRESS_FIELDS})}


class _Missing:
    """A value absent on one side; shown as null."""

    def __repr__(self) -> str:
        return "<absent>"


MISSING: Any = _Missing()


@dataclass
class Decision:
    """How one lead is planned: its body, and what the plan says about its fields."""

    body: dict[str, Any] = field(default_factory=dict)
    converged: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # `initial` fields the file changed, not sent
    drift: list[Drift] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        """Whether the lead needs anything beyond its two-way field changes."""
        return bool(self.body or self.converged or self.conflicts)


def decide(
    *,
    lead_id: int,
    file: str,
    desired: Mapping[str, Any],
    compared: Mapping[str, Any],
    applied: Mapping[str, Any] | None,
    live: LiveLead | None,
    ownership: Ownership,
    force: bool = False,
) -> Decision:
    """Decide one lead. `desired` are the file's effective values (what a body holds),
    `compared` the same in comparable form (D), `applied` the last-applied values (B; None for
    a lead coming under management), `live` Lofty's (L; None when not read)."""
    decision = Decision()
    send: set[str] = set()
    for path in _paths(compared):
        d = value_at(compared, path)
        b = MISSING if applied is None else _base(path, value_at(applied, path), d)
        policy = ownership.policy(path)
        readable = live is not None and not _unreadable(live, path)
        lv = value_at(live.values, path) if live is not None and readable else MISSING
        if applied is None:  # coming under management: everything, `initial` included
            if readable and lv == d:
                decision.converged.append(path)
            else:
                send.add(path)
            continue
        changed = d != b
        if policy == "initial":
            if changed:
                decision.held.append(path)
            continue
        if not readable:
            if changed:
                send.add(path)
        elif changed:
            if lv == d:
                decision.converged.append(path)
            elif b is MISSING or lv == b or policy == "enforce":
                send.add(path)
            else:
                send.add(path)  # held back by the conflict unless forced
                decision.conflicts.append(_conflict(lead_id, file, path, d, b, lv, policy, force))
        elif lv != b:
            action: DriftAction = "reverted" if policy == "enforce" else "kept"
            if action == "reverted":
                send.add(path)
            decision.drift.append(
                Drift(lead_id, file, path, _shown(d), _shown(b), _shown(lv), policy, action)
            )
    decision.body = _body(desired, send, applied is not None, ownership)
    _overwritten(decision, lead_id, file, compared, applied, live, ownership, send, force)
    return decision


def _overwritten(
    decision: Decision,
    lead_id: int,
    file: str,
    compared: Mapping[str, Any],
    applied: Mapping[str, Any] | None,
    live: LiveLead | None,
    ownership: Ownership,
    send: set[str],
    force: bool,
) -> None:
    """Note what the body overwrites (`expect`), and make a conflict of any field it would
    overwrite that was edited in Lofty, though only sent along with another."""
    kept = {d.field: d for d in decision.drift if d.action == "kept"}
    for path in _paths_in_body(decision.body):
        d = value_at(compared, path)
        b = MISSING if applied is None else _base(path, value_at(applied, path), d)
        readable = live is not None and not _unreadable(live, path)
        lv = value_at(live.values, path) if live is not None and readable else MISSING
        if readable or b is not MISSING:  # a lead new to the state has nothing to expect
            decision.expect[path] = _shown(lv if readable else b)
        if path in send or not readable or b is MISSING or lv in (b, d):
            continue
        policy = ownership.policy(path)
        if policy == "enforce":
            continue
        decision.conflicts.append(_conflict(lead_id, file, path, d, b, lv, policy, force))
        if path in kept:
            decision.drift.remove(kept[path])


def _conflict(
    lead_id: int, file: str, path: str, d: Any, b: Any, lv: Any, policy: Policy, force: bool
) -> Conflict:
    action: ConflictAction = "sent (--force-conflicts)" if force else "not sent"
    return Conflict(lead_id, file, path, _shown(d), _shown(b), _shown(lv), policy, action)


def _body(
    desired: Mapping[str, Any], send: set[str], managed: bool, ownership: Ownership
) -> dict[str, Any]:
    """The PUT body for the paths to send: a nested object whole (but for keys held back by
    `initial`, which Lofty keeps when omitted), fields that travel together together."""
    names = {path.partition(".")[0] for path in send}
    for group in TRAVEL_TOGETHER:
        if group & names:
            names |= {name for name in desired if name in group}
    body: dict[str, Any] = {}
    for name in desired:
        if name not in names:
            continue
        value = desired[name]
        if managed and isinstance(value, dict):
            identity = _IDENTITY.get(name, frozenset())
            value = {
                k: v
                for k, v in value.items()
                if k in identity or ownership.policy(f"{name}.{k}") != "initial"
            }
        body[name] = value
    return body


def _paths(values: Mapping[str, Any]) -> Iterator[str]:
    """Every managed path: top-level fields, and each key of a nested object."""
    for name, value in values.items():
        if isinstance(value, dict) and value:
            for key in value:
                yield f"{name}.{key}"
        else:
            yield name


def _paths_in_body(body: Mapping[str, Any]) -> Iterator[str]:
    yield from _paths(body)


def _base(path: str, b: Any, d: Any) -> Any:
    """The last-applied value as the file now manages it: a keyed list (custom attributes)
    without the items and keys the file no longer names, which are no longer managed and so
    neither changed nor drifted."""
    key = KEYED_PATHS.get((path,))
    if key is None or not isinstance(b, list) or not isinstance(d, list):
        return b
    wanted = {item.get(key): item for item in d if isinstance(item, dict)}
    return [
        {k: item[k] for k in wanted[item.get(key)] if k in item}
        for item in b
        if isinstance(item, dict) and item.get(key) in wanted
    ]


def value_at(values: Mapping[str, Any], path: str) -> Any:
    """The value at a managed path, or MISSING."""
    name, dot, key = path.partition(".")
    value = values.get(name, MISSING)
    if not dot:
        return value
    return value.get(key, MISSING) if isinstance(value, dict) else MISSING


def _unreadable(live: LiveLead, path: str) -> bool:
    return path in live.unreadable or path.partition(".")[0] in live.unreadable


def _shown(value: Any) -> Any:
    return None if value is MISSING else value
