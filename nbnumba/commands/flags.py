"""`nbnumba flags [WORD]`: the flag reference, from the parsers' own tables."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("word", required=False)
def flags(word) -> None:
    """Print the flag reference (Markdown) from the parser's own tables: each flag's values,
    default, unit and domain.  WORD keeps the flags whose name or meaning contains it."""
    from ..model.options import flag_table, sweep_table

    def keep(row) -> bool:
        return word is None or word.lower() in row[0].lower() or word.lower() in row[-1].lower()

    run_rows = [row for row in flag_table() if keep(row)]
    sweep_rows = [row for row in sweep_table() if keep(row)]
    if not run_rows and not sweep_rows:
        click.echo(f"nbnumba: no flag or option matches {word!r}", err=True)
        sys.exit(1)
    if run_rows:
        click.echo("| flag | values | default | unit | domain | meaning |")
        click.echo("| --- | --- | --- | --- | --- | --- |")
        for name, nargs, default, unit, domain, text in run_rows:
            click.echo(f"| `{name}` | {nargs} | {default} | {unit} | {domain} | {text} |")
    if sweep_rows:
        if run_rows:
            click.echo("")
        click.echo("Options of `sweep` and `batch` themselves (one dash or two; `--name=value` works too):")
        click.echo("")
        click.echo("| option | values | default | domain | commands | meaning |")
        click.echo("| --- | --- | --- | --- | --- | --- |")
        for name, nargs, default, domain, commands, text in sweep_rows:
            click.echo(f"| `{name}` | {nargs} | {default} | {domain} | {commands} | {text} |")


def echo_flag_table(rows) -> None:
    """A companion program's flag table (flag, values, meaning) as Markdown."""
    click.echo("| flag | values | meaning |")
    click.echo("| --- | --- | --- |")
    for name, nargs, text in rows:
        click.echo(f"| `{name}` | {nargs} | {text} |")
