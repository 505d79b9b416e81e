# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ask a deployed vLLM server for one completion through the official OpenAI client and print it.

The sandbox model has random weights: its words are noise, but they come from the real server.
"""

from __future__ import annotations

import argparse

import openai


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key-file", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=16)
    options = parser.parse_args()

    with open(options.api_key_file) as handle:
        api_key = handle.read().split()[0]
    client = openai.OpenAI(base_url=options.base_url, api_key=api_key)
    served = [model.id for model in client.models.list()]
    completion = client.completions.create(
        model=options.model, prompt=options.prompt, max_tokens=options.max_tokens, temperature=0)
    choice = completion.choices[0]
    print("server at %s serves %s" % (options.base_url, ", ".join(served)))
    print("prompt:     %r" % options.prompt)
    print("completion: %r (%d tokens, finish_reason %s)" % (
        choice.text, completion.usage.completion_tokens, choice.finish_reason))


if __name__ == "__main__":
    main()
