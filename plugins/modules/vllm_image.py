#!/usr/bin/python
# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vllm_image
short_description: Make sure the vLLM image of a plan exists on a Docker host, pulling or building it under a content-addressed tag
version_added: 1.0.0
author: gpufleet.vllm contributors (@gpufleet)
description:
  - Ensures that the container image of a plan from M(gpufleet.vllm.vllm_plan) exists in the Docker engine of the host, and returns the
    exact reference the service must run.
  - "For build plans (whose C(build) is true) the tag is content-addressed: C(<vllm_version>-<12 hex digits>), the digits being the start
    of a sha256 over the recipe directory (each file's relative path and content), the effective build arguments, the wheels of
    O(wheelhouse) (name and content), the contents of O(ca_certificates) and the files of O(source_dir) (relative path and content).
    Any changed input gives a new tag, and unchanged inputs the same tag, so an image found under its tag never needs a rebuild."
  - "The module takes the first of these that applies: the image is in the engine already (RV(action=present)); its registry has it
    (RV(action=pulled)), which the engine asks the registry without pulling; it is built with the engine's classic builder from a
    temporary build context (O(recipe_dir), plus C(wheels/) from O(wheelhouse), C(certs/) from O(ca_certificates) and C(source/)
    from O(source_dir)) and, when the plan's image names a registry host and O(registry_push=true), pushed there (RV(action=built) or
    RV(action=pushed))."
  - Prebuilt images (plans whose C(build) is false, such as C(vllm/vllm-openai)) are pulled by their pinned tag and never built.
  - When a built image is to be pushed but its registry does not answer, the module fails before building, so that no image is
    left that other hosts cannot pull.
  - Talks to the Docker engine API directly, so neither the C(docker) CLI nor BuildKit is needed on the host.
extends_documentation_fragment:
  - gpufleet.vllm._attributes
  - gpufleet.vllm._docker_engine
attributes:
  check_mode:
    support: full
    details:
      - Asks the engine and the registry what exists and reports the action a real run would take, without pulling, building or
        pushing, and without writing O(log_path) (O(digest_cache), a cache of what was read, is written when set);
        RV(image_id) is null when the image is absent.
  diff_mode:
    support: full
    details:
      - The diff shows the image reference present before and after the run.
  idempotent:
    support: full
    details:
      - A second run with unchanged inputs finds the image under its content tag and reports no change.
options:
  plan:
    description:
      - The plan returned by M(gpufleet.vllm.vllm_plan) (its RV(gpufleet.vllm.vllm_plan#module:plan) value).
      - Uses C(variant), C(image), C(build) and C(build_args); other keys are ignored.
    type: dict
    required: true
  recipe_dir:
    description:
      - Directory on the host holding the variant's C(Dockerfile) and the files it copies.
      - Required when the C(build) of O(plan) is true; ignored otherwise.
      - Every regular file below it counts for the content tag, so keep only the recipe there.
    type: path
  wheelhouse:
    description:
      - Directory on the host whose C(*.whl) files are copied into the build context's C(wheels/), where the Dockerfile's pip looks
        before any package index.
      - Its wheels (names and contents) count for the content tag.
    type: path
  ca_certificates:
    description:
      - Extra CA certificates (PEM files on the host) copied into the build context's C(certs/) as C(ca-<16 hex digits of their sha256>.crt),
        trusted inside the image by apt, pip and the server.
      - Their contents count for the content tag; their paths and order do not.
    type: list
    elements: path
    default: []
  source_dir:
    description:
      - Directory on the host holding a vLLM source tree, copied into the build context's C(source/), from which the recipes that
        compile vLLM (such as the K80 and CUDA 12.8 ones) build it instead of fetching a release.
      - Its files (relative paths and contents) count for the content tag; C(.git) and C(__pycache__) are left out of both the tag and
        the copy, so a fresh clone of the same commit gives the same tag.
      - When unset, C(source/) is created empty and the tag is the one the same inputs gave before this option existed.
    type: path
    version_added: 1.2.0
  log_path:
    description:
      - File on the host that every line of the build output is appended to as it arrives, with the credentials of
        O(pip_extra_index_urls) masked, so that C(tail -f) shows a long build's progress and its current C(Step N/M) line.
      - The current C(Step N/M) line alone is kept in C(<log_path>.step), replaced at each step, for pollers that should not read
        the whole log.
      - Missing parent directories are created. Nothing is written when no build runs, nor in check mode.
      - A failed build's message then names this file; without it only the last lines are kept, in RV(build_log).
    type: path
    version_added: 1.2.0
  digest_cache:
    description:
      - A file on the host that remembers the sha256 of each hashed build input with its size, modification time and change time,
        so that a run reads again only the files that changed since (a wheelhouse is often hundreds of MiB).
      - Created when missing; a cache that cannot be read is ignored and one that cannot be written only gives a warning. Keep it
        outside O(recipe_dir), whose every file counts for the tag.
      - Written in check mode too, as it records what was read rather than anything the module manages, so that a run that asks
        in check mode before it builds keeps the digests; leave it unset in check runs that must write nothing.
      - Unset, every input is hashed on every run.
    type: path
    version_added: 1.2.0
  pip_extra_index_urls:
    description:
      - Package indexes pip searches besides its default one, passed space-separated as the build argument C(PIP_EXTRA_INDEX_URL).
      - When empty the Dockerfile's default applies.
      - They may carry credentials, so they never appear in the module's output; the content tag hashes them without their
        C(user:password@) part.
      - Build arguments are stored in the image history (C(docker history)); prefer a wheelhouse or a token-free mirror.
    type: list
    elements: str
    default: []
  build_args:
    description:
      - Extra build arguments, merged over the plan's C(build_args) and C(PIP_EXTRA_INDEX_URL).
      - Values are passed as strings. C(MAX_JOBS), C(NVCC_THREADS) and C(CMAKE_BUILD_PARALLEL_LEVEL) only set build parallelism and
        do not count for the content tag, so hosts with different CPU counts agree on it.
    type: dict
    default: {}
  registry_push:
    description:
      - Push a built image when the plan's image names a registry host (as in C(registry.example.com:5000/gpufleet/vllm-cpu)).
      - The engine's own credentials for that registry apply (C(docker login) on the host).
    type: bool
    default: true
  timeout:
    description:
      - Seconds the engine may stay silent during a pull, build or push before the module gives up.
      - Source builds of vLLM compile for a long time between log lines; raise it for slow hosts.
    type: int
    default: 3600
notes:
  - The digest format is versioned; collection releases that change it rebuild images once.
  - The base image named by the Dockerfile counts only by name (through the C(BASE_IMAGE) build argument or the Dockerfile text), not
    by its content; pin it by digest there to rebuild when it changes.
  - Built images carry the labels C(io.gpufleet.recipe-digest) (the full sha256), C(io.gpufleet.variant) and C(io.gpufleet.vllm-version).
seealso:
  - module: gpufleet.vllm.vllm_plan
  - module: community.docker.docker_image_pull
"""

EXAMPLES = r"""
---
- name: Plan the model on this host
  gpufleet.vllm.vllm_plan:
    gpus: "{{ ansible_facts.gpufleet_gpus }}"
    gpu_host: "{{ ansible_facts.gpufleet_gpu_host }}"
    model: Qwen/Qwen2.5-0.5B-Instruct
    registry: registry.example.com:5000
  register: planned

- name: Build, pull or find the image
  gpufleet.vllm.vllm_image:
    plan: "{{ planned.plan }}"
    recipe_dir: /var/lib/gpufleet/build/{{ planned.plan.variant }}
    wheelhouse: /var/lib/gpufleet/wheelhouse
    ca_certificates:
      - /usr/local/share/ca-certificates/corp-proxy.crt
    log_path: /var/log/gpufleet/build-{{ planned.plan.variant }}.log
    build_args:
      MAX_JOBS: "{{ ansible_facts.processor_vcpus }}"
  register: vllm_image

- name: Show the image the service runs
  ansible.builtin.debug:
    msg: "{{ vllm_image.image }} ({{ vllm_image.action }})"

- name: Use a private index that needs a token (never printed)
  gpufleet.vllm.vllm_image:
    plan: "{{ planned.plan }}"
    recipe_dir: /var/lib/gpufleet/build/{{ planned.plan.variant }}
    pip_extra_index_urls:
      - "https://__token__:{{ vault_pypi_token }}@pypi.example.com/simple"
    registry_push: false

- name: Build vLLM from a source tree on the host (a patched checkout for old GPUs)
  gpufleet.vllm.vllm_image:
    plan: "{{ planned.plan }}"
    recipe_dir: /var/lib/gpufleet/build/{{ planned.plan.variant }}
    source_dir: /var/lib/gpufleet/src/vllm
    log_path: /var/log/gpufleet/build-{{ planned.plan.variant }}.log
    timeout: 14400
"""

RETURN = r"""
image:
  description:
    - Full reference of the image the service runs; for build plans with the content tag.
  returned: success
  type: str
  sample: registry.example.com:5000/gpufleet/vllm-cpu:0.32.0-3f9c2a7d41be
image_id:
  description: Engine ID of the image; null in check mode when the image is not on the host yet.
  returned: success
  type: str
  sample: sha256:49d3d430d3b2e0b8c6f53e5d0a5c1e1a8a8e8f2b6c4d0f3a1b2c3d4e5f6a7b8c
action:
  description:
    - What the run did (in check mode, would do).
    - V(present) (nothing to do), V(pulled), V(built) or V(pushed) (built, then pushed to the registry of the plan's image;
      or found on the host but missing from that registry, as after a push that failed, and pushed now).
  returned: success
  type: str
  sample: built
digest_inputs:
  description: What the content tag was computed from, without values that may hold credentials.
  returned: when the C(build) of O(plan) is true
  type: dict
  contains:
    digest:
      description: The full sha256 whose first 12 hex digits end the tag.
      type: str
      sample: 3f9c2a7d41be0f6a3d7c1b9e8f2a4c6d0e1b3a5c7d9f1e2a4b6c8d0e2f4a6b8c
    recipe_dir:
      description: The recipe directory, as given.
      type: str
      sample: /var/lib/gpufleet/build/cpu
    recipe_files:
      description: Number of files in the recipe directory.
      type: int
      sample: 5
    wheels:
      description: Number of wheels taken from O(wheelhouse).
      type: int
      sample: 2
    ca_certificates:
      description: Number of distinct extra CA certificates.
      type: int
      sample: 1
    source_dir:
      description: The vLLM source tree, as given; null when O(source_dir) is unset.
      type: str
      sample: /var/lib/gpufleet/src/vllm
    source_files:
      description: Number of files taken from O(source_dir) (0 when it is unset).
      type: int
      sample: 4210
    build_args:
      description: Names of the build arguments that count for the tag (values are not returned).
      type: list
      elements: str
      sample: [PIP_EXTRA_INDEX_URL, VLLM_VERSION]
    ignored_build_args:
      description: Names of the build arguments passed but left out of the tag because they only set build parallelism.
      type: list
      elements: str
      sample: [MAX_JOBS]
build_log:
  description: The last lines of the build (or of the failed pull or push) output, with the credentials of O(pip_extra_index_urls) masked.
  returned: when a build ran, or a pull, build or push failed
  type: list
  elements: str
  sample: ["Step 9/9 : ENTRYPOINT [\"/opt/vllm/bin/python\", \"-m\", \"vllm.entrypoints.openai.api_server\"]", "Successfully built 49d3d430d3b2"]
log_path:
  description: The file the whole build output was appended to (O(log_path)).
  returned: when O(log_path) is set and a build ran, successful or not
  type: str
  sample: /var/log/gpufleet/build-cpu.log
"""

import collections
import io
import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.gpufleet.vllm.plugins.module_utils._digest_cache import DigestCache
from ansible_collections.gpufleet.vllm.plugins.module_utils._image_recipe import (
    PARALLELISM_BUILD_ARGS,
    LineSplitter,
    RecipeError,
    build_failure_message,
    build_reference,
    cert_context_name,
    decide,
    hashed_build_args,
    is_step_line,
    recipe_digest,
    registry_host,
    scan_source,
    scan_tree,
    scan_wheelhouse,
    split_reference,
)

from ansible_collections.gpufleet.vllm.plugins.module_utils._docker_engine import (
    DOCKER_IMPORT_ERROR,
    MISSING_SDK,
    APIError,
    DockerException,
    NotFound,
    connect,
    image_id,
)

# Lines of build output kept for the result and for failure messages.
LOG_LINES = 40
# Beside the build log, the current "Step N/M : ..." line alone: a poller reads it without reading a log of many MB.
STEP_SUFFIX = ".step"


class ImageError(Exception):
    """A step failed; the message is one sentence saying what is wrong and what to do."""

    def __init__(self, message, log=None):
        super(ImageError, self).__init__(message)
        self.message = message
        self.log = log


def _check_plan(plan):
    missing = [key for key in ("variant", "image", "build") if key not in plan]
    if missing:
        raise RecipeError("The plan lacks %s; pass the plan returned by gpufleet.vllm.vllm_plan." % ", ".join(missing))
    if not isinstance(plan["build"], bool):
        raise RecipeError("The plan's build must be true or false, not %r; pass the plan returned by gpufleet.vllm.vllm_plan." % (plan["build"],))
    build_args = plan.get("build_args") or {}
    if not isinstance(build_args, dict):
        raise RecipeError("The plan's build_args must be a mapping; pass the plan returned by gpufleet.vllm.vllm_plan.")
    return plan["build"], str(plan["image"]), str(plan["variant"]), build_args


def _effective_build_args(plan_args, pip_urls, extra_args):
    args = dict((str(key), "" if value is None else str(value)) for key, value in plan_args.items())
    if pip_urls:
        args["PIP_EXTRA_INDEX_URL"] = " ".join(str(url) for url in pip_urls)
    for key, value in extra_args.items():
        args[str(key)] = "" if value is None else str(value)
    return args


class Recipe(object):
    """Everything one build consumes, read from the host, with its digest."""

    def __init__(self, recipe_dir, wheelhouse, ca_certificates, build_args, source_dir, cache):
        if not recipe_dir:
            raise RecipeError("The plan builds its image, so recipe_dir (the directory holding the variant's Dockerfile) is required.")
        if not os.path.isfile(os.path.join(recipe_dir, "Dockerfile")):
            raise RecipeError("recipe_dir %s holds no Dockerfile; copy the variant's recipe there first." % recipe_dir)
        if wheelhouse and not os.path.isdir(wheelhouse):
            raise RecipeError("wheelhouse %s is not a directory on the host; copy the wheels there or leave wheelhouse unset." % wheelhouse)
        if source_dir and not os.path.isdir(source_dir):
            raise RecipeError("source_dir %s is not a directory on the host; copy the vLLM source tree there or leave source_dir unset." % source_dir)
        self.recipe_dir = recipe_dir
        self.wheelhouse = wheelhouse
        self.source_dir = source_dir
        self.build_args = build_args
        digest = cache.sha256
        try:
            self.recipe_files = scan_tree(recipe_dir, digest)
            self.wheels = scan_wheelhouse(wheelhouse, digest) if wheelhouse else []
            self.sources = scan_source(source_dir, digest) if source_dir else []
            self.certs = _read_certs(ca_certificates, digest)
        except (IOError, OSError) as exc:
            raise RecipeError("Cannot read the build inputs (%s); check the paths and their permissions." % to_native(exc))
        self.digest = recipe_digest(self.recipe_files, build_args, self.wheels, [sha for dummy, sha in self.certs], self.sources)

    def summary(self):
        return {
            "digest": self.digest,
            "recipe_dir": self.recipe_dir,
            "recipe_files": len(self.recipe_files),
            "wheels": len(self.wheels),
            "ca_certificates": len(self.certs),
            "source_dir": self.source_dir,
            "source_files": len(self.sources),
            "build_args": [name for name, dummy in hashed_build_args(self.build_args)],
            "ignored_build_args": sorted(name for name in self.build_args if name in PARALLELISM_BUILD_ARGS),
        }

    def assemble(self, context):
        """Write the build context: the recipe, then wheels/, certs/ and source/ (always present, as the Dockerfiles COPY them)."""
        shutil.copytree(self.recipe_dir, context, symlinks=False)
        wheels_dir, certs_dir, source_dir = (os.path.join(context, name) for name in ("wheels", "certs", "source"))
        for directory in (wheels_dir, certs_dir, source_dir):
            if not os.path.isdir(directory):
                os.makedirs(directory)
        for name, dummy in self.wheels:
            shutil.copyfile(os.path.join(self.wheelhouse, name), os.path.join(wheels_dir, name))
        for path, sha in self.certs:
            shutil.copyfile(path, os.path.join(certs_dir, cert_context_name(sha)))
        # Exactly the files that were hashed, so that the tag describes the context; shutil.copy keeps
        # the mode, as build scripts in the tree may need their executable bit.
        for relative, dummy in self.sources:
            target = os.path.join(source_dir, *relative.split("/"))
            if not os.path.isdir(os.path.dirname(target)):
                os.makedirs(os.path.dirname(target))
            shutil.copy(os.path.join(self.source_dir, *relative.split("/")), target)


def _read_certs(paths, digest):
    """[(path, sha256)] of the extra CA certificates, one per distinct content."""
    certs = []
    seen = set()
    for path in paths:
        if not os.path.isfile(path):
            raise RecipeError("CA certificate %s is not a file on the host; copy it there or drop it from ca_certificates." % path)
        sha = digest(path)
        if sha not in seen:
            seen.add(sha)
            certs.append((path, sha))
    return certs


class Output(object):
    """The output lines of one pull, build or push, masked.

    The last LOG_LINES are kept for the result; with a log_path, every line is also appended there
    as it arrives and flushed, so that an operator can follow a build that runs for hours.
    """

    def __init__(self, redact, log_path=None, warn=None):
        self.redact = redact
        self.log_path = log_path
        self.warn = warn
        self.tail = collections.deque(maxlen=LOG_LINES)
        self.step = None
        self._lines = LineSplitter()
        self._handle = None
        self._warned = set()

    def open(self, header):
        """Start appending to log_path, if any, with a header line."""
        if not self.log_path:
            return
        try:
            directory = os.path.dirname(self.log_path)
            if directory and not os.path.isdir(directory):
                os.makedirs(directory)
            # The step of an earlier build would otherwise show until this one's first step.
            if os.path.lexists(self.log_path + STEP_SUFFIX):
                os.unlink(self.log_path + STEP_SUFFIX)
            descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._handle = io.open(descriptor, "a", encoding="utf-8", errors="replace")
        except (IOError, OSError) as exc:
            raise ImageError("Cannot write the build log %s (%s); make its directory writable or change log_path." % (self.log_path, to_native(exc)))
        self._write(header)

    def text(self, text):
        """A chunk of output text, which may end inside a line."""
        for line in self._lines.feed(to_native(text)):
            self.line(line)

    def line(self, line):
        line = self.redact(line.rstrip())
        if line.strip():
            self.tail.append(line)
        if is_step_line(line):
            self.step = line
            self._write_step(line)
        self._write(line)

    def close(self, error=None):
        """End of the output: the unfinished last line and the error, if any, are written and the log is closed."""
        for line in self._lines.rest():
            self.line(line)
        if error:
            self._write("ERROR: %s" % error)
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _write_step(self, line):
        """Replace <log_path>.step with the current step line, whole (written aside, then renamed), for pollers."""
        if self._handle is None:
            return
        step_path = self.log_path + STEP_SUFFIX
        try:
            with io.open(step_path + ".new", "w", encoding="utf-8", errors="replace") as handle:
                handle.write(line + "\n")
            os.rename(step_path + ".new", step_path)
        except (IOError, OSError) as exc:
            self.warn_once("Writing the build step file %s failed (%s); the build went on." % (step_path, to_native(exc)))

    def warn_once(self, message):
        if self.warn and message not in self._warned:
            self._warned.add(message)
            self.warn(message)

    def _write(self, line):
        if self._handle is None:
            return
        try:
            self._handle.write(line + "\n")
            self._handle.flush()
        except (IOError, OSError) as exc:
            # A full log disk must not fail a build that may have run for hours: the log stops, the run says so.
            handle, self._handle = self._handle, None
            try:
                handle.close()
            except (IOError, OSError):
                pass
            self.warn_once("Writing the build log %s failed (%s), so it ends early; the build went on." % (self.log_path, to_native(exc)))


class Engine(object):
    """The few Docker engine API calls the module needs (all present in Docker SDK 5.0.3)."""

    def __init__(self, docker_host, timeout, secrets, warn=None):
        self.docker_host = docker_host
        self.timeout = timeout
        self.secrets = secrets
        self.warn = warn
        self.api = connect(docker_host, timeout, ImageError)

    def redact(self, text):
        text = to_native(text)
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "********")
        return text

    def image_id(self, reference):
        return image_id(self.api, reference, ImageError)

    def in_registry(self, reference):
        """(True, None) when the registry has the reference; (False, reason) otherwise. Pulls nothing."""
        try:
            self.api.inspect_distribution(reference)
        except NotFound as exc:
            return False, None if "manifest unknown" in to_native(exc) else to_native(exc)
        except APIError as exc:
            return False, to_native(exc)
        return True, None

    def _stream(self, chunks, output, what):
        """Feed the engine's progress chunks to output; returns the engine's error, None on success."""
        error = None
        try:
            for chunk in chunks:
                if not isinstance(chunk, dict):
                    continue
                if chunk.get("stream"):
                    output.text(chunk["stream"])
                if chunk.get("status") and what != "build":
                    output.line(" ".join(str(chunk[key]) for key in ("id", "status") if chunk.get(key)))
                if chunk.get("error"):
                    error = self.redact(chunk["error"]).strip()
        except (APIError, DockerException) as exc:
            error = self.redact(exc)
        except (IOError, OSError) as exc:
            # requests raises a socket timeout (ReadTimeoutError, an OSError) when the engine is silent too long.
            error = "%s (no answer within %d seconds; raise timeout)" % (self.redact(exc), self.timeout)
        output.close(error)
        return error

    def pull(self, reference):
        repository, tag = split_reference(reference)
        output = Output(self.redact)
        error = self._stream(self.api.pull(repository, tag=tag, stream=True, decode=True), output, "pull")
        if error:
            raise ImageError("Pulling %s failed (%s); check that the host can reach the registry." % (reference, error), list(output.tail))
        return list(output.tail)

    def build(self, recipe, reference, build_args, labels, tmpdir, log_path=None):
        output = Output(self.redact, log_path, self.warn)
        workdir = tempfile.mkdtemp(prefix="gpufleet-build-", dir=tmpdir)
        try:
            context = os.path.join(workdir, "context")
            try:
                recipe.assemble(context)
            except (IOError, OSError, shutil.Error) as exc:
                raise ImageError("Cannot assemble the build context in %s (%s); check the free space there." % (workdir, to_native(exc)))
            output.open("==== gpufleet.vllm.vllm_image: building %s at %s" % (reference, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
            try:
                chunks = self.api.build(
                    path=context, tag=reference, rm=True, forcerm=True, pull=False, buildargs=build_args, labels=labels,
                    decode=True, timeout=self.timeout,
                )
            except (APIError, DockerException, IOError, OSError) as exc:
                # Refused before any output (a context the engine rejects, an upload cut short): reported as the build's error.
                chunks = [{"error": to_native(exc)}]
            error = self._stream(chunks, output, "build")
        finally:
            output.close()
            shutil.rmtree(workdir, ignore_errors=True)
        if error:
            raise ImageError(build_failure_message(reference, error, output.step, output.tail, log_path), list(output.tail))
        return list(output.tail)

    def push(self, reference):
        repository, tag = split_reference(reference)
        output = Output(self.redact)
        error = self._stream(self.api.push(repository, tag=tag, stream=True, decode=True), output, "push")
        if error:
            raise ImageError(
                "Pushing %s failed (%s); the image is built on the host, check the registry and the engine's login to it." % (reference, error),
                list(output.tail),
            )
        return list(output.tail)


def _secrets(urls):
    """Strings to mask in output: each URL and its user:password part."""
    secrets = []
    for url in urls:
        url = str(url)
        secrets.append(url)
        scheme, sep, rest = url.partition("://")
        userinfo, at, dummy = rest.partition("@")
        if sep and at and "/" not in userinfo:
            secrets.append(userinfo)
            secrets.extend(part for part in userinfo.split(":") if len(part) >= 4)
    return sorted(set(secrets), key=len, reverse=True)


# The image a run must end with; recipe is None for prebuilt images, which are never built.
Target = collections.namedtuple("Target", "build plan_image variant recipe reference")


def _target(module):
    """The Target for the module's options: for build plans, the recipe is read and hashed here."""
    params = module.params
    build, plan_image, variant, plan_args = _check_plan(params["plan"])
    if not build:
        return Target(False, plan_image, variant, None, plan_image)
    build_args = _effective_build_args(plan_args, params["pip_extra_index_urls"], params["build_args"])
    cache = DigestCache(params["digest_cache"])
    recipe = Recipe(params["recipe_dir"], params["wheelhouse"], params["ca_certificates"], build_args, params["source_dir"], cache)
    try:
        cache.save()
    except (IOError, OSError) as exc:
        module.warn("Cannot write the digest cache %s (%s): the next run hashes the build inputs again." % (cache.path, to_native(exc)))
    return Target(True, plan_image, variant, recipe, build_reference(plan_image, recipe.digest))


def _choose_action(module, engine, target, image_id):
    """(action, push) of decide() for an image the engine holds under image_id (None when absent)."""
    repository, dummy = split_reference(target.reference)
    registry = registry_host(repository)
    in_registry, registry_error = False, None
    # A build plan without a registry host names a local-only repository: Docker Hub is not asked about it.
    # A built image the host holds is looked up too when it should be pushed, so that a push that
    # failed on an earlier run is made now.
    pushing = target.build and registry and module.params["registry_push"]
    if (image_id is None and (registry or not target.build)) or (image_id is not None and pushing):
        in_registry, registry_error = engine.in_registry(target.reference)
    try:
        action, push = decide(image_id is not None, in_registry, target.build, registry, module.params["registry_push"])
    except RecipeError:
        raise ImageError(
            "The prebuilt image %s is neither on the host nor available from its registry (%s), and prebuilt images are never built; "
            "check the tag and the host's access to the registry, or load the image into the engine." % (target.reference, registry_error or "not found")
        )
    if action == "built" and registry and registry_error:
        # A build that could not be pushed would leave an image no other host can pull: stop first.
        if push:
            raise ImageError("The registry %s does not answer for %s (%s); start it or correct the registry the plan names "
                             "(vllm_image_registry), nothing was built or pushed." % (registry, target.reference, registry_error))
        module.warn("Could not ask the registry %s for %s (%s); building it." % (registry, target.reference, registry_error))
    return action, push


def _make_image(module, engine, target, action, push):
    """Pull, or build and maybe push, the image; returns the build log, None after a pull."""
    if action == "pulled":
        engine.pull(target.reference)
        return None
    if action == "pushed":
        engine.push(target.reference)
        return None
    labels = {
        "io.gpufleet.recipe-digest": target.recipe.digest,
        "io.gpufleet.variant": target.variant,
        "io.gpufleet.vllm-version": str(module.params["plan"].get("vllm_version") or split_reference(target.plan_image)[1] or ""),
    }
    log = engine.build(target.recipe, target.reference, target.recipe.build_args, labels, module.tmpdir, module.params["log_path"])
    if push:
        engine.push(target.reference)
    return log


def _ensure_image(module, result):
    """Find, pull or build the image, filling result; raises RecipeError or ImageError."""
    params = module.params
    target = _target(module)
    if target.recipe is not None:
        result["digest_inputs"] = target.recipe.summary()
    result["image"] = target.reference

    engine = Engine(params["docker_host"], params["timeout"], _secrets(params["pip_extra_index_urls"]), module.warn)
    image_id = engine.image_id(target.reference)
    action, push = _choose_action(module, engine, target, image_id)
    result["action"] = "pushed" if push else action
    result["changed"] = action != "present"
    if module._diff:
        result["diff"] = {"before": {"image": target.reference if image_id else None}, "after": {"image": target.reference}}
    if module.check_mode or action == "present":
        result["image_id"] = image_id
        return

    if action == "built" and params["log_path"]:
        result["log_path"] = params["log_path"]
    build_log = _make_image(module, engine, target, action, push)
    if build_log is not None:
        result["build_log"] = build_log
    image_id = engine.image_id(target.reference)
    if image_id is None:
        step = {"built": "build", "pulled": "pull", "pushed": "push"}[action]
        raise ImageError("The engine reports no image %s after the %s; check the engine's log." % (target.reference, step))
    result["image_id"] = image_id


def main():
    module = AnsibleModule(
        argument_spec=dict(
            plan=dict(type="dict", required=True),
            recipe_dir=dict(type="path"),
            wheelhouse=dict(type="path"),
            source_dir=dict(type="path"),
            digest_cache=dict(type="path"),
            log_path=dict(type="path"),
            ca_certificates=dict(type="list", elements="path", default=[]),
            pip_extra_index_urls=dict(type="list", elements="str", default=[], no_log=True),
            build_args=dict(type="dict", default={}),
            registry_push=dict(type="bool", default=True),
            docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
            timeout=dict(type="int", default=3600),
        ),
        supports_check_mode=True,
    )
    if DOCKER_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib(MISSING_SDK), exception=DOCKER_IMPORT_ERROR)

    result = dict(changed=False)
    try:
        _ensure_image(module, result)
    except RecipeError as exc:
        module.fail_json(msg=exc.message, **result)
    except ImageError as exc:
        if exc.log is not None:
            result["build_log"] = exc.log
        module.fail_json(msg=exc.message, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
