#!/usr/bin/env python3
"""A changed copy of a generated list, for the re-import benchmark (README, Benchmarks).

    python3 tests/bench/changed_list.py SRC_DIR DST_DIR [RENAMED] [RAISED]

Copies SRC_DIR's enterprises.csv and measures.csv into DST_DIR with RENAMED (default 3,000)
enterprises renamed (the first ones of the file: "（更名）" appended to the name) and RAISED
(default 3,000) of the following grade-C enterprises raised to B; everything else is unchanged.
"""
import csv, os, shutil, sys

src, dst = sys.argv[1], sys.argv[2]
renamed = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
raised = int(sys.argv[4]) if len(sys.argv) > 4 else 3000
os.makedirs(dst, exist_ok=True)
shutil.copyfile(os.path.join(src, "measures.csv"), os.path.join(dst, "measures.csv"))
with open(os.path.join(src, "enterprises.csv"), newline="", encoding="utf-8") as f, \
        open(os.path.join(dst, "enterprises.csv"), "w", newline="", encoding="utf-8") as out:
    # Comment lines (#) before the header are copied as they are.
    line = f.readline()
    while line.startswith("#") or not line.strip():
        out.write(line)
        line = f.readline()
    rows = csv.reader(f)
    w = csv.writer(out, lineterminator="\n")
    header = next(csv.reader([line]))
    out.write(line)
    name, grade = header.index("name"), header.index("grade")
    n_renamed = n_raised = 0
    for row in rows:
        if n_renamed < renamed:
            row[name] += "（更名）"
            n_renamed += 1
        elif n_raised < raised and row[grade] == "C":
            row[grade] = "B"
            n_raised += 1
        w.writerow(row)
print(f"{dst}: {n_renamed} renamed, {n_raised} raised from C to B", file=sys.stderr)
