"""The deployment docs (docs/deploy.md, docs/deploy/) say what pmolens really accepts.

Every YAML file parses, the compose file and the manifests hold the processes docs/deploy.md
describes, the configs they mount load with pmolens's own loader, and every ``pmolens ...``
command line in them names only subcommands and options that ``pmolens <sub> --help`` lists
(read from the Typer app's click commands), so a renamed option fails here instead of in a
programme office's cluster.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command
from typer.testing import CliRunner

from pmolens.api.cli import app
from pmolens.warehouse.config import Settings, settings_from_dict

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "deploy.md"
DEPLOY = ROOT / "docs" / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
CONFIG_PATH = "/etc/pmolens/pmolens.toml"  # where every process mounts the config

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])


# ---------------------------------------------------------------------------- reading the files


def documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def manifests() -> list[dict[str, Any]]:
    return [d for p in sorted(K8S.glob("*.yaml")) for d in documents(p)]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests() if m["kind"] == kind]


def compose_services() -> dict[str, dict[str, Any]]:
    return documents(COMPOSE)[0]["services"]


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    if manifest["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def load_config(text: str) -> Settings:
    return settings_from_dict(tomllib.loads(text), source_name="deploy config")


def configs() -> dict[str, Settings]:
    """The config compose mounts and the one in the Kubernetes ConfigMap."""
    (configmap,) = of_kind("ConfigMap")
    return {
        "compose": load_config((DEPLOY / "pmolens.toml").read_text(encoding="utf-8")),
        "k8s": load_config(configmap["data"]["pmolens.toml"]),
    }


# ----------------------------------------------------------------- finding pmolens command lines

SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "--", "do", "then", "else", "exec", "time"}


def shell_commands(text: str) -> Iterator[list[str]]:
    """The arguments of every ``pmolens`` command in a line of shell (``sh -c`` loops, ``$``
    prompts, ``kubectl exec ... -- pmolens ...``, ``docker compose exec worker pmolens ...``,
    ``VAR=x pmolens ...``): the word ``pmolens`` wherever it is not an option's value."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    command_position = True
    for i, token in enumerate(tokens):
        after_option = i > 0 and tokens[i - 1].startswith("-") and tokens[i - 1] != "--"
        # `docker compose exec worker pmolens ...` too; not `-t pmolens` or `-n pmolens`
        if token == "pmolens" and (command_position or not after_option):
            args: list[str] = []
            for arg in tokens[i + 1 :]:
                if arg in {";", "&&", "||", "|", "&", ")", ">", ">>", "<", "2>"}:
                    break
                args.append(arg)
            if args:  # a bare `pmolens` is the program's name in prose, and cannot be wrong
                yield args
        env_assignment = command_position and re.match(r"^[A-Za-z_]\w*=", token)
        command_position = token in SEPARATORS or token == "$" or bool(env_assignment)


def yaml_commands(node: Any) -> Iterator[list[str]]:
    """Commands in YAML values: exec-form lists ``[pmolens, sync, ...]`` and shell strings."""
    if isinstance(node, dict):
        for value in node.values():
            yield from yaml_commands(value)
    elif isinstance(node, list):
        if node and node[0] == "pmolens":
            yield [str(arg) for arg in node[1:]]
        elif len(node) >= 3 and node[0] in ("sh", "bash", "/bin/sh") and node[1] == "-c":
            yield from shell_commands(str(node[2]))
        else:
            for value in node:
                yield from yaml_commands(value)
    elif isinstance(node, str):
        for line in node.replace("\\\n", " ").splitlines():  # a block scalar may be a script
            if re.search(r"\bpmolens\s+\S", line):
                yield from shell_commands(line)


FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def markdown_commands(text: str) -> Iterator[list[str]]:
    """Commands in fenced shell blocks (YAML blocks parsed as YAML) and in inline code."""
    for language, body in FENCE.findall(text):
        if language in ("yaml", "yml"):
            for document in yaml.safe_load_all(body):
                yield from yaml_commands(document)
        elif language in ("", "sh", "bash", "shell", "console"):
            for line in body.replace("\\\n", " ").splitlines():
                yield from shell_commands(line.removeprefix("$ ").strip())
    prose = FENCE.sub("", text)
    for span in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", prose):
        yield from shell_commands(span)


def all_commands() -> list[tuple[str, list[str]]]:
    """(where, arguments) for every pmolens command line in the deployment docs."""
    found: list[tuple[str, list[str]]] = []
    for path in YAML_FILES:
        for document in documents(path):
            found += [(path.relative_to(ROOT).as_posix(), c) for c in yaml_commands(document)]
    found += [(DOC.relative_to(ROOT).as_posix(), c) for c in markdown_commands(DOC.read_text())]
    dockerfile = DEPLOY / "Dockerfile"
    for line in dockerfile.read_text().splitlines():
        if line.startswith("CMD ["):
            found += [
                ("docs/deploy/Dockerfile", c) for c in yaml_commands(yaml.safe_load(line[4:]))
            ]
    return found


# ------------------------------------------------------------------- checking against the CLI

ROOT_COMMAND: Any = get_command(app)


def is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")  # duck-typed: typer ships its own copy of click


def problems_with(args: list[str]) -> list[str]:
    """What in ``pmolens <args>`` the CLI does not know; [] when every word is real."""
    command: Any = ROOT_COMMAND
    context = command.context_class(command, info_name="pmolens")
    path = ["pmolens"]
    rest = list(args)
    while is_group(command) and rest and not rest[0].startswith("-"):
        sub = command.get_command(context, rest[0])
        if sub is None:
            known = sorted(command.list_commands(context))
            return [f"`{' '.join(path)}` has no command {rest[0]!r} (it has {known})"]
        path.append(rest.pop(0))
        command = sub
        context = command.context_class(command, info_name=path[-1], parent=context)
    options: dict[str, Any] = {}
    arguments: list[Any] = []
    for param in command.get_params(context):
        if param.param_type_name == "option":
            for name in [*param.opts, *param.secondary_opts]:
                options[name] = param
        elif param.param_type_name == "argument":
            arguments.append(param)
    wrong: list[str] = []
    positional = 0
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if token.startswith("-") and len(token) > 1:
            name, equals, _ = token.partition("=")
            has_value = bool(equals)
            if name not in options and name[:2] in options and not name.startswith("--"):
                name, has_value = name[:2], True  # -sVALUE
            param = options.get(name)
            if param is None:
                wrong.append(f"`{' '.join(path)}` has no option {name} (it has {sorted(options)})")
                continue
            if not (param.is_flag or param.count or has_value):
                i += 1  # its value
        else:
            positional += 1
    accepted = sum(a.nargs for a in arguments) if all(a.nargs > 0 for a in arguments) else None
    if accepted is not None and positional > accepted:
        wrong.append(f"`{' '.join(path)}` takes {accepted} argument(s), given {positional}")
    return wrong


COMMANDS = all_commands()


def test_the_docs_have_the_commands_people_run() -> None:
    lines = [" ".join(args) for _, args in COMMANDS]
    assert any(line.startswith("sync ") and "--source" in line for line in lines)
    assert any(line.startswith("serve ") and "--no-scheduler" in line for line in lines)
    assert any(line.startswith("serve ") and "--no-scheduler" not in line for line in lines)


@pytest.mark.parametrize(
    ("where", "args"), COMMANDS, ids=[f"{w}: pmolens {' '.join(a)}" for w, a in COMMANDS]
)
def test_command_names_only_real_options(where: str, args: list[str]) -> None:
    problems = problems_with(args)
    assert not problems, f"{where}: pmolens {shlex.join(args)}: " + "; ".join(problems)


def test_the_finder_reads_shell_lines_as_a_shell_would() -> None:
    loop = "while true; do pmolens sync --source a; sleep 900; done"
    assert list(shell_commands(loop)) == [["sync", "--source", "a"]]
    assert list(shell_commands("docker compose exec w pmolens status -c x")) == [
        ["status", "-c", "x"]
    ]
    assert list(shell_commands("kubectl exec deploy/api -- pmolens status")) == [["status"]]
    assert list(shell_commands("PMOLENS_CONFIG=/x pmolens serve && echo ok")) == [["serve"]]
    assert list(shell_commands("docker build -t pmolens . ; kubectl -n pmolens get pods")) == []
    assert list(yaml_commands({"command": ["pmolens", "serve", "--port", 8765]})) == [
        ["serve", "--port", "8765"]
    ]
    assert list(yaml_commands({"labels": {"app": "pmolens"}, "image": "pmolens:0.1.0"})) == []


def test_the_checker_catches_what_is_not_there() -> None:
    assert problems_with(["sync", "--source", "x", "--config", "c.toml"]) == []
    assert problems_with(["sync", "-s", "x", "--full"]) == []
    assert problems_with(["sync", "--sauce", "x"])
    assert problems_with(["sink"])
    assert problems_with(["sync", "extra-argument"])
    assert problems_with(["init", "pmolens.toml"]) == []


def test_help_lists_the_options_the_docs_use() -> None:
    """The introspection above reads what `pmolens <sub> --help` prints: each option the docs
    use on an existing subcommand is in that subcommand's help."""
    runner = CliRunner()
    context = ROOT_COMMAND.context_class(ROOT_COMMAND, info_name="pmolens")
    existing = set(ROOT_COMMAND.list_commands(context))
    used: dict[str, set[str]] = {}
    for _, args in COMMANDS:
        if (
            args
            and args[0] in existing
            and not is_group(ROOT_COMMAND.get_command(context, args[0]))
        ):
            flags = {a.partition("=")[0] for a in args[1:] if a.startswith("--")}
            used.setdefault(args[0], set()).update(flags)
    assert used
    for sub, flags in sorted(used.items()):
        result = runner.invoke(app, [sub, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert result.exit_code == 0, result.output
        real = {f for f in flags if not problems_with([sub, f] if f == "--help" else [sub, f, "x"])}
        for flag in real:
            assert flag in result.output, f"pmolens {sub} --help does not list {flag}"


# ------------------------------------------------------------------------------ the YAML files


@pytest.mark.parametrize(
    "path", YAML_FILES, ids=[p.relative_to(DEPLOY).as_posix() for p in YAML_FILES]
)
def test_every_yaml_file_parses(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path} holds no document"
    for document in docs:
        assert isinstance(document, dict)
        if path.parent == K8S:
            assert {"apiVersion", "kind", "metadata"} <= set(document), path
            assert document["metadata"].get("name"), path


def test_there_are_files_to_check() -> None:
    assert DOC.is_file()
    assert COMPOSE in YAML_FILES
    assert len(list(K8S.glob("*.yaml"))) >= 4


# ------------------------------------------------------------------------------ the compose file


def pmolens_services() -> dict[str, list[str]]:
    """Compose service -> the pmolens arguments it runs."""
    found = {}
    for name, service in compose_services().items():
        commands = list(yaml_commands(service.get("command")))
        if commands:
            (found[name],) = commands
    return found


def test_compose_runs_postgres_workers_replicas_scheduler_and_proxy() -> None:
    services = compose_services()
    runs = pmolens_services()
    settings = configs()["compose"]
    assert str(services["postgres"]["image"]).startswith("postgres:")
    workers = {
        args[args.index("--source") + 1]: name
        for name, args in runs.items()
        if args[0] == "sync" and "--source" in args
    }
    assert set(workers) == {s.name for s in settings.sources}, "one worker per source"
    replicas = [n for n, a in runs.items() if a[0] == "serve" and "--no-scheduler" in a]
    schedulers = [n for n, a in runs.items() if a[0] == "serve" and "--no-scheduler" not in a]
    assert len(replicas) == 2 and len(schedulers) == 1
    proxy = next(s for s in services.values() if str(s.get("image", "")).startswith("nginx"))
    (mount,) = [v for v in proxy["volumes"] if "nginx.conf" in v]
    upstream = (DEPLOY / mount.split(":")[0].removeprefix("./")).read_text()
    for replica in replicas:
        assert re.search(rf"server\s+{re.escape(replica)}:8765\b", upstream), replica
    for name, args in runs.items():
        assert args[args.index("--config") + 1] == CONFIG_PATH, name


def environment(service: dict[str, Any]) -> set[str]:
    env = service.get("environment") or {}
    return set(env) if isinstance(env, dict) else {e.split("=")[0] for e in env}


def test_compose_gives_each_process_its_secrets_and_the_lake() -> None:
    services = compose_services()
    settings = configs()["compose"]
    lake = settings.warehouse
    for name, args in pmolens_services().items():
        service = services[name]
        assert lake.password_env in environment(service), name
        assert any(v.endswith(f":{lake.data_path}") for v in service["volumes"]), name
        assert any(v.endswith(f":{CONFIG_PATH}:ro") for v in service["volumes"]), name
        if args[0] == "sync":
            source = settings.source(args[args.index("--source") + 1])
            assert source.token_env in environment(service), name
            others = {s.token_env for s in settings.sources} - {source.token_env}
            assert not others & environment(service), f"{name} gets another source's token"
        if args[0] == "serve":
            needed = {t.env for t in settings.server.tokens} | {settings.server.session_secret_env}
            assert needed <= environment(service), name
    assert services["postgres"]["environment"]["POSTGRES_USER"] in (lake.catalog or "")


# ------------------------------------------------------------------------------ the manifests


def container_env(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = pod_spec(manifest)["containers"]
    return {e["name"]: e for e in container.get("env", [])}


def test_kubernetes_has_a_cronjob_per_source_and_replicas_behind_a_service() -> None:
    settings = configs()["k8s"]
    runs = {
        m["metadata"]["name"]: (m, args)
        for m in [*of_kind("CronJob"), *of_kind("Deployment")]
        for (args,) in [list(yaml_commands(pod_spec(m)["containers"][0]["command"]))]
    }
    synced = {
        args[args.index("--source") + 1]
        for m, args in runs.values()
        if m["kind"] == "CronJob" and args[0] == "sync"
    }
    assert synced == {s.name for s in settings.sources}
    api = [m for m, a in runs.values() if m["kind"] == "Deployment" and "--no-scheduler" in a]
    assert len(api) == 1 and api[0]["spec"]["replicas"] >= 2
    (service,) = of_kind("Service")
    labels = api[0]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    scheduler = [m for m, a in runs.values() if a[0] == "serve" and "--no-scheduler" not in a]
    assert len(scheduler) == 1
    for manifest, args in runs.values():
        assert args[args.index("--config") + 1] == CONFIG_PATH, manifest["metadata"]["name"]


def test_kubernetes_secrets_are_referenced_by_the_names_the_config_gives() -> None:
    settings = configs()["k8s"]
    (secret,) = of_kind("Secret")
    held = set(secret["stringData"])
    for manifest in [*of_kind("CronJob"), *of_kind("Deployment")]:
        env = container_env(manifest)
        assert settings.warehouse.password_env in env, manifest["metadata"]["name"]
        for name, entry in env.items():
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"]
                assert ref["key"] == name and name in held, name
        mounts = {m["mountPath"] for m in pod_spec(manifest)["containers"][0]["volumeMounts"]}
        assert {str(Path(CONFIG_PATH).parent), settings.warehouse.data_path} <= mounts
    names = {settings.warehouse.password_env, settings.server.session_secret_env}
    names |= {t.env for t in settings.server.tokens} | {s.token_env for s in settings.sources}
    assert names == held


# ------------------------------------------------------------------------------ the configs


@pytest.mark.parametrize("which", ["compose", "k8s"])
def test_the_mounted_config_is_a_lake_without_its_password(which: str) -> None:
    settings = configs()[which]
    lake = settings.warehouse
    assert lake.kind == "ducklake"
    assert lake.password_env and lake.catalog and "password" not in lake.catalog.lower()
    assert lake.data_path == "/data/lake"
    assert all(s.schedule is None for s in settings.sources), "the workers decide when"
