"""Run Molecule scenarios as chains: in order within a chain, the chains side by side.

`make test` has two cores. The driver scenarios spend most of their time waiting on Debian's
archive while default and fleet build images and start vLLM, so the two kinds overlap well. A
chain keeps an order where a scenario needs what the one before it left (fleet reuses the engine
store where default built the image).

Usage: molecule_chains.py LOG_DIR "default fleet" "driver_k80 driver_cuda_repo"

Each scenario's output goes to LOG_DIR/molecule-<scenario>.log. For a scenario that fails, its
failed tasks (tests/failure_summary.py) and the end of its log are printed, last, because CI
keeps only the end of the output.
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
        with open(log, "wb") as out:
            result = subprocess.run(["molecule", "test", "--scenario-name", scenario],
                                    stdout=out, stderr=subprocess.STDOUT, check=False)
        minutes = (time.monotonic() - started) / 60
        outcome = "passed" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(f"molecule {scenario}: {outcome} after {minutes:.1f} min", flush=True)
        if result.returncode:
            failed.append((scenario, log))
            return


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
