# Copyright (c) 2026, gpufleet.vllm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE to the collection gpufleet.vllm: this file may change without notice.

"""How often systemd may start a replica unit before it gives up: StartLimitIntervalSec and StartLimitBurst.

A replica runs with Restart=on-failure, so a model that cannot load would be started again and again, each time
loading weights and holding the GPU for up to the whole start timeout. systemd's start limit ends that: a unit started
StartLimitBurst times within StartLimitIntervalSec is refused further starts and stays failed; the journal says "Start
request repeated too quickly" (an automatic restart refused this way leaves the Result of the start that failed).
The limit applies to every start, a manual one too, and `systemctl reset-failed <unit>` clears it; a rollout that
starts a replica which may have hit it must reset it first.

Why the interval is long: systemd's window opens at the first start and counts the starts inside it. A start that
fails by timing out comes back only after the whole start timeout, the stop and RestartSec, so with the default interval
(10 s) every retry falls in a fresh window and the limit never trips. The window must outlast `attempts` such cycles;
then the start after the last attempt falls inside it and is refused.
"""

from __future__ import annotations

import re

# Three starts: the first, and two restarts that ride out a transient failure (a GPU still being released, a registry
# or network hiccup) before a broken model is given up on.
DEFAULT_ATTEMPTS = 3

# Headroom over the worst case, so that the start after the last attempt never lands on the window's edge.
MARGIN_SEC = 60


def _whole(name, value, least, unit="seconds"):
    """A whole number of at least `least`, as YAML or the command line gives it; ValueError otherwise."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < least:
        raise ValueError("%s must be a whole number of %s of at least %d, not %r; set it to one." % (name, unit, least, value))
    return int(text)


def worst_start_cycle(timeout_start_sec, timeout_stop_sec, restart_sec):
    """The longest time from one start of the unit to the next when every start fails, in seconds.

    TimeoutStartSec bounds ExecStartPre, ExecStart and ExecStartPost together. A failed start skips ExecStop: systemd
    signals what is left and waits up to TimeoutStopSec before SIGKILL, which ends it at once, then runs ExecStopPost
    under TimeoutStopSec again. RestartSec passes before the next start.
    """
    start = _whole("TimeoutStartSec", timeout_start_sec, 1)
    stop = _whole("TimeoutStopSec", timeout_stop_sec, 1)
    restart = _whole("RestartSec", restart_sec, 0)
    return start + 2 * stop + restart


def start_limit(timeout_start_sec, timeout_stop_sec, restart_sec, attempts=DEFAULT_ATTEMPTS):
    """StartLimitIntervalSec and StartLimitBurst for a unit with these timeouts, as {"interval_sec", "burst"}.

    The arguments are the unit's own TimeoutStartSec, TimeoutStopSec and RestartSec (what the unit file says, not the
    role's timeouts they derive from); attempts is how many starts a unit gets before systemd refuses the next. Raises
    ValueError with one sentence for a value that is no whole number.
    """
    burst = _whole("attempts", attempts, 1, unit="starts")
    cycle = worst_start_cycle(timeout_start_sec, timeout_stop_sec, restart_sec)
    # Start number burst + 1 comes at most burst cycles after the first; it is refused only inside the first window.
    return {"interval_sec": burst * cycle + MARGIN_SEC, "burst": burst}


# What systemd logs when it refuses to start a unit past its start limit; an automatic restart refused this way leaves
# the unit's Result at that of the start that failed, so the journal is where the refusal shows.
REFUSAL = "Start request repeated too quickly"

# The units systemctl show writes a time span in ("16min 40s"), in seconds.
_SPAN_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2629800, "y": 31557600}
_SPAN_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|min|h|d|w|M|y)")


def span_seconds(text):
    """Whole seconds of a time span as systemctl show writes it ("16min 40s", "10s"); None for anything else."""
    parts = str(text or "").split()
    found = [_SPAN_PART.fullmatch(part) for part in parts]
    if not parts or not all(found):
        return None
    return round(sum(float(match.group(1)) * _SPAN_UNITS[match.group(2)] for match in found))


def refusal_sentence(unit, lines, unit_status):
    """One sentence saying systemd gave unit up at its start limit, when its journal lines record the refusal; else None.

    unit_status: the unit's properties as systemctl show gives them (StartLimitBurst, StartLimitIntervalUSec); the
    sentence leaves out what they do not tell.
    """
    if not any(REFUSAL in line for line in lines):
        return None
    burst = str(unit_status.get("StartLimitBurst") or "")
    interval = span_seconds(unit_status.get("StartLimitIntervalUSec"))
    starts = " after %s starts" % burst if burst.isdigit() else ""
    within = " in %d s" % interval if interval and starts else ""
    return "vLLM unit %s gave up%s%s (its start limit), so systemd starts it no more." % (unit, starts, within)
