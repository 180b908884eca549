#!/usr/bin/python3
"""Plots Veneer/native ratios from a results.json written by `make bench`.

Usage: plot.py RESULTS_JSON OUTPUT_PNG
Each bar is the median of the per-run medians on Veneer over the same on
native; the whiskers span the ratios of the runs' extremes. The I/O rows,
if any, go to io.png beside OUTPUT_PNG.
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
    labels = [r["label"] for r in rows]
    ratios = [r["ratio"] for r in rows]
    spreads = [r["ratio"] * (r["native_spread"] + r["veneer_spread"]) / 2 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.5))
    ax.barh(labels, ratios, xerr=spreads, color="#4a7ab5")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.axvline(1.05, color="red", linewidth=0.8, linestyle="--", label="5% overhead")
    ax.set_xlabel("Veneer / native (lower is better)")
    machine = results["machine"]
    ax.set_title(f"{machine['cpu']} ({machine['accel']}), {results['runs']} runs")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    io = results.get("io", [])
    if io:
        plot_io(io, machine, results["runs"], out_path.replace("ratios.png", "io.png"))


def plot_io(rows, machine, runs, out_path):
    """The I/O rows: each Veneer figure as a fraction (throughput) or a
    multiple (time) of the native memcpy of the same bytes."""
    labels = [f'{r["label"]} ({r["unit"]})' for r in rows]
    ratios = [r["ratio"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(rows) + 1.5))
    ax.barh(labels, ratios, color="#b5804a")
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("Veneer / native memcpy of the same bytes\n(throughput rows: higher is better; time rows: lower is better)")
    ax.set_title(f"I/O vs the memcpy ceiling: {machine['cpu']} ({machine['accel']}), {runs} runs")
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
