#!/usr/bin/python3
"""Plots the Linux table from a linux.json written by `make bench`.

Usage: plot_linux.py LINUX_JSON OUTPUT_PNG
Each bar is a row's cost on Veneer over its cost natively (a rate is
inverted, so right of 1 is slower on Veneer); the whiskers span the two
sides' spreads, and the dashed line is the gate of the macro rows. Rows
without a ratio are named under the axis.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results_path, out_path):
    with open(results_path) as f:
        results = json.load(f)
    # A row with no ratio (a side never ran it to its end) is named below the plot.
    missing = [r["label"] for r in results["summary"] if r["ratio"] is None]
    rows = [r for r in results["summary"] if r["ratio"] is not None]
    labels = [f'{r["label"]} ({r["class"]})' for r in rows]
    ratios = [r["ratio"] for r in rows]
    spreads = [r["ratio"] * (r["native_spread"] + r["veneer_spread"]) / 2 for r in rows]
    colors = ["#b5804a" if r["class"] == "macro" else "#4a7ab5" for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(rows) + 1.8))
    ax.barh(labels, ratios, xerr=spreads, color=colors)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.axvline(1.0 + results["gate"], color="red", linewidth=0.8, linestyle="--", label="gate (macro rows)")
    ax.set_xlabel("cost on Veneer / cost natively (lower is better)")
    if missing:
        ax.set_xlabel(ax.get_xlabel() + "\nno ratio (a side failed): " + ", ".join(missing), fontsize=8)
    ax.legend(loc="lower right")
    ax.invert_yaxis()
    machine = results["machine"]
    ax.set_title(f'Linux: {machine["cpu"]} ({machine["accel"]}), {results["runs"]} boots each side, {results["mode"]}', fontsize=9)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
