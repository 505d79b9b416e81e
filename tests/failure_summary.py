"""Print the tasks that failed in an Ansible or Molecule log, briefly.

CI keeps only the end of what `make test` printed; by then Molecule has destroyed the host
and printed its recap, and the failed task scrolled out of sight. This names it again, last.
"""
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# tests/molecule_chains.py puts the minutes since the scenario started before each line.
MINUTES = re.compile(r"^\[ *[0-9.]+\] ")
# Molecule wraps long lines: a task's name may lose its closing bracket to the next line.
TASK = re.compile(r"^TASK \[(?P<name>[^\]]*)")
PLAY = re.compile(r"^PLAY \[(?P<name>[^\]]*)")
FAILURE = re.compile(r"^(fatal|failed): \[(?P<host>[^\]]+)\]")
# Lines of each failed result to repeat: enough for its message, not its whole output.
RESULT_LINES = 30
LINE_LIMIT = 400


def plain(line):
    """The line without colours and without the bar Molecule frames its Ansible runs with."""
    return ANSI.sub("", MINUTES.sub("", line)).rstrip().lstrip(" │")


def failures(lines):
    """Yield (play, task, result lines) for each task in the log that failed and was not ignored."""
    lines = [plain(line) for line in lines]
    play = task = ""
    for index, line in enumerate(lines):
        if match := PLAY.match(line):
            play = match.group("name")
        elif match := TASK.match(line):
            task = match.group("name")
        elif FAILURE.match(line):
            result = [line]
            for following in lines[index + 1:]:
                if not following or TASK.match(following) or FAILURE.match(following):
                    break
                result.append(following)
            if not any(entry.startswith("...ignoring") for entry in result):
                yield play, task, [entry[:LINE_LIMIT] for entry in result[:RESULT_LINES]]


def main(path):
    with open(path, encoding="utf-8", errors="replace") as log:
        found = list(failures(log.readlines()))
    if not found:
        print(f"No failed task in {path}: see the end of that log.")
        return
    print(f"Failed tasks in {path}:")
    for play, task, result in found:
        print(f"- play [{play}] task [{task}]")
        for line in result:
            print(f"    {line}")


if __name__ == "__main__":
    main(sys.argv[1])
