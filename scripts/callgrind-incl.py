#!/usr/bin/env python3
"""Inclusive instructions (Ir) of the functions whose names match RE in callgrind profiles:
their own and those of everything they call, divided by N (requests). Reads the profile
directly (callgrind_annotate attributes everything to `clone` on these profiles).
usage: callgrind-incl.py N RE FILE..."""
import re, sys, collections
n = int(sys.argv[1]); pat = re.compile(sys.argv[2])
def parse(path):
    names = {}; cost = collections.Counter(); out = collections.Counter()
    fn = None; cfn = None; after = False
    def name(kind, s):
        m = re.match(r'\((\d+)\)(?: (.*))?', s)
        if not m: return s
        key = (kind, m.group(1))
        if m.group(2) is not None: names[key] = m.group(2)
        return names.get(key, s)
    for line in open(path, errors='replace'):
        line = line.rstrip('\n')
        if line.startswith('fn='): fn = name('fn', line[3:]); continue
        if line.startswith('cfn='): cfn = name('fn', line[4:]); continue
        if line.startswith(('fl=','fi=','fe=')): name('fl', line[3:]); continue
        if line.startswith(('cfi=','cfl=')): name('fl', line[4:]); continue
        if line.startswith('calls='): after = True; continue
        if line and (line[0].isdigit() or line[0] in '+-*'):
            p = line.split()
            if len(p) >= 2:
                v = int(p[1])
                if after:
                    if cfn != fn: out[fn] += v
                else: cost[fn] += v
            after = False
    return cost, out
for path in sys.argv[3:]:
    cost, out = parse(path)
    tot = 0
    parts = []
    for f in set(cost) | set(out):
        if pat.search(f):
            v = cost[f] + out[f]
            tot += v
            parts.append((v, f))
    parts.sort(reverse=True)
    print(f"{tot/n:8.0f}  {path}  " + "; ".join(f"{f.split('::')[-1][:30]}={v/n:.0f}" for v, f in parts[:4]))
