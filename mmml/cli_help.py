"""`--help` in sections: the options a user needs first, then the rest by subject.

A command lists thirty-odd options; in one flat list the handful that
matter to a first run are lost among the tuning knobs. Click renders each
section with its own formatter, so this only sorts options into sections.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import click


class GroupedOption(click.Option):
    """A click option that names the `--help` section it is listed in."""

    def __init__(self, *args, group: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.group = group


class GroupedCommand(click.Command):
    """A command whose `--help` lists its options section by section, in the order of `groups`.

    Use as `click.command(cls=GroupedCommand, groups=(...))`. Options without
    a group (`--help` itself) come last, under "Other options".
    """

    def __init__(self, *args, groups: Sequence[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.groups = tuple(groups)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                sections.setdefault(getattr(param, "group", "Other options"), []).append(record)
        order = [*self.groups, *(name for name in sections if name not in self.groups)]
        for name in order:
            if name in sections:
                with formatter.section(name):
                    formatter.write_dl(sections[name])


def option_in(group: str) -> Callable[..., Callable]:
    """`click.option` for options listed under `group` in `--help`."""
    return functools.partial(click.option, cls=GroupedOption, group=group)
