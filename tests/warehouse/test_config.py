from __future__ import annotations

import pytest

from pmolens.api.example_config import EXAMPLE
from pmolens.warehouse.config import ConfigError, load_settings, settings_from_dict

SOURCE = {
    "name": "acme",
    "kind": "jira_cloud",
    "organisation": "Acme",
    "base_url": "https://acme.atlassian.net",
    "email": "pmo@acme.example",
    "jql": "project = ACME",
    "token_env": "ACME_TOKEN",
}


def error_of(data) -> str:
    with pytest.raises(ConfigError) as exc:
        settings_from_dict(data, source_name="pmolens.toml")
    return str(exc.value)


def test_example_config_from_init_is_valid(tmp_path):
    path = tmp_path / "pmolens.toml"
    path.write_text(EXAMPLE)
    settings = load_settings(path)
    assert [s.kind for s in settings.sources] == ["jira_cloud", "jira_dc", "azure_devops"]
    assert settings.sources[2].team_map == {"Delivery\\Payments": "Payments Core"}
    assert settings.warehouse_path == tmp_path / "pmolens.duckdb"


def test_wrong_kind_names_the_key_and_the_choices():
    message = error_of({"sources": [{**SOURCE, "kind": "jira"}]})
    assert "sources[0] (acme).kind" in message and "jira_cloud" in message and "'jira'" in message


def test_unknown_key_is_reported_with_the_fix():
    message = error_of({"sources": [{**SOURCE, "story_points": "x"}]})
    assert "sources[0] (acme).story_points" in message and "unknown key" in message


def test_missing_key_and_kind_specific_requirements():
    missing = {k: v for k, v in SOURCE.items() if k != "token_env"}
    assert "token_env: required key is missing" in error_of({"sources": [missing]})
    no_email = {k: v for k, v in SOURCE.items() if k != "email"}
    assert "needs email" in error_of({"sources": [no_email]})
    ado = {**SOURCE, "kind": "azure_devops"}
    assert "needs project" in error_of({"sources": [ado]})


def test_bad_values_are_explained():
    assert "must start with https://" in error_of({"sources": [{**SOURCE, "base_url": "acme"}]})
    assert "level must be one of" in error_of({"sources": [{**SOURCE, "levels": {"Saga": "saga"}}]})
    assert "only allowed when host is loopback" in error_of(
        {"server": {"host": "0.0.0.0", "auth": "none"}}
    )
    assert "capture group" in error_of(
        {"sources": [SOURCE], "cross_links": [{"pattern": "ADO#\\d+", "source": "acme"}]}
    )
    assert "unknown source" in error_of(
        {"sources": [SOURCE], "cross_links": [{"pattern": "ADO#(\\d+)", "source": "nope"}]}
    )
    assert "repeated" in error_of({"sources": [SOURCE, SOURCE]})
    assert "not under [[organisations]]" in error_of(
        {"organisations": [{"name": "Other"}], "sources": [SOURCE]}
    )


def test_missing_file_and_broken_toml(tmp_path):
    with pytest.raises(ConfigError, match="pmolens init"):
        load_settings(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[sources\nname = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken)


def test_token_comes_from_the_environment_only(monkeypatch):
    settings = settings_from_dict({"sources": [SOURCE]})
    monkeypatch.delenv("ACME_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="ACME_TOKEN"):
        settings.sources[0].token()
    monkeypatch.setenv("ACME_TOKEN", "t0ken")
    assert settings.sources[0].token() == "t0ken"
    assert "t0ken" not in repr(settings)


def test_dependency_settings_are_checked_at_load():
    def deps(values) -> str:
        return error_of({"sources": [SOURCE], "analytics": {"dependencies": values}})

    assert "analytics.dependencies.sketch: unknown key (known: sketch_size, " in deps({"sketch": 8})
    assert "analytics.dependencies.sketch_size: must be >= 2 (got 1)" in deps({"sketch_size": 1})
    assert "sketch_size: must be a whole number >= 0 (got 2.5)" in deps({"sketch_size": 2.5})
    assert "value_weight: must be a number >= 0 (got 'high')" in deps({"value_weight": "high"})
    assert "item_weight: must be a number >= 0 (got -1)" in deps({"item_weight": -1})
    assert "must be a table" in deps(5)
    assert deps({"sketch_size": 1}).startswith("pmolens.toml: ")
    settings = settings_from_dict(
        {"sources": [SOURCE], "analytics": {"dependencies": {"sketch_size": 64, "seed": 7}}}
    )
    deps_params = settings.analytics.dependencies
    assert (deps_params.sketch_size, deps_params.seed) == (64, 7)


def test_a_misspelt_analytics_key_fails_at_load_naming_the_key(tmp_path):
    path = tmp_path / "pmolens.toml"
    path.write_text(EXAMPLE + "\n[analytics.flow]\nwindow_dayz = 30\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path)
    assert str(exc.value) == (
        f"{path}: analytics.flow.window_dayz: unknown key (known: window_days, percentiles, "
        "work_levels, active_statuses, waiting_statuses, defect_types, risk_types, risk_labels, "
        "debt_types, debt_labels, littles_tolerance)"
    )
    assert "analytics.flwo: unknown key (known: flow, backlog, kpis, forecast, " in error_of(
        {"analytics": {"flwo": {}}}
    )


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("flow", {"window_days": "30"}, "window_days: must be a whole number >= 1 (got '30')"),
        ("flow", {"work_levels": "story"}, "work_levels: must be a list of strings"),
        ("flow", {"percentiles": [50, 101]}, "percentiles: must be a list of whole percentiles"),
        ("backlog", {"top_n": 2.5}, "top_n: must be a whole number >= 1 (got 2.5)"),
        ("backlog", {"min_ranked": 1.5}, "min_ranked: must be a number >= 0 and <= 1 (got 1.5)"),
        ("kpis", {"trend_sprints": True}, "trend_sprints: must be a whole number >= 1 (got True)"),
        ("kpis", {"job_size": "points"}, "job_size: must be 'estimate' or 'cost' (got 'points')"),
        ("forecast", {"seed": "x"}, "seed: must be a whole number (got 'x')"),
        ("forecast", {"how_many_weeks": []}, "how_many_weeks: must be a list of whole weeks"),
        ("dependencies", {"value_weight": "high"}, "value_weight: must be a number >= 0"),
        ("impediments", {"sos_weight": [10]}, "sos_weight: must be a number >= 0 (got [10])"),
    ],
)
def test_a_wrong_type_in_each_analytics_section_fails_at_load(section, values, message):
    got = error_of({"analytics": {section: values}})
    assert got.startswith(f"pmolens.toml: analytics.{section}.")
    assert message in got
    assert "must be a table, e.g. [analytics.kpis]" in error_of({"analytics": {"kpis": 5}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rules": {"stale_work": {"stale_days": "3"}}}, "rules.stale_work.stale_days: must be"),
        ({"rules": {"orphan_work": {"levels": "story"}}}, "rules.orphan_work.levels: must be a"),
        ({"rules": {"wip_overload": {"percentile": 85}}}, "rules.wip_overload.percentile: must"),
        ({"rules": {"dod_drift": {"products": {"A": 1}}}}, "rules.dod_drift.products: must be"),
        (
            {"rules": {"epic_spread": {"organisations": {"O": {"max_tems": 2}}}}},
            "rules.epic_spread.organisations.O.max_tems: unknown key (known: enabled, "
            "organisations, max_teams)",
        ),
        ({"rules": {"no_owner": 1}}, "rules.no_owner: must be a table"),
    ],
)
def test_a_wrong_rule_setting_fails_at_load(data, message):
    assert message in error_of(data)


def test_settings_are_typed_with_the_defaults_in_force():
    settings = settings_from_dict(
        {"analytics": {"flow": {"window_days": 30, "active_statuses": ["Doing"]}}}
    )
    assert settings.analytics.flow.window_days == 30
    assert settings.analytics.flow.active_statuses == ("Doing",)
    assert settings.analytics.flow.percentiles == (50, 70, 85, 95)
    assert settings.analytics.forecast.trials == 10_000
    assert settings.rules.stale_work.stale_days == 14


def test_the_demo_config_loads():
    from pmolens.simulator import demo_settings

    settings = settings_from_dict(demo_settings("http://127.0.0.1:9"))
    assert settings.sources and settings.analytics.flow.window_days == 90
