"""Run Molecule scenarios as chains: in order within a chain, the chains side by side.

`make test` has two cores. The driver scenarios spend most of their time waiting on Debian's
archive while default and fleet build images and start vLLM, so the two kinds overlap well. A
chain keeps an order where a scenario needs what the one before it left (fleet reuses the engine
store where default built the image).

Usage: molecule_chains.py LOG_DIR "default fleet" "driver_k80 driver_cuda_repo"

Each scenario's output goes to LOG_DIR/molecule-<scenario>.log, each line after the minutes since
the scenario started. For a scenario that fails, its failed tasks (tests/failure_summary.py) and
the end of its log are printed, last, because CI keeps only the end of the output.
"""
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOG_TAIL_LINES = 40


def run_chain(scenarios, log_dir, failed):
    """Run the scenarios in order; stop the chain at the first one that fails."""
    for scenario in scenarios:
        log = log_dir / f"molecule-{scenario}.log"
        started = time.monotonic()
        print(f"molecule {scenario}: started, log {log}", flush=True)
        returncode = run_logged(["molecule", "test", "--scenario-name", scenario], log, started)
        minutes = (time.monotonic() - started) / 60
        outcome = "passed" if returncode == 0 else f"FAILED (exit {returncode})"
        print(f"molecule {scenario}: {outcome} after {minutes:.1f} min", flush=True)
        if returncode:
            failed.append((scenario, log))
            return


def run_logged(command, log, started):
    """Run the command with each line of its output in the log after the minutes since the scenario started.

    The times show where a scenario spends them, which is what keeps `make test` within CI's limit.
    """
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process, \
            open(log, "wb") as out:
        for line in process.stdout:
            out.write(b"[%6.2f] " % ((time.monotonic() - started) / 60) + line)
            out.flush()
    return process.returncode


def report(scenario, log):
    print(f"\n=== end of {log}")
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    print("\n".join(lines[-LOG_TAIL_LINES:]))
    print(f"\n=== molecule {scenario} failed:", flush=True)
    subprocess.run([sys.executable, str(HERE / "failure_summary.py"), str(log)], check=False)


def main(log_dir, chains):
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    threads = [threading.Thread(target=run_chain, args=(chain.split(), log_dir, failed))
               for chain in chains]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for scenario, log in failed:
        report(scenario, log)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
