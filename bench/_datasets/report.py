"""Printing a bench_datasets.py document as tables (Rich, or Markdown with --markdown)."""

from __future__ import annotations

from typing import Any

import _common as c

from _datasets.add import MLOOP_FSYNC
from _datasets.ctx import mbps

# ============================================================================================ output


def _f(v: float | None, spec: str = ".0f") -> str:
    return "-" if v is None else format(v, spec)


MARKDOWN: list[bool] = [False]  # set by --markdown


def _table(title: str, columns: list[str], rows: list[list[Any]], note: str = "") -> None:
    if not MARKDOWN[0]:
        c.print_table(title, columns, rows, note=note)
        return
    print(f"\n**{title}**\n")
    print("| " + " | ".join(str(x) for x in columns) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(columns) - 1)) + "|")
    for r in rows:
        print("| " + " | ".join(str(x).replace("|", "/") for x in r) + " |")
    if note:
        print(f"\n{note}")


def print_report(doc: dict[str, Any]) -> None:
    meta = doc["meta"]
    print(
        f"\nmloop {meta['versions'].get('mloop')} vs {meta['dvc']} | python {meta['versions']['python']} | "
        f"{meta['cpus']} CPUs | repeat {meta['repeat']} | mloop timed via {meta['mloop_via']}"
    )
    if meta.get("cold_note"):
        print(f"note: {meta['cold_note']}")
    res = doc["results"]
    if "add-2gb" in res:
        a = res["add-2gb"]
        gb = a["bytes"] / 1e9
        for mode, s in a["modes"].items():
            med = s["median_seconds"]
            rows = [
                ["dvc add data", c.fmt_s(med["dvc"]), _f(s["mbps"]["dvc"]), "1.0x"],
                ["dvc add data; sync", c.fmt_s(s["dvc_with_sync"]), _f(s["mbps"]["dvc+sync"]), "-"],
            ]
            if "mloop-cli" in med:
                rows.append(
                    [
                        "mloop data add data --name x",
                        c.fmt_s(med["mloop-cli"]),
                        _f(mbps(a["bytes"], med["mloop-cli"])),
                        c.fmt_x(c.ratio(med["dvc"], med["mloop-cli"])),
                    ]
                )
            rows.append(
                [
                    "mloop SDK worker (process wall)",
                    c.fmt_s(s["mloop_sdk_process_wall"]),
                    _f(mbps(a["bytes"], s["mloop_sdk_process_wall"])),
                    c.fmt_x(c.ratio(med["dvc"], s["mloop_sdk_process_wall"])),
                ]
            )
            rows.append(
                [
                    "mloop Dataset.add (SDK timer)",
                    c.fmt_s(s["mloop_sdk_internal"]),
                    _f(s["mbps"]["mloop (SDK internal)"]),
                    c.fmt_x(c.ratio(med["dvc"], s["mloop_sdk_internal"])),
                ]
            )
            if s.get("mloop_cli_internal") is not None:
                rows.append(
                    [
                        "mloop data add, its own timer (--json seconds)",
                        c.fmt_s(s["mloop_cli_internal"]),
                        _f(mbps(a["bytes"], s["mloop_cli_internal"])),
                        c.fmt_x(c.ratio(med["dvc"], s["mloop_cli_internal"])),
                    ]
                )
            for ref in [side for side in med if side.startswith("ref:")]:
                if med[ref] is not None:
                    rows.append(
                        [
                            f"{ref}, {a.get('threads', '?')} threads",
                            c.fmt_s(med[ref]),
                            _f(mbps(a["bytes"], med[ref])),
                            c.fmt_x(c.ratio(med["dvc"], med[ref])),
                        ]
                    )
            if med.get(MLOOP_FSYNC) is not None:
                rows.append(
                    [
                        "mloop data add data --name x --fsync (durable on return)",
                        c.fmt_s(med[MLOOP_FSYNC]),
                        _f(mbps(a["bytes"], med[MLOOP_FSYNC])),
                        c.fmt_x(c.ratio(s["dvc_with_sync"], med[MLOOP_FSYNC])) + " vs dvc+sync",
                    ]
                )
            link = s.get("link")
            link_note = ""
            if link:
                rows.append(
                    [
                        "dvc add data (cache.type hardlink)",
                        c.fmt_s(link["dvc_hardlink"]),
                        _f(mbps(a["bytes"], link["dvc_hardlink"])),
                        c.fmt_x(c.ratio(med["dvc"], link["dvc_hardlink"])),
                    ]
                )
                rows.append(
                    [
                        "mloop data add data --name x --link",
                        c.fmt_s(link["mloop_link"]),
                        _f(mbps(a["bytes"], link["mloop_link"])),
                        c.fmt_x(link["ratio_dvc_copy_over_mloop_link"]),
                    ]
                )
                lr = link["ratio_dvc_hardlink_over_mloop_link"]
                link_note = f"; link modes: mloop --link vs dvc hardlink cache {c.fmt_x(lr)}"
            bar = s["ratio_dvc_over_mloop"]
            _table(
                f"add-2gb ({mode} cache): first add of {a['files']} files, {gb:.2f} GB (medians)",
                ["command", "median", "MB/s", "speed-up vs dvc (copy)"],
                rows,
                note=f"bar mloop >= 5x faster than dvc ({s['mloop_wall_source']}): {c.fmt_x(bar)} -> "
                f"{'MET' if bar and bar >= 5 else 'MISSED'}; vs dvc+sync: {c.fmt_x(s['ratio_dvc_sync_over_mloop'])}"
                + link_note,
            )
            bd = s["breakdown_median"]
            if bd:
                _table(
                    f"mloop Dataset.add breakdown ({mode} cache, median s; threads: = summed over the pool's threads)",
                    ["phase", "seconds"],
                    [[k, f"{v:.3f}"] for k, v in bd.items()],
                )
            for side, cpu in s["cpu"].items():
                print(f"  cpu {side}: user {_f(cpu['user'], '.2f')} s, sys {_f(cpu['sys'], '.2f')} s")
            prof = next((r.get("profile") for r in s["runs"].get("mloop-sdk", []) if r.get("profile")), None)
            if prof:
                print(prof)
    if "limits" in res:
        lim = res["limits"]
        for mode, rows in lim["modes"].items():
            table = [
                [
                    label,
                    c.fmt_s(r["median_seconds"]),
                    _f(r["mbps"]),
                    _f(r.get("mbps_before_sync")),
                    _f(r.get("ms_per_file"), ".2f"),
                ]
                for label, r in rows.items()
            ]
            if "add-2gb" in res and mode in res["add-2gb"]["modes"]:
                s = res["add-2gb"]["modes"][mode]
                table.append(
                    ["= mloop data add (wall)", c.fmt_s(s["mloop_wall"]), _f(s["mbps"]["mloop (wall)"]), "", ""]
                )
                table.append(
                    [
                        "= mloop Dataset.add (SDK timer)",
                        c.fmt_s(s["mloop_sdk_internal"]),
                        _f(s["mbps"]["mloop (SDK internal)"]),
                        "",
                        "",
                    ]
                )
                table.append(["= dvc add (wall)", c.fmt_s(s["median_seconds"]["dvc"]), _f(s["mbps"]["dvc"]), "", ""])
            _table(
                f"physical limits ({mode} cache; MB = 10^6 bytes)",
                ["operation", "median", "MB/s", "MB/s before sync", "ms/file"],
                table,
            )
    if "readd" in res:
        rows = []
        for label, case in res["readd"]["cases"].items():
            med = case["median"]
            ms = case["mloop_side"]
            if case["time_first"]:
                rows.append(
                    [
                        f"{label}: first add",
                        c.fmt_s(med["dvc"]["first"]),
                        c.fmt_s(med[ms]["first"]),
                        c.fmt_s(med["mloop-sdk"]["first_internal"]),
                        c.fmt_x(case["ratio_first"]),
                        "",
                    ]
                )
            rows.append(
                [
                    f"{label}: re-add",
                    c.fmt_s(med["dvc"]["readd"]),
                    c.fmt_s(med[ms]["readd"]),
                    c.fmt_s(med["mloop-sdk"]["readd_internal"]),
                    c.fmt_x(case["ratio_readd"]),
                    "MET" if case["bar_readd_under_1s"] else "MISSED",
                ]
            )
        _table(
            "readd (warm cache, medians)",
            ["case", "dvc", f"mloop ({ms})", "mloop SDK timer", "dvc/mloop", "bar < 1 s"],
            rows,
        )
        for label, case in res["readd"]["cases"].items():
            bd = case["readd_breakdown_median"]
            if bd:
                print(f"  re-add breakdown, {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in bd.items()))
    if "kill9" in res:
        rows = []
        for r in res["kill9"]["runs"]:
            ak = r.get("after_kill", {})
            na = r.get("next_add", {})
            rows.append(
                [
                    f"{r['kill_after']} s",
                    _f(r.get("killed_at"), ".2f"),
                    str(ak.get("versions", "-")),
                    str(ak.get("blobs", "-")),
                    str(ak.get("tmp_files", "-")),
                    f"v{na.get('version')} created={na.get('created')}" if na else "-",
                    str(r.get("verify", {}).get("ok", "-")),
                    r["status"] + (f" {r['error']}" if r.get("error") else ""),
                ]
            )
        _table(
            "kill9: SIGKILL during mloop data add",
            [
                "kill after",
                "killed at",
                "versions after kill",
                "blobs",
                "tmp files",
                "next add",
                "v1 verifies",
                "result",
            ],
            rows,
        )
