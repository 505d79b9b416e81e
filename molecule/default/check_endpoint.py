# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check a deployed vLLM endpoint with the official OpenAI client, as a user would.

Usage: check_endpoint.py BASE_URL API_KEY_FILE SERVED_NAME. Exits non-zero on the first failure.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

import openai

MAX_TOKENS = 8


def status_of(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main():
    base_url, key_file, served = sys.argv[1:4]
    with open(key_file) as handle:
        api_key = handle.read().split()[0]
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=api_key)

    served_names = [model.id for model in client.models.list()]
    if served not in served_names:
        sys.exit("/v1/models lists %s, not %s" % (served_names, served))

    # Random weights: the words are noise, so check what the server did, not what it said.
    completion = client.completions.create(
        model=served, prompt="The capital of France is", max_tokens=MAX_TOKENS, temperature=0,
        extra_body={"ignore_eos": True})
    if completion.usage.completion_tokens != MAX_TOKENS or completion.choices[0].finish_reason != "length":
        sys.exit("completion returned %s" % completion)

    chat = client.chat.completions.create(
        model=served, messages=[{"role": "user", "content": "Hello"}], max_tokens=MAX_TOKENS,
        extra_body={"ignore_eos": True})
    if chat.usage.completion_tokens != MAX_TOKENS:
        sys.exit("chat completion returned %s" % chat)

    try:
        openai.OpenAI(base_url=base_url + "/v1", api_key="not-" + api_key).models.list()
        sys.exit("a wrong API key was accepted")
    except openai.AuthenticationError:
        pass

    without_key = status_of(base_url + "/v1/models")
    with_key = status_of(base_url + "/v1/models", {"Authorization": "Bearer " + api_key})
    if (without_key, with_key) != (401, 200):
        sys.exit("/v1/models answered %d without the key and %d with it; expected 401 and 200" % (without_key, with_key))

    print("%s serves %s: completion of %d tokens, chat completion, 401 without the key, 200 with it"
          % (base_url, served, MAX_TOKENS))


if __name__ == "__main__":
    main()
