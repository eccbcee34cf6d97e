#!/usr/bin/env python3
"""Calls per request into the functions whose names match RE in a callgrind profile: the
`calls=` counts of every call site naming them, summed, divided by N (requests). Used for
allocations per request (the allocator's entry points), which callgrind counts exactly.
usage: callgrind-calls.py N RE FILE"""
import re
import sys


def calls(path, pattern):
    names = {}
    total = 0
    callee = None
    for line in open(path, errors="replace"):
        if line.startswith("cfn="):
            m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
            if m:
                if m.group(2) is not None:
                    names[m.group(1)] = m.group(2)
                callee = names.get(m.group(1), "")
            else:
                callee = line[4:].rstrip("\n")
        elif line.startswith("fn="):
            # A function's first mention may come as fn=(id) name: remember the name.
            m = re.match(r"fn=\((\d+)\) (.*)", line.rstrip("\n"))
            if m:
                names[m.group(1)] = m.group(2)
        elif line.startswith("calls=") and callee is not None:
            if pattern.search(callee):
                total += int(line[6:].split()[0])
    return total


if __name__ == "__main__":
    n = int(sys.argv[1])
    print(f"{calls(sys.argv[3], re.compile(sys.argv[2])) / n:.1f}")
