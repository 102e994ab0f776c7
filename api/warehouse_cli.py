"""`pmolens warehouse expire|copy` and `pmolens export --parquet`: the lake's retention, moving
a warehouse between kinds, and a partner's slice as Parquet (warehouse/transfer.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pmolens.api.console import ConfigOption, console, err, settings_or_exit
from pmolens.warehouse.config import ConfigError, Settings
from pmolens.warehouse.store import Warehouse

warehouse_app = typer.Typer(help="The warehouse itself: snapshot retention, copying.")


def _open(settings: Settings) -> Warehouse:
    from pmolens.warehouse.lake import LakeError

    try:
        return Warehouse.open(settings)
    except (LakeError, ConfigError) as exc:
        err.print(str(exc), soft_wrap=True, style="red", markup=False)
        raise typer.Exit(1) from None


@warehouse_app.command()
def expire(
    config: ConfigOption = None,
    older_than_days: Annotated[
        int | None,
        typer.Option(help="Default: warehouse.snapshot_retention_days."),
    ] = None,
) -> None:
    """Forget the lake's snapshots older than the retention and delete unneeded data files."""
    from pmolens.warehouse.transfer import expire as run_expire

    settings = settings_or_exit(config)
    if settings.warehouse.kind != "ducklake":
        err.print('expire is for a lake (kind = "ducklake"): a DuckDB file keeps no snapshots')
        raise typer.Exit(2)
    days = older_than_days or settings.warehouse.snapshot_retention_days
    with _open(settings) as warehouse:
        done = run_expire(warehouse, days)
    console.print(
        f"expired {done.snapshots} snapshot(s) older than {days} days, deleted {done.files} file(s)"
    )


@warehouse_app.command()
def copy(
    to: Annotated[Path, typer.Option("--to", help="The config of the (empty) target warehouse.")],
    config: ConfigOption = None,
) -> None:
    """Copy every table into another, empty warehouse (a DuckDB file into a lake, or back)."""
    from pmolens.pipeline.refresh import refresh_after_sync
    from pmolens.warehouse.transfer import copy_into

    origin_settings, target_settings = settings_or_exit(config), settings_or_exit(to)
    with _open(origin_settings) as origin, _open(target_settings) as target:
        try:
            copied = copy_into(origin, target)
        except ValueError as exc:
            err.print(str(exc), soft_wrap=True, style="red", markup=False)
            raise typer.Exit(1) from None
        refresh_after_sync(target, target_settings)  # results for the target's own generation
        where = target.path
    console.print(f"copied {sum(copied.values()):,} rows in {len(copied)} tables into {where}")


def export(
    parquet: Annotated[Path, typer.Option("--parquet", help="Directory for the Parquet files.")],
    config: ConfigOption = None,
    organisation: Annotated[
        str | None, typer.Option(help="Only this organisation's slice (for a chain partner).")
    ] = None,
) -> None:
    """Write the canonical tables as Parquet, the whole chain or one organisation's slice."""
    from pmolens.warehouse.transfer import export_parquet

    settings = settings_or_exit(config)
    with _open(settings) as warehouse:
        try:
            written = export_parquet(warehouse, parquet, organisation)
        except ValueError as exc:
            err.print(str(exc), soft_wrap=True, style="red", markup=False)
            raise typer.Exit(2) from None
    console.print(
        f"wrote {len(written)} Parquet files ({sum(written.values()):,} rows) to {parquet}"
    )


def register(app: typer.Typer) -> None:
    """Add these commands to the `pmolens` app."""
    app.add_typer(warehouse_app, name="warehouse")
    app.command()(export)
