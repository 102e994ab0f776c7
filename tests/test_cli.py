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
