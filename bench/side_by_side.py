"""Raw loop against service, side by side: alternating runs, their medians and ratio, the lines that print them.

It imports nothing beyond the standard library and `raw_loop`, so it runs wherever the raw loop does.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from typing import Any

from raw_loop import RawRun


def alternate(
    keys: Iterable[str],
    repeats: int,
    raw: Callable[[str], RawRun],
    service: Callable[[str], dict[str, Any]],
) -> dict[str, tuple[list[RawRun], list[dict[str, Any]]]]:
    """Run `raw(key)` and `service(key)` `repeats` times per key, swapping which goes first on every repeat (ABBA),
    so a slow spell of a shared machine falls on both sides alike; prints each pair as it finishes."""
    keys = list(keys)
    runs: dict[str, tuple[list[RawRun], list[dict[str, Any]]]] = {key: ([], []) for key in keys}
    for repeat in range(repeats):
        for key in keys:
            raw_runs, service_runs = runs[key]
            for side in ("raw", "service") if repeat % 2 == 0 else ("service", "raw"):
                if side == "raw":
                    raw_runs.append(raw(key))
                else:
                    service_runs.append(service(key))
            print(
                f"  repeat {repeat + 1}/{repeats} {key:<8} raw {raw_runs[-1].items_per_s:9.1f} items/s"
                f"   service {service_runs[-1]['items_per_s']:9.1f} items/s",
                flush=True,
            )
    return runs


def ratio_summary(raw: list[RawRun], service: list[dict[str, Any]], target: float) -> dict[str, Any]:
    """Medians of both sides (service runs carry `items_per_s` and the job's own `job_items_per_s`), their ratio
    per repeat and overall, and whether the ratio meets `target`."""
    raw_ips = statistics.median(r.items_per_s for r in raw)
    service_ips = statistics.median(s["items_per_s"] for s in service)
    return {
        "raw_items_per_s": round(raw_ips, 2),
        "service_items_per_s": round(service_ips, 2),
        "service_job_items_per_s": round(statistics.median(s["job_items_per_s"] for s in service), 2),
        "ratio": round(service_ips / raw_ips, 4),
        "ratio_per_repeat": [round(s["items_per_s"] / r.items_per_s, 4) for r, s in zip(raw, service, strict=True)],
        # Interference from other work only ever adds time: the best runs of each side are the least disturbed.
        "ratio_of_best": round(max(s["items_per_s"] for s in service) / max(r.items_per_s for r in raw), 4),
        "target": target,
        "met": service_ips / raw_ips >= target,
        "raw_runs": [r.to_json() for r in raw],
        "service_runs": service,
    }


def print_ratios(label: str, rows: dict[str, dict[str, Any]]) -> None:
    """The table of `ratio_summary` rows by key, then one verdict line per key."""
    print(f"\n{label:<10}{'raw items/s':>14}{'service items/s':>18}{'job items/s':>14}{'service/raw':>13}")
    for key, row in rows.items():
        print(
            f"{key:<10}{row['raw_items_per_s']:>14.1f}{row['service_items_per_s']:>18.1f}"
            f"{row['service_job_items_per_s']:>14.1f}{row['ratio']:>13.3f}"
        )
    for key, row in rows.items():
        verdict = "met" if row["met"] else "MISSED"
        print(
            f"ratio service/raw {key}: {row['ratio']:.3f} (target >= {row['target']}: {verdict}); "
            f"best runs: {row['ratio_of_best']:.3f}"
        )
