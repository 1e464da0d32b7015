"""Option values as the suite parses them: the one error type a bad value raises, and the list parsers every
option and every executor's backend share.

Its own module so that an executor's backend (bench/cluster.py, bench/interpreters.py) parses its own
options without importing the run's configuration (bench/config.py), which reads the backends.
"""

from __future__ import annotations

from dataclasses import dataclass


class OptionError(ValueError):
    """A bad option value; ``str()`` is the one line shown to the user."""


@dataclass(frozen=True)
class Option:
    """An option of ``pytest bench`` that one executor's backend adds and reads (bench/backend.py)."""

    name: str  # the attribute, e.g. ``dask_scheduler``; the flag is ``--dask-scheduler``
    help: str
    env: str | None = None  # an environment variable read when the option is not given

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def items(option: str, text: str | None) -> list[str]:
    """A comma list's items; OptionError on an empty list or an empty item."""
    found = [t.strip() for t in (text or "").split(",")]
    if not text or not text.strip() or any(not t for t in found):
        raise OptionError(f"{option}: empty value {text!r}; give a comma list without blanks")
    return found


def parse_names(option: str, text: str | None, allowed: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma list of names from ``allowed`` (or ``all``), kept in the order of ``allowed``."""
    if text is None:
        return default
    given = items(option, text)
    if given == ["all"]:
        return allowed
    unknown = [i for i in given if i not in allowed]
    if unknown:
        raise OptionError(f"{option}: unknown {unknown[0]!r}; choose from {', '.join(allowed)} (or all)")
    return tuple(a for a in allowed if a in given)
