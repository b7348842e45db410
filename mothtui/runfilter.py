"""The runs filter: words that must all match a run (pure Python, tested without a terminal).

    global            a word: part of the id, the status, a tag or the note (case-insensitive)
    #scale1.3         a tag, exactly
    pruning=global    a config value: equal (numbers compare as numbers: scale=1.3 matches 1.30)
    nets>100          a numeric config value: > < >= <= (and != for anything)
    hidden=400,400    lists compare as their comma-joined values

An unknown config key matches no run (so a typo shows an empty list, not every run), and
`unknown_keys` names it so the screen can say why the list is empty.
"""

from __future__ import annotations

import re
from typing import Any

_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(>=|<=|!=|=|>|<)(.*)$")


def _number(text: Any) -> float | None:
    if isinstance(text, bool):
        return None
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _compare(value: Any, op: str, wanted: str) -> bool:
    have, want = _number(value), _number(wanted)
    if have is not None and want is not None:
        return {"=": have == want, "!=": have != want, ">": have > want, "<": have < want,
                ">=": have >= want, "<=": have <= want}[op]
    if op in ("=", "!="):
        equal = _text(value).lower() == wanted.strip().lower()
        return equal if op == "=" else not equal
    return False


def term_matches(term: str, *, run_id: str, status: str, tags=(), note: str = "",
                 config: dict[str, Any] | None = None) -> bool:
    """Whether one filter word matches a run."""
    match = _TERM.match(term)
    if match:
        key, op, wanted = match.groups()
        if key == "status":
            return _compare(status, op, wanted)
        if key == "tag":
            found = wanted.lower() in (t.lower() for t in tags)
            return found if op == "=" else (not found if op == "!=" else False)
        if config is None or key not in config:
            return False
        return _compare(config[key], op, wanted)
    if term.startswith("#"):
        return term[1:].lower() in (t.lower() for t in tags)
    word = term.lower()
    return (word in run_id.lower() or word in status.lower() or any(word in t.lower() for t in tags)
            or word in (note or "").lower())


def matches(text: str, *, run_id: str, status: str, tags=(), note: str = "",
            config: dict[str, Any] | None = None) -> bool:
    """Whether every word of the filter `text` matches the run (an empty filter matches all)."""
    return all(term_matches(term, run_id=run_id, status=status, tags=tags, note=note, config=config)
               for term in text.split())


#: Keys a filter word may use besides the config's.
OWN_KEYS = ("status", "tag")


def unknown_keys(text: str, configs) -> list[str]:
    """The `key` of every `key<op>value` word of the filter that no run's config (nor `status`/`tag`) has."""
    known = set(OWN_KEYS).union(*(c.keys() for c in configs if c))
    found = []
    for term in text.split():
        match = _TERM.match(term)
        if match and match.group(1) not in known and match.group(1) not in found:
            found.append(match.group(1))
    return found


def known_keys(configs) -> list[str]:
    """Every key a filter word may use on these runs, sorted."""
    return sorted(set(OWN_KEYS).union(*(c.keys() for c in configs if c)))
