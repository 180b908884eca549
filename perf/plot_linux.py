#!/usr/bin/python3
"""Plots the Linux table from a linux.json written by `make bench`.

Usage: plot_linux.py LINUX_JSON OUTPUT_PNG
With a Veneer column, each bar is a row's cost on Veneer over its cost
natively (a rate is inverted, so right of 1 is slower on Veneer), and the
gate's 5% line is drawn. Without one (Linux does not run /init on Veneer
yet), each bar is the spread of the native runs: how far a ratio could be
trusted once there is one.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results_path, out_path):
    with open(results_path) as f:
        results = json.load(f)
    rows = results["summary"]
    labels = [f'{r["label"]} ({r["class"]})' for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(rows) + 1.8))
    machine = results["machine"]
    title = f'{results["kernel"]}\n{machine["cpu"]} ({machine["accel"]}), {results["runs"]} boots, {results["mode"]}'
    if all("ratio" in r for r in rows):
        ax.barh(labels, [r["ratio"] for r in rows], color="#4a7ab5")
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.axvline(1.0 + results["gate"], color="red", linewidth=0.8, linestyle="--", label="gate (macro rows)")
        ax.set_xlabel("cost on Veneer / cost natively (lower is better)")
        ax.legend(loc="lower right")
    else:
        ax.barh(labels, [100 * r["native_spread"] for r in rows], color="#7a7a7a")
        ax.axvline(10, color="red", linewidth=0.8, linestyle="--", label="spread warning")
        ax.set_xlabel("spread of the native runs, % of the median (no Veneer column yet)")
        ax.legend(loc="lower right")
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
