"""Generate docs/cli.md from the click commands themselves, so the reference never drifts.

Run ``python docs/gen_cli.py > docs/cli.md`` (``make docs``); a test fails when
the committed file differs from what this prints.
"""

from __future__ import annotations

import click

from migration_guard.cli import main

HEADER = """# CLI reference

Generated from the commands' own help by `docs/gen_cli.py`; do not edit by hand.

Every command exits with **0** when all is fine, **1** when it did its job and
found a problem (findings, a failed backup, drift...), and **2** for usage or
configuration errors, with a message that names the problem and the fix.
Everything the CLI does is available from Python in `migration_guard.commands`,
one plain function per command (`check`, `create_backup`, `restore`, `upgrade`...).
"""


def _sections(
    command: click.Command, path: list[str], parent: click.Context | None = None
) -> list[str]:
    # Contexts are built as click builds them when the command runs (settings such as
    # help_option_names are inherited from the parent), so the help reads exactly as
    # users see it, whatever ran in this process before.
    context = click.Context(
        command,
        parent=parent,
        info_name=path[-1],
        terminal_width=100,
        max_content_width=100,
        **command.context_settings,
    )
    out = [f"\n## `{' '.join(path)}`\n", "```text", command.get_help(context).rstrip(), "```"]
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None and not sub.hidden:
                out.extend(_sections(sub, [*path, name], context))
    return out


def render() -> str:
    return HEADER + "\n".join(_sections(main, ["migration-guard"])) + "\n"


if __name__ == "__main__":
    print(render(), end="")
