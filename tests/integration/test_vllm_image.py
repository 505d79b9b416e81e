# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""gpufleet.vllm.vllm_image against this machine's real Docker engine, through real Ansible.

Needs a Docker engine (the Makefile starts one with tests/sandbox/ensure-docker.sh), the local image
gpufleet/sandbox-base:bookworm (tests/sandbox/build-base-image.sh) and, for the registry tests,
Debian's docker-registry package. Anything missing makes the tests fail, never skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(REPO_ROOT, ".build", "collections")
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
BASE_IMAGE = "gpufleet/sandbox-base:bookworm"
DOCKER_HOST = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
SECRET = "tok3n-s3cret-value"
PIP_URL = "https://__token__:%s@pypi.invalid/simple" % SECRET
WHEEL = "tinypkg-0.1-py3-none-any.whl"
CERT_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBgpufleettest\n-----END CERTIFICATE-----\n"
# The RUN line makes the build log show what reached wheels/ and certs/ of the context; the run id
# keeps the engine's build cache (and images of earlier runs) from standing in for it.
DOCKERFILE = "FROM %s\nCOPY wheels/ /w/\nCOPY certs/ /c/\nRUN echo listing %%s; ls /w /c\n" % BASE_IMAGE


@pytest.fixture(scope="module")
def engine():
    """Docker SDK client of this machine's engine; fails the tests (never skips) when there is none."""
    try:
        import docker
    except ImportError:
        pytest.fail("The Docker SDK for Python is missing from %s; install requirements.txt into the venv." % sys.executable)
    try:
        client = docker.APIClient(base_url=DOCKER_HOST, version="auto", timeout=120)
        client.ping()
    except Exception as exc:  # pylint: disable=broad-except
        pytest.fail("No Docker engine answers at %s (%s); run tests/sandbox/ensure-docker.sh (make does) and retry." % (DOCKER_HOST, exc))
    try:
        client.inspect_image(BASE_IMAGE)
    except docker.errors.NotFound:
        pytest.fail("The image %s is missing; build it with tests/sandbox/build-base-image.sh." % BASE_IMAGE)
    if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "gpufleet", "vllm", "plugins")):
        pytest.fail("gpufleet.vllm is not on %s; run `make unit` (it links the checkout there) or set ANSIBLE_COLLECTIONS_PATH." % COLLECTIONS)
    return client


@pytest.fixture
def repository(engine):
    """A repository name of its own for one test; every image under it is removed afterwards."""
    name = "gpufleet-it-%s/vllm-cpu" % uuid.uuid4().hex[:10]
    yield name
    for image in engine.images(name=name):
        for tag in image.get("RepoTags") or ():
            engine.remove_image(tag, force=True)
    for image in engine.images():
        for tag in image.get("RepoTags") or ():
            if name in tag:
                engine.remove_image(tag, force=True)


@pytest.fixture
def inputs(tmp_path):
    """Recipe directory, wheelhouse and CA certificate on 'the host' (this machine)."""
    recipe = tmp_path / "recipe"
    (recipe / "wheels").mkdir(parents=True)
    (recipe / "certs").mkdir()
    (recipe / "Dockerfile").write_text(DOCKERFILE % uuid.uuid4().hex)
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    (wheelhouse / WHEEL).write_bytes(b"not really a wheel")
    (wheelhouse / "notes.txt").write_text("ignored: not a wheel")
    cert = tmp_path / "corp-ca.pem"
    cert.write_bytes(CERT_PEM)
    return {"recipe_dir": str(recipe), "wheelhouse": str(wheelhouse), "ca_certificates": [str(cert)]}


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry serving on 127.0.0.1 (an insecure registry Docker trusts by default)."""
    binary = shutil.which("docker-registry")
    if not binary:
        pytest.fail("docker-registry is missing; install Debian's package (apt-get install docker-registry) and retry.")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    storage = tmp_path / "registry"
    storage.mkdir()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
        "http:\n  addr: 127.0.0.1:%d\n" % (storage, port)
    )
    log = open(str(tmp_path / "registry.log"), "wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    try:
        for dummy in range(100):
            if process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url + "/v2/", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not answer on %s within 10 s; see %s." % (url, log.name))
        if process.poll() is not None:
            pytest.fail("docker-registry exited with %s; see %s." % (process.returncode, log.name))
        yield {"host": "127.0.0.1:%d" % port, "url": url}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def run_module(args, check=False, diff=False):
    """Run gpufleet.vllm.vllm_image ad hoc on localhost; (result dict, raw stdout)."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        # minimal prints "localhost | STATUS => {json}" with the module's result untouched (the json
        # callback of ansible.posix overwrites a result's "action" key with the task's action).
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "0",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
    })
    command = [
        ANSIBLE, "localhost", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable,
        "-m", "gpufleet.vllm.vllm_image", "-a", json.dumps(dict({"docker_host": DOCKER_HOST}, **args)),
    ]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    completed = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900, check=False)
    stdout = completed.stdout.decode("utf-8", "replace")
    # With --diff the diff comes first.
    match = re.search(r"^localhost \| ([A-Z]+)!? => ", stdout, re.M)
    try:
        if not match:
            raise ValueError("no result line")
        result = json.loads(stdout[match.end():])
    except ValueError:
        pytest.fail("ansible gave no JSON result (rc %d):\n%s\n%s" % (completed.returncode, stdout, completed.stderr.decode("utf-8", "replace")))
    # The callback shows failure in the status word, not in the result.
    result["failed"] = match.group(1) == "FAILED"
    result["stderr"] = completed.stderr.decode("utf-8", "replace")
    assert SECRET not in stdout, "a pip index credential leaked into the output"
    return result, stdout


def image_exists(engine, reference):
    import docker

    try:
        engine.inspect_image(reference)
    except docker.errors.NotFound:
        return False
    return True


def plan(image):
    return {"variant": "cpu", "image": image, "build": True, "build_args": {"VLLM_VERSION": "0.1"}, "vllm_version": "0.1"}


def test_build_check_apply_idempotence_and_rebuild(engine, repository, inputs):
    args = dict(inputs, plan=plan("%s:0.1" % repository), pip_extra_index_urls=[PIP_URL], build_args={"MAX_JOBS": "2"})

    checked, stdout = run_module(args, check=True, diff=True)
    assert not checked.get("failed"), checked.get("msg")
    assert checked["changed"] is True
    assert checked["action"] == "built"
    assert checked["image_id"] is None
    reference = checked["image"]
    digest = checked["digest_inputs"]["digest"]
    assert reference == "%s:0.1-%s" % (repository, digest[:12])
    assert checked["digest_inputs"]["wheels"] == 1
    assert checked["digest_inputs"]["ca_certificates"] == 1
    assert checked["digest_inputs"]["ignored_build_args"] == ["MAX_JOBS"]
    # The callback prints the diff instead of returning it.
    assert '-    "image": null' in stdout and '+    "image": "%s"' % reference in stdout
    assert not image_exists(engine, reference), "check mode built the image"

    built, dummy = run_module(args)
    assert not built.get("failed"), built.get("msg")
    assert (built["changed"], built["action"], built["image"]) == (True, "built", reference)
    details = engine.inspect_image(reference)
    assert built["image_id"] == details["Id"]
    assert details["Config"]["Labels"]["io.gpufleet.recipe-digest"] == digest
    log = "\n".join(built["build_log"])
    assert WHEEL in log and "notes.txt" not in log
    assert "ca-" in log and ".crt" in log

    for check in (True, False):
        again, dummy = run_module(args, check=check)
        assert not again.get("failed"), again.get("msg")
        assert (again["changed"], again["action"], again["image"], again["image_id"]) == (False, "present", reference, details["Id"])

    with open(os.path.join(inputs["recipe_dir"], "Dockerfile"), "a") as handle:
        handle.write("# one more byte\n")
    rebuilt, dummy = run_module(args)
    assert not rebuilt.get("failed"), rebuilt.get("msg")
    assert rebuilt["changed"] is True and rebuilt["action"] == "built"
    assert rebuilt["image"] != reference and rebuilt["image"].startswith(repository + ":0.1-")
    assert image_exists(engine, rebuilt["image"])


def test_failed_build_reports_the_log(engine, repository, inputs):
    with open(os.path.join(inputs["recipe_dir"], "Dockerfile"), "a") as handle:
        handle.write("RUN echo about to fail; exit 3\n")
    result, dummy = run_module(dict(inputs, plan=plan("%s:0.1" % repository)))
    assert result.get("failed") is True
    assert "returned a non-zero code: 3" in result["msg"]
    assert "about to fail" in "\n".join(result["build_log"])
    assert not image_exists(engine, result["image"])


def test_push_then_pull_from_a_registry(engine, repository, inputs, registry):
    args = dict(inputs, plan=plan("%s/%s:0.1" % (registry["host"], repository)))

    checked, dummy = run_module(args, check=True)
    assert (checked["changed"], checked["action"]) == (True, "pushed")
    # A tag the registry lacks is an ordinary answer, not a registry problem worth a warning.
    assert "Could not ask the registry" not in checked["stderr"]

    pushed, dummy = run_module(args)
    assert not pushed.get("failed"), pushed.get("msg")
    assert (pushed["changed"], pushed["action"]) == (True, "pushed")
    reference = pushed["image"]
    tag = reference.rsplit(":", 1)[1]
    with urllib.request.urlopen("%s/v2/%s/tags/list" % (registry["url"], repository), timeout=10) as answer:
        assert tag in json.loads(answer.read().decode("utf-8"))["tags"]

    # A second host: the registry has the image, this engine does not.
    engine.remove_image(reference, force=True)
    checked, dummy = run_module(args, check=True)
    assert (checked["changed"], checked["action"], checked["image_id"]) == (True, "pulled", None)
    assert not image_exists(engine, reference), "check mode pulled the image"

    pulled, dummy = run_module(args)
    assert not pulled.get("failed"), pulled.get("msg")
    assert (pulled["changed"], pulled["action"], pulled["image"]) == (True, "pulled", reference)
    assert pulled["image_id"] == engine.inspect_image(reference)["Id"]
    assert "build_log" not in pulled

    again, dummy = run_module(args)
    assert (again["changed"], again["action"]) == (False, "present")


def test_prebuilt_images_are_pulled_never_built(engine, repository, inputs, registry):
    pushed, dummy = run_module(dict(inputs, plan=plan("%s/%s:0.1" % (registry["host"], repository)), registry_push=True))
    assert pushed["action"] == "pushed", pushed.get("msg")
    engine.remove_image(pushed["image"], force=True)

    prebuilt = {"variant": "upstream", "image": pushed["image"], "build": False, "build_args": {}}
    pulled, dummy = run_module({"plan": prebuilt})
    assert not pulled.get("failed"), pulled.get("msg")
    assert (pulled["changed"], pulled["action"], pulled["image"]) == (True, "pulled", pushed["image"])
    assert "digest_inputs" not in pulled

    missing = dict(prebuilt, image="%s/%s:no-such-tag" % (registry["host"], repository))
    for check in (True, False):
        failed, dummy = run_module({"plan": missing}, check=check)
        assert failed.get("failed") is True
        assert "never built" in failed["msg"]


def test_registry_push_false_keeps_the_image_local(engine, repository, inputs, registry):
    result, dummy = run_module(dict(inputs, plan=plan("%s/%s:0.1" % (registry["host"], repository)), registry_push=False))
    assert not result.get("failed"), result.get("msg")
    assert (result["changed"], result["action"]) == (True, "built")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen("%s/v2/%s/tags/list" % (registry["url"], repository), timeout=10)


def test_an_image_the_registry_lacks_is_pushed_on_the_next_run(engine, repository, inputs, registry):
    # Built but not pushed, as a push that failed leaves it: the next run pushes and builds nothing.
    args = dict(inputs, plan=plan("%s/%s:0.1" % (registry["host"], repository)))
    built, dummy = run_module(dict(args, registry_push=False))
    assert (built["changed"], built["action"]) == (True, "built"), built.get("msg")
    image_id = built["image_id"]

    checked, dummy = run_module(args, check=True)
    assert (checked["changed"], checked["action"]) == (True, "pushed")
    pushed, dummy = run_module(args)
    assert not pushed.get("failed"), pushed.get("msg")
    assert (pushed["changed"], pushed["action"], pushed["image_id"]) == (True, "pushed", image_id)
    assert "build_log" not in pushed
    tag = pushed["image"].rsplit(":", 1)[1]
    with urllib.request.urlopen("%s/v2/%s/tags/list" % (registry["url"], repository), timeout=10) as answer:
        assert tag in json.loads(answer.read().decode("utf-8"))["tags"]

    again, dummy = run_module(args)
    assert (again["changed"], again["action"]) == (False, "present")
