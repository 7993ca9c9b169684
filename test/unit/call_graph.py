#!/usr/bin/python3
# call_graph.py - checks that calls between the extension's C files run one
# way (TAP output, run by `make test`'s unit suite):
#   1. no cycle: no two files call each other, directly or through others;
#   2. the worker's modules, listed in call order in src/worker.h's opening
#      comment, call only modules listed below them.
# A call is a use of a function defined, not static, in another src/*.c.
import collections
import glob
import os
import re
import sys

src = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'src')
files = sorted(glob.glob(os.path.join(src, '*.c')))
defs = {}
texts = {}
for f in files:
    b = os.path.basename(f)
    s = re.sub(r'/\*.*?\*/', '', open(f).read(), flags=re.S)
    texts[b] = s
    for m in re.finditer(r'^([A-Za-z_][\w \t\*]*)\n(sr_\w+)\(', s, re.M):
        if not m.group(1).startswith('static'):
            defs[m.group(2)] = b
edges = collections.defaultdict(set)
for b, s in texts.items():
    for name in set(re.findall(r'\b(sr_\w+)\s*\(', s)):
        d = defs.get(name)
        if d and d != b:
            edges[b].add(d)

tests = []

# 1. cycles
cycles = []
color = {}
path = []


def dfs(u):
    color[u] = 1
    path.append(u)
    for v in sorted(edges[u]):
        if color.get(v) == 1:
            cycles.append(' -> '.join(path[path.index(v):] + [v]))
        elif not color.get(v):
            dfs(v)
    color[u] = 2
    path.pop()


for u in sorted(texts):
    if not color.get(u):
        dfs(u)
tests.append((not cycles, 'no cycle of calls between src/*.c files', cycles))

# 2. the worker's layers
head = open(os.path.join(src, 'worker.h')).read().split('*/', 1)[0]
order = re.findall(r'^ \*   (\w+\.c)\s', head, re.M)
bad = []
for i, f in enumerate(order):
    for callee in sorted(edges[f]):
        if callee in order and order.index(callee) < i:
            bad.append('%s calls %s, listed above it' % (f, callee))
tests.append((len(order) >= 10 and not bad,
              'the %d worker modules of worker.h call only modules below them' % len(order),
              bad or ([] if len(order) >= 10 else ['worker.h lists %d modules' % len(order)])))
tests.append((len(defs) > 100, 'found %d functions defined across files' % len(defs), []))

print('1..%d' % len(tests))
for n, (ok, what, why) in enumerate(tests, 1):
    print('%s %d - %s' % ('ok' if ok else 'not ok', n, what))
    for w in why:
        print('#   ' + w)
sys.exit(0 if all(t[0] for t in tests) else 1)
