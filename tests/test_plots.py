"""The figures' platform colours: one colour per platform, the same in every table."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

from sim.plots.normalised_bars import PLATFORM_COLOURS, platform_colours, plot_normalised


def test_a_platform_keeps_its_colour_whatever_the_order() -> None:
    table1 = ["ubuntu_bare", "rumprun_kvm", "osv_kvm", "ubuntu_kvm", "netbsd_kvm"]
    table2 = ["ubuntu_bare", "ubuntu_kvm", "rumprun_kvm", "osv_kvm", "netbsd_kvm"]
    one, two = platform_colours(table1), platform_colours(table2)
    assert one == two
    assert len(set(one.values())) == len(table1)


def test_other_platforms_take_colours_no_listed_platform_has() -> None:
    names = ["container", "ubuntu_kvm", "container_veth"]
    colours = platform_colours(names)
    assert colours["ubuntu_kvm"] == PLATFORM_COLOURS["ubuntu_kvm"]
    assert len(set(colours.values())) == len(names)


def _has_colour(img: np.ndarray, hex_colour: str) -> bool:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return bool((np.abs(img[..., :3] - rgb).max(axis=-1) < 0.01).any())


def test_the_bars_are_drawn_in_the_platforms_colours(tmp_path: Path) -> None:
    cells = [{"test": t, "platform": p, "measured": m, "predicted": m * 1.1,
              "ci95": [m, m * 1.2], "error_pct": 10.0}
             for t in ("GET", "SET") for p, m in (("ubuntu_kvm", 5.0), ("osv_kvm", 4.0))]
    report = {"experiment": "t", "cells": cells, "mape_in_sample": 10.0}
    out = plot_normalised(report, tmp_path / "f.png")
    img = mpimg.imread(out)
    # listed first, ubuntu_kvm still gets its own colour, not the palette's first
    assert _has_colour(img, PLATFORM_COLOURS["ubuntu_kvm"])
    assert _has_colour(img, PLATFORM_COLOURS["osv_kvm"])
    assert not _has_colour(img, PLATFORM_COLOURS["ubuntu_bare"])
