"""The commented example written by `pmolens init`."""

EXAMPLE = """\
# pmolens configuration. Secrets never go in this file: each source names the environment
# variable that holds its token (token_env). Relative paths resolve next to this file.

[warehouse]
path = "pmolens.duckdb"            # embedded DuckDB file (override: PMOLENS_WAREHOUSE)

[server]                           # `pmolens serve`
host = "127.0.0.1"                 # loopback by default
port = 8765
auth = "token"                     # "token", or "none" (allowed on loopback only)
tokens = [
  { role = "viewer", env = "PMOLENS_VIEWER_TOKEN" },      # GET routes
  { role = "operator", env = "PMOLENS_OPERATOR_TOKEN" },  # POST /sync as well
]

# The chain: every source belongs to one organisation.
[[organisations]]
name = "Northwind"
description = "Web shop"
time_zone = "Europe/Amsterdam"     # IANA zone that cuts its days and ISO weeks (default UTC)
working_days = ["mon", "tue", "wed", "thu", "fri"]  # for cycle_working_days (default Mon-Fri)

[[organisations]]
name = "Contoso"
description = "Payments partner"

[[organisations]]
name = "Fabrikam"
description = "Devices partner"

# --- Jira Cloud ------------------------------------------------------------------------------
[[sources]]
name = "northwind-jira"
kind = "jira_cloud"
organisation = "Northwind"
base_url = "https://northwind.atlassian.net"
email = "pmo@northwind.example"    # the account the API token belongs to
token_env = "NORTHWIND_JIRA_TOKEN" # export NORTHWIND_JIRA_TOKEN=<API token>
jql = "project in (NW, SHOP)"      # scope; pmolens adds the updated >= clause and the order
boards = [1, 2]                    # agile boards to read sprints from
remote_links_jql = "labels = chain"  # read remote links (cross-tracker dependencies) of these
teams_from = "field"               # field | component | project | board
schedule = "*/30 * * * *"          # cron, used by `pmolens serve`

[sources.fields]                   # your custom field ids (Jira admin > Issues > Custom fields)
story_points = "customfield_10016"
sprint = "customfield_10020"
team = "customfield_10001"
rank = "customfield_10019"
flagged = "customfield_10021"
business_value = "customfield_10030"
# cost = "customfield_10031"
# time_criticality = "customfield_10032"
# risk_reduction = "customfield_10033"

[sources.link_types]               # which link types are dependencies (case-insensitive)
blocks = ["Blocks"]                # "A blocks B": A is the blocker
depends = ["Dependency"]           # "A depends on B": B is the blocker

[sources.levels]                   # issue type -> initiative/epic/feature/story/task/bug/impediment
"Initiative" = "initiative"
"Impediment" = "impediment"

# [sources.status_categories]      # override a status category: todo / in_progress / done
# "Waiting for Partner" = "in_progress"

# --- Jira Data Center ------------------------------------------------------------------------
[[sources]]
name = "fabrikam-jira-dc"
kind = "jira_dc"
organisation = "Fabrikam"
base_url = "https://jira.fabrikam.example"
token_env = "FABRIKAM_JIRA_PAT"    # personal access token, sent as a bearer token
jql = "project = FAB"
boards = [3]
teams_from = "component"

[sources.team_map]                 # raw value (component, board id, area path) -> team name
"Devices" = "Devices"

[sources.fields]
story_points = "customfield_10106"
sprint = "customfield_10104"
epic_link = "customfield_10100"

# --- Azure DevOps ----------------------------------------------------------------------------
[[sources]]
name = "contoso-ado"
kind = "azure_devops"
organisation = "Contoso"
base_url = "https://dev.azure.com/contoso"  # or https://server/tfs/DefaultCollection
project = "Delivery"
token_env = "CONTOSO_ADO_PAT"      # organisation-scoped PAT (Work Items: Read)
teams_from = "area_path"
# area_paths = ["Delivery\\\\Payments"]

[sources.team_map]
"Delivery\\\\Payments" = "Payments Core"

# Text references to another tracker's items, e.g. "ADO#1234" in a title or label:
# [[cross_links]]
# pattern = "ADO#(\\\\d+)"
# source = "contoso-ado"

# A steering report that `pmolens serve` delivers on a cron (UTC), after a running sync of the
# organisation's sources has committed (docs/delivery.md). To a folder and/or by mail:
# [[reports]]
# name = "steering-contoso"
# cron = "0 7 * * mon"
# lang = "nl"                      # nl | en
# organisation = "Contoso"         # leave out for the whole chain
# format = "html"                  # html | pdf
# to_folder = "reports/contoso"
# [reports.smtp]
# host = "smtp.contoso.example"
# port = 587
# starttls = true
# username_env = "PMOLENS_SMTP_USER"     # environment variable names, never the values
# password_env = "PMOLENS_SMTP_PASSWORD"
# sender = "pmo@contoso.example"
# recipients = ["stuurgroep@contoso.example"]
"""
