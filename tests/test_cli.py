from __future__ import annotations

from typer.testing import CliRunner

from pmolens.api.cli import app

runner = CliRunner()


def test_init_writes_a_config_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "pmolens.toml"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    assert "[[sources]]" in path.read_text()
    again = runner.invoke(app, ["init", str(path)])
    assert again.exit_code == 1


def test_config_error_exit_code_and_message(tmp_path):
    path = tmp_path / "pmolens.toml"
    path.write_text('[[sources]]\nname = "x"\nkind = "jira"\n')
    result = runner.invoke(app, ["sync", "--config", str(path)])
    assert result.exit_code == 2
    assert "kind" in result.output and "jira_cloud" in result.output


def test_status_without_warehouse_says_what_to_do(tmp_path):
    path = tmp_path / "pmolens.toml"
    path.write_text('[warehouse]\npath = "w.duckdb"\n')
    result = runner.invoke(app, ["status", "--config", str(path)])
    assert result.exit_code == 1 and "pmolens sync" in result.output


def test_demo_then_the_next_steps_it_prints_work(tmp_path):
    """A newcomer runs `pmolens demo` and then the `pmolens status` line it suggests."""
    out = tmp_path / "demo"
    demo = runner.invoke(
        app, ["demo", "--directory", str(out), "--size", "600", "--simulator-port", "0"]
    )
    assert demo.exit_code == 0, demo.output
    assert "Alignment checks" in demo.output and (out / "steering-nl.html").exists()
    status = runner.invoke(app, ["status", "--config", str(out / "pmolens.toml")])
    assert status.exit_code == 0, status.output
    assert "contoso-ado" in status.output


def test_a_warehouse_from_a_newer_duckdb_is_one_line_and_exit_2(tmp_path):
    """tests/fixtures/warehouse/newer-duckdb.duckdb.gz was written by DuckDB 2.0.1 (the release
    before the pin to 1.5.5, which the lake extensions need): pmolens says what to do."""
    import gzip
    import subprocess
    import sys
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "warehouse" / "newer-duckdb.duckdb.gz"
    path = tmp_path / "old.duckdb"
    path.write_bytes(gzip.decompress(fixture.read_bytes()))
    config = tmp_path / "pmolens.toml"
    config.write_text(f'[warehouse]\npath = "{path}"\n', encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-c", "from pmolens.api.cli import main; main()", "status",
         "--config", str(config)],
        capture_output=True, text=True, env={"COLUMNS": "300", "PATH": ""}, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert "Traceback" not in run.stderr + run.stdout
    assert "written by a newer DuckDB" in run.stderr and "warehouse.path" in run.stderr
