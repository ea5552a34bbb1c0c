"""Report commands: the weekly digest and the evidence pack (placeholder until written)."""

import click


@click.command()
def digest_command() -> None:
    """Weekly digest (being written).

    Example: corrlog digest
    """
    raise click.UsageError("not built yet")


@click.command()
def export_command() -> None:
    """Evidence pack (being written).

    Example: corrlog export acme-site --out DIR
    """
    raise click.UsageError("not built yet")
