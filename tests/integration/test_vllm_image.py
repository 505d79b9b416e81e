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


def engine_client():
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
    return client


@pytest.fixture(scope="module")
def engine():
    """The engine's client, once the base image and the collection these tests need are in place."""
    client = engine_client()
    import docker  # only now: engine_client() fails the tests with a hint when the SDK is missing

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


def module_command(args, check=False, diff=False, module="gpufleet.vllm.vllm_image"):
    """(command, environment) that runs a module of the collection ad hoc on localhost."""
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
        "-m", module, "-a", json.dumps(dict({"docker_host": DOCKER_HOST}, **args)),
    ]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    return command, env


def parse_result(returncode, stdout, stderr):
    """(result dict, stdout) of an ad hoc run's output."""
    stdout = stdout.decode("utf-8", "replace")
    # With --diff the diff comes first.
    match = re.search(r"^localhost \| ([A-Z]+)!? => ", stdout, re.M)
    try:
        if not match:
            raise ValueError("no result line")
        result = json.loads(stdout[match.end():])
    except ValueError:
        pytest.fail("ansible gave no JSON result (rc %d):\n%s\n%s" % (returncode, stdout, stderr.decode("utf-8", "replace")))
    # The callback shows failure in the status word, not in the result.
    result["failed"] = match.group(1) == "FAILED"
    result["stderr"] = stderr.decode("utf-8", "replace")
    assert SECRET not in stdout, "a pip index credential leaked into the output"
    return result, stdout


def run_module(args, check=False, diff=False, module="gpufleet.vllm.vllm_image"):
    """Run a module of the collection (vllm_image unless told) ad hoc on localhost; (result dict, raw stdout)."""
    command, env = module_command(args, check, diff, module)
    completed = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=900, check=False)
    return parse_result(completed.returncode, completed.stdout, completed.stderr)


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


def test_an_unanswering_registry_stops_the_run_before_any_build(engine, repository, inputs):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = "127.0.0.1:%d" % probe.getsockname()[1]
    args = dict(inputs, plan=plan("%s/%s:0.1" % (closed, repository)))
    for check in (True, False):
        failed, dummy = run_module(args, check=check)
        assert failed.get("failed") is True
        assert failed["msg"].startswith("The registry %s does not answer for %s/%s:0.1-" % (closed, closed, repository))
        assert failed["msg"].endswith("nothing was built or pushed.")
        assert "build_log" not in failed
    assert not [image for image in engine.images() if any(closed in tag for tag in image.get("RepoTags") or [])]


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


# A RUN that prints the index URL (with its credential), then a step that fails after a few lines.
FAILING_DOCKERFILE = (
    "FROM %s\nARG PIP_EXTRA_INDEX_URL\nRUN echo \"index $PIP_EXTRA_INDEX_URL\"; echo run %%s\n"
    "RUN for n in $(seq 1 30); do echo \"output line $n\"; done; echo about to fail; exit 3\nRUN echo never reached\n"
) % BASE_IMAGE


def test_failed_build_message_names_the_step_and_the_log_file(engine, repository, inputs, tmp_path):
    with open(os.path.join(inputs["recipe_dir"], "Dockerfile"), "w") as handle:
        handle.write(FAILING_DOCKERFILE % uuid.uuid4().hex)
    log_path = tmp_path / "logs" / "build.log"
    result, dummy = run_module(dict(inputs, plan=plan("%s:0.1" % repository), pip_extra_index_urls=[PIP_URL], log_path=str(log_path)))
    assert result.get("failed") is True
    message = result["msg"]
    first, rest = message.split("\n", 1)
    # The classic builder counts the module's labels as steps after the Dockerfile's.
    assert re.match(r"Building %s failed at Step 4/\d+ : RUN for n in" % re.escape(result["image"]), first), first
    assert "returned a non-zero code: 3" in first
    assert first.endswith("the full log is in %s." % log_path)
    quoted = rest.splitlines()
    assert quoted[0] == "Last 15 lines of the build log:"
    assert len(quoted) == 16 and "about to fail" in quoted and "output line 30" in quoted and "output line 10" not in quoted
    assert result["log_path"] == str(log_path)
    assert not image_exists(engine, result["image"])

    text = log_path.read_text()
    assert SECRET not in text, "a pip index credential leaked into the build log"
    lines = text.splitlines()
    assert lines[0].startswith("==== gpufleet.vllm.vllm_image: building %s at " % result["image"])
    assert "index ********" in lines
    assert any(re.match(r"Step 4/\d+ : RUN for n in \$\(seq 1 30\); do echo \"output line \$n\"; done; echo about to fail; exit 3$", line)
               for line in lines)
    assert all("output line %d" % number in lines for number in range(1, 31))
    assert lines[-1].startswith("ERROR: The command '/bin/sh -c for n in") and lines[-1].endswith("returned a non-zero code: 3")
    assert re.match(r"Step 4/\d+ : RUN for n in ", (tmp_path / "logs" / "build.log.step").read_text())

    # A second run appends, so that the log of the earlier attempt survives.
    again, dummy = run_module(dict(inputs, plan=plan("%s:0.1" % repository), pip_extra_index_urls=[PIP_URL], log_path=str(log_path)))
    assert again.get("failed") is True
    assert log_path.read_text().startswith(text) and log_path.read_text().count("==== gpufleet.vllm.vllm_image: building") == 2


def test_build_log_is_written_as_the_build_runs(engine, repository, inputs, tmp_path):
    # Each line must reach the file while the build still runs, so that `tail -f` and a poller see progress.
    with open(os.path.join(inputs["recipe_dir"], "Dockerfile"), "a") as handle:
        handle.write("RUN echo first-marker; sleep 12; echo second-marker\n")
    log_path = tmp_path / "build.log"
    args = dict(inputs, plan=plan("%s:0.1" % repository), log_path=str(log_path))

    checked, dummy = run_module(args, check=True)
    assert (checked["changed"], checked["action"]) == (True, "built")
    assert "log_path" not in checked
    assert not log_path.exists(), "check mode wrote the build log"

    command, env = module_command(args)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        # Output lines are the markers alone; the Step line names both.
        while time.time() < deadline and "first-marker" not in (log_path.read_text().splitlines() if log_path.exists() else ()):
            assert process.poll() is None, "the module ended before its build printed first-marker"
            time.sleep(0.2)
        midway = log_path.read_text()
        assert "first-marker" in midway.splitlines() and "second-marker" not in midway.splitlines()
        assert re.search(r"^Step 5/\d+ : RUN echo first-marker", midway, re.M), midway
        assert re.match(r"Step 5/\d+ : RUN echo first-marker; sleep 12; echo second-marker\n$", (tmp_path / "build.log.step").read_text())
        stdout, stderr = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    built, dummy = parse_result(process.returncode, stdout, stderr)
    assert not built.get("failed"), built.get("msg")
    assert (built["action"], built["log_path"]) == ("built", str(log_path))
    final = log_path.read_text()
    assert "second-marker" in final.splitlines() and re.search(r"^Successfully built [0-9a-f]{12}$", final, re.M)

    again, dummy = run_module(args)
    assert (again["changed"], again["action"]) == (False, "present")
    assert "log_path" not in again
    assert log_path.read_text() == final, "a run without a build wrote to the build log"


SOURCE_DOCKERFILE = "FROM %s\nCOPY source/ /src/\nRUN echo listing %%s; find /src -type f | sort\n" % BASE_IMAGE


def _source_tree(root):
    for relative, content in (
        ("setup.py", "from setuptools import setup\nsetup()\n"),
        ("vllm/__init__.py", "__version__ = '0.1'\n"),
        ("vllm/__pycache__/__init__.cpython-311.pyc", "bytecode"),
        (".git/HEAD", "ref: refs/heads/main\n"),
    ):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def test_source_dir_goes_into_the_context_and_the_tag(engine, repository, inputs, tmp_path):
    with open(os.path.join(inputs["recipe_dir"], "Dockerfile"), "w") as handle:
        handle.write(SOURCE_DOCKERFILE % uuid.uuid4().hex)
    source = _source_tree(tmp_path / "vllm-src")
    args = dict(inputs, plan=plan("%s:0.1" % repository))

    # Without a source tree source/ is still there, empty, and the tag is the one of the same inputs before source trees counted.
    bare, dummy = run_module(args)
    assert not bare.get("failed"), bare.get("msg")
    assert (bare["digest_inputs"]["source_dir"], bare["digest_inputs"]["source_files"]) == (None, 0)

    built, dummy = run_module(dict(args, source_dir=str(source)))
    assert not built.get("failed"), built.get("msg")
    assert built["action"] == "built" and built["image"] != bare["image"]
    assert (built["digest_inputs"]["source_dir"], built["digest_inputs"]["source_files"]) == (str(source), 2)
    listed = [line for line in built["build_log"] if line.startswith("/src/")]
    assert listed == ["/src/setup.py", "/src/vllm/__init__.py"]

    # History and bytecode do not count; the code does.
    (source / ".git" / "ORIG_HEAD").write_text("0123\n")
    (source / "vllm" / "__pycache__" / "extra.pyc").write_text("more bytecode")
    same, dummy = run_module(dict(args, source_dir=str(source)), check=True)
    assert (same["changed"], same["action"], same["image"]) == (False, "present", built["image"])
    (source / "vllm" / "__init__.py").write_text("__version__ = '0.2'\n")
    changed, dummy = run_module(dict(args, source_dir=str(source)), check=True)
    assert (changed["changed"], changed["action"]) == (True, "built") and changed["image"] not in (built["image"], bare["image"])

    missing, dummy = run_module(dict(args, source_dir=str(tmp_path / "nowhere")))
    assert missing.get("failed") is True
    assert missing["msg"] == (
        "source_dir %s is not a directory on the host; copy the vLLM source tree there or leave source_dir unset." % (tmp_path / "nowhere")
    )
