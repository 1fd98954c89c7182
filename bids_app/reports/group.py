"""The group report ``group.html`` with the paper's figures (issue 7).

Figures are drawn from the group tables only (and the parcellation's per-vertex labels for the
cortex maps): the correlation matrix in leaf order with cluster borders (Fig. 2), the clusters on
the inflated cortex (Fig. 3), per-cluster correlation spectra with bootstrap intervals and effect
rectangles (Figs. 4-5), where correlation effects and MEG power effects overlap in time and
frequency (Fig. 6), and the share of significant bins per cluster (Fig. 7), with the effects
table (Table 1). On simulated data, planted and found effects are compared side by side.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bids_app import __version__  # noqa: E402
from bids_app.io.derivatives import (  # noqa: E402
    CITATION_FILES,
    dseg_table_path,
    read_table,
    sidecar_path,
)
from bids_app.reports.cortex import parcel_values_on_vertices  # noqa: E402
from bids_app.reports.cortex import vertex_labels as cortex_vertex_labels  # noqa: E402
from bids_app.reports import figures  # noqa: E402
from bids_app.reports.html import Section, markdown_to_html, render_page, write_page  # noqa: E402
from bids_app.stats.effects import effect_cells  # noqa: E402

LOGGER = logging.getLogger(__name__)


def _feature_order(table: pd.DataFrame, conditions, bands) -> pd.DataFrame:
    table = table.copy()
    table["condition"] = pd.Categorical(table["condition"], conditions, ordered=True)
    table["band"] = pd.Categorical(table["band"], bands, ordered=True)
    return table


def matrix_figure(spearman: pd.DataFrame, clusters: pd.DataFrame, path: Path, *,
                  conditions: Sequence[str], bands: Sequence[str], title: str) -> Path:
    """Fig. 2: rho of every parcel (rows, optimal leaf order) x condition x band x window."""
    table = _feature_order(spearman, conditions, bands)
    wide = table.pivot_table(index="parcel", columns=["condition", "band", "window_start_ms"],
                             values="rho", observed=True)
    order = clusters.sort_values("leaf_order")
    wide = wide.reindex(order["parcel"])
    fig, ax = plt.subplots(figsize=(14, 8))
    im = ax.imshow(wide.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1,
                   interpolation="nearest")
    borders = np.flatnonzero(np.diff(order["cluster"].to_numpy())) + 0.5
    for y in borders:
        ax.axhline(y, color="k", lw=0.8)
    n_windows = wide.columns.get_level_values(2).nunique()
    cols = wide.columns.droplevel(2).unique()
    for k in range(1, len(cols)):
        ax.axvline(k * n_windows - 0.5, color="0.6", lw=0.4)
    for k in range(1, len(conditions)):
        ax.axvline(k * len(bands) * n_windows - 0.5, color="k", lw=1.2)
    ax.set_xticks([(k + 0.5) * n_windows - 0.5 for k in range(len(cols))],
                  [f"{c[1]}" for c in cols], rotation=90, fontsize=6)
    for k, cond in enumerate(conditions):
        ax.text((k + 0.5) * len(bands) * n_windows, -2, cond, ha="center", va="bottom",
                fontsize=9)
    ax.set_yticks(range(len(wide)), [f"{p} ({c})" for p, c in zip(order["parcel"],
                                                                   order["cluster"])], fontsize=4)
    ax.set_ylabel("parcel (cluster), optimal leaf order")
    fig.colorbar(im, ax=ax, label="Spearman rho", fraction=0.02)
    ax.set_title(title, pad=18)
    return figures.save(fig, path)


def cluster_spectra_figure(boot: pd.DataFrame, effects: pd.DataFrame, cluster: int, path: Path, *,
                           conditions: Sequence[str], bands: Sequence[str]) -> Path:
    """Figs. 4-5: a cluster's rho over windows per band and hemisphere, with 99 % intervals,
    significant windows (dots) and the effects (shaded rectangles)."""
    hemis = ["lh", "rh"]
    fig, axes = plt.subplots(len(bands), 2, figsize=(11, 1.6 * len(bands) + 1), sharex=True,
                             sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sub = boot[boot["cluster"] == cluster]
    for i, band in enumerate(bands):
        for j, hemi in enumerate(hemis):
            ax = axes[i, j]
            part = sub[(sub["band"] == band) & (sub["hemi"] == hemi)]
            for k, cond in enumerate(conditions):
                line = part[part["condition"] == cond].sort_values("window_start_ms")
                if line.empty:
                    continue
                x = line["window_start_ms"].to_numpy() + 100.0  # window centre
                ax.plot(x, line["rho"], color=colors[k % 10], lw=1.2, label=cond)
                ax.fill_between(x, line["ci99_low"], line["ci99_high"], color=colors[k % 10],
                                alpha=0.15, lw=0)
                if "significant" in line:
                    sig = line["significant"].astype(bool).to_numpy()
                    ax.plot(x[sig], line["rho"].to_numpy()[sig], "o", ms=3, color=colors[k % 10])
            eff = effects[(effects["cluster"] == cluster) & (effects["hemi"] == hemi)
                          & (effects["band"] == band)]
            for _, row in eff.iterrows():
                k = list(conditions).index(row["condition"]) if row["condition"] in conditions else 0
                ax.axvspan(row["start_ms"], row["end_ms"], color=colors[k % 10], alpha=0.12)
            ax.axhline(0, color="0.5", lw=0.5)
            ax.set_ylim(-1, 1)
            if j == 0:
                ax.set_ylabel(band, fontsize=9)
            if i == 0:
                ax.set_title(f"cluster {cluster}, {hemi}")
    axes[-1, 0].set_xlabel("time (ms, window centre)")
    axes[-1, 1].set_xlabel("time (ms, window centre)")
    # one legend, on the first panel with labelled lines (a cluster may lie in one hemisphere)
    labelled = [ax for ax in axes.ravel() if ax.get_legend_handles_labels()[0]]
    if labelled:
        labelled[0].legend(fontsize=7, loc="upper right")
    return figures.save(fig, path)


def overlap_figure(effects: pd.DataFrame, ttest: pd.DataFrame, boot: pd.DataFrame, path: Path,
                   *, bands: Sequence[str]) -> Path:
    """Fig. 6: per cluster and hemisphere (rows), band x window bins (columns): correlation
    effects, MEG power effects and both."""
    keys = boot[["cluster", "hemi"]].drop_duplicates().sort_values(["cluster", "hemi"])
    windows = np.sort(boot["window_start_ms"].unique())
    grid = np.zeros((len(keys), len(bands) * len(windows)))
    index = {tuple(r): i for i, r in enumerate(keys.itertuples(index=False))}
    for _, row in effects.iterrows():
        i = index.get((row["cluster"], row["hemi"]))
        if i is None or row["band"] not in bands:
            continue
        b = list(bands).index(row["band"])
        for w, start in enumerate(windows):
            if row["start_ms"] <= start and start + 200.0 <= row["end_ms"] + 1e-6:
                grid[i, b * len(windows) + w] = 1
    sig = ttest[ttest["significant"].astype(bool)]
    for _, row in sig.iterrows():
        i = index.get((row["cluster"], row["hemi"]))
        if i is None or row["band"] not in bands:
            continue
        w = int(np.argmin(np.abs(windows - row["window_start_ms"])))
        col = list(bands).index(row["band"]) * len(windows) + w
        grid[i, col] = 3 if grid[i, col] == 1 else max(grid[i, col], 2)
    cmap = matplotlib.colors.ListedColormap(["white", "#d95f02", "#1b9e77", "#7570b3"])
    fig, ax = plt.subplots(figsize=(12, max(3, 0.16 * len(keys))))
    ax.imshow(grid, aspect="auto", cmap=cmap, vmin=0, vmax=3, interpolation="nearest")
    for b in range(1, len(bands)):
        ax.axvline(b * len(windows) - 0.5, color="k", lw=0.6)
    ax.set_xticks([(b + 0.5) * len(windows) - 0.5 for b in range(len(bands))], list(bands))
    ax.set_yticks(range(len(keys)), [f"{c} {h}" for c, h in keys.itertuples(index=False)],
                  fontsize=6)
    handles = [matplotlib.patches.Patch(color=c, label=t) for c, t in
               zip(["#d95f02", "#1b9e77", "#7570b3"],
                   ["correlation effect", "MEG power difference", "both"])]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
    ax.set_title("Task effects in the MEG-fMRI correlation and in MEG power (windows x bands)")
    return figures.save(fig, path)


def share_figure(boot: pd.DataFrame, path: Path) -> Path:
    """Fig. 7: share of significant (condition, band, window) bins per cluster and hemisphere."""
    share = boot.groupby(["cluster", "hemi"])["significant"].mean().unstack("hemi").fillna(0)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(share)), 3.2))
    width = 0.4
    x = np.arange(len(share))
    for k, hemi in enumerate(share.columns):
        ax.bar(x + (k - 0.5) * width, 100 * share[hemi], width, label=hemi)
    ax.set_xticks(x, share.index)
    ax.set_xlabel("cluster")
    ax.set_ylabel("significant bins (%)")
    ax.legend()
    ax.set_title("Share of significant correlation bins per cluster")
    return figures.save(fig, path)


def cluster_map_figure(clusters: pd.DataFrame, vertex_labels: dict, table: pd.DataFrame,
                       path: Path, title: str) -> Path:
    """Fig. 3: the clusters on the inflated fsaverage5 cortex."""
    cluster_of = dict(zip(clusters["parcel"], clusters["cluster"].astype(float)))
    lh, rh = parcel_values_on_vertices(cluster_of, vertex_labels, table)
    k = int(clusters["cluster"].max())
    return figures.cortex_figure(lh, rh, path, title=title,
                                 cmap="tab20" if k <= 20 else "nipy_spectral",
                                 symmetric=False, vmax=max(k, 1))


def effects_caution(effects: pd.DataFrame, boot: pd.DataFrame, bands: Sequence[str],
                    correction: str) -> str:
    """How many (cluster, hemisphere, band) cells the effects table drew from, and how to read
    it: the published procedure corrects over windows only (docs/statistics.md), and
    ``correction = "none"`` not at all."""
    n_cells, per_level = effect_cells(effects, boot, len(bands))
    counts = [f"{n_rows} effect(s) at the {100 * level:g} % level, in {n_with} of {n_cells} "
              "(cluster, hemisphere, band) cells"
              for level, (n_rows, n_with) in per_level.items()]
    found = "; ".join(counts) or f"No effect in {n_cells} (cluster, hemisphere, band) cells"
    if correction == "none":
        chance = ("Significance was not corrected for multiple comparisons (correction = "
                  "\"none\"), so more of these effects arise by chance than the 8 % (99 % level) "
                  "and 4.5 % (99.9 % level) of the cells expected with the paper's correction "
                  "over windows (docs/statistics.md).")
    else:
        chance = ("The procedure corrects over windows only: with independent MEG and fMRI at "
                  "the paper's size, about 8 % of the cells hold an effect at the 99 % level and "
                  "4.5 % at the 99.9 % level by chance (docs/statistics.md).")
    return (f"{found}. {chance} Prefer effects at the 99.9 % level, spanning several windows, or "
            "seen in both hemispheres.")


def matching_effects(effects: pd.DataFrame, clusters, hemi: str, band: str, conditions,
                     span_ms: tuple[float, float]) -> pd.DataFrame:
    """Rows of the effects table in ``clusters`` and ``hemi``, of ``band`` and one of
    ``conditions``, that overlap ``span_ms`` (start, end): what a planted task-dependent effect
    is found as."""
    lo, hi = span_ms
    return effects[effects["cluster"].isin(clusters) & (effects["hemi"] == hemi)
                   & (effects["band"] == band) & effects["condition"].isin(conditions)
                   & (effects["end_ms"] > lo) & (effects["start_ms"] < hi)]


def planted_vs_found(truth: dict, clusters: pd.DataFrame, effects: pd.DataFrame,
                     spearman: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare the simulation's planted effects with the effects table.

    Returns
    -------
    planted : DataFrame
        One row per planted effect and hemisphere: its clusters, band, windows, condition(s),
        whether an effect (task-dependent) or a significant correlation (task-invariant) of that
        band overlapping the planted windows was found in those clusters.
    nulls : DataFrame
        Null parcels: their cluster, and the number of significant parcel correlations.
    """
    cluster_of = dict(zip(clusters["parcel"], clusters["cluster"]))
    rows = []
    for eff in truth.get("effects", []):
        starts = eff.get("window_starts_ms") or []
        lo, hi = (min(starts), max(starts) + 200.0) if starts else (np.nan, np.nan)
        for hemi in sorted({("rh" if p.endswith("-rh") else "lh") for p in eff["parcels"]}):
            parcels = [p for p in eff["parcels"] if p.endswith(f"-{hemi}")]
            cl = sorted({int(cluster_of[p]) for p in parcels if p in cluster_of})
            sig = spearman[spearman["parcel"].isin(parcels) & (spearman["band"] == eff["band"])
                           & spearman["significant"].astype(bool)
                           & (spearman["window_start_ms"] >= lo - 1e-6)
                           & (spearman["window_start_ms"] + 200.0 <= hi + 1e-6)]
            if eff["kind"] == "task-dependent":
                found = matching_effects(effects, cl, hemi, eff["band"], eff["condition"],
                                         (lo, hi))
                hit = not found.empty
                detail = "; ".join(f"{r.condition} {r.start_ms:.0f}-{r.end_ms:.0f} ms"
                                   for r in found.itertuples()) or "none"
            else:
                hit = not sig.empty
                detail = f"{len(sig)} significant parcel bins"
            rows.append({"effect": eff["name"], "kind": eff["kind"], "hemi": hemi,
                         "band": eff["band"], "planted_ms": f"{lo:.0f}-{hi:.0f}",
                         "condition": ", ".join(eff["condition"]),
                         "clusters": ", ".join(map(str, cl)), "found": "yes" if hit else "no",
                         "what was found": detail})
    nulls = []
    for parcel in truth.get("null_parcels", []):
        sig = spearman[(spearman["parcel"] == parcel) & spearman["significant"].astype(bool)]
        nulls.append({"null parcel": parcel, "cluster": cluster_of.get(parcel, "n/a"),
                      "significant correlation bins": int(len(sig))})
    return pd.DataFrame(rows), pd.DataFrame(nulls)


def _recovery_summary(planted: pd.DataFrame, nulls: pd.DataFrame,
                      spearman: pd.DataFrame) -> str:
    """Sensitivity and false positives of a simulated study in one sentence."""
    n_found = int((planted["found"] == "yes").sum()) if not planted.empty else 0
    text = f"{n_found} of {len(planted)} planted (effect, hemisphere) pairs found."
    if not nulls.empty:
        n_sig = int(nulls["significant correlation bins"].sum())
        n_bins = int(spearman["parcel"].isin(nulls["null parcel"]).sum())
        with_sig = int((nulls["significant correlation bins"] > 0).sum())
        text += (f" Null parcels: {n_sig} significant bins of {n_bins} "
                 f"({100 * n_sig / max(n_bins, 1):.2f} %; about 0.25 % are expected by chance), "
                 f"in {with_sig} of {len(nulls)} parcels.")
    return text


def participants_section(output_dir: Path) -> tuple[Section, list[str]]:
    """One line per participant report in ``output_dir``: links to its quality-control
    sections and its warnings repeated; and one group warning per participant with warnings.
    """
    import html

    from bids_app.reports.participant import report_warnings_path

    sec = Section("Participants")
    lines, warnings = [], []
    for page in sorted(Path(output_dir).glob("sub-*.html")):
        subject = page.stem[len("sub-"):]
        saved = report_warnings_path(output_dir, subject)
        info = json.loads(saved.read_text()) if saved.is_file() else {}
        anchors = info.get("sections", {})
        links = " · ".join(f'<a href="{html.escape(page.name)}#{html.escape(anchor)}">'
                           f"{html.escape(title)}</a>" for title, anchor in anchors.items()
                           if title in ("Anatomy and parcels", "fMRI", "MEG"))
        found = info.get("warnings", [])
        count = (f'<span class="alert">{len(found)} warning(s)</span>' if found
                 else '<span class="ok">no warnings</span>')
        items = "".join(f"<li>{html.escape(w)}</li>" for w in found)
        lines.append(f'<li><a href="{html.escape(page.name)}">sub-{html.escape(subject)}</a>: '
                     f"{count}{' — ' + links if links else ''}"
                     f"{f'<ul>{items}</ul>' if items else ''}</li>")
        if found:
            warnings.append(f"sub-{subject}: {len(found)} participant-level warning(s), listed "
                            "under Participants")
    if lines:
        sec.raw(f"<ul>{''.join(lines)}</ul>")
    else:
        sec.text("No participant report in this folder.")
    return sec, warnings


#: What the method can and cannot see, for the reader of every group report (issue 25; the
#: measurements are in docs/meg.md, "Focal sources", and docs/statistics.md).
LIMITS_MARKDOWN = """\
The MEG values are parcel means of a beamformer's power change, the fMRI values parcel means of
the BOLD block response. On simulated focal sources (three cortical points within 5 mm, placed
independently of the parcels; `benchmarks/focal_fidelity.py`, docs/meg.md and docs/fmri.md):

- **MEG**: the parcel holding a source was the first or second of 140 for four of five sources
  (block-level r 0.65-0.79, against 0.73-0.87 for a beamformer that knows where the sources
  are and how they point). **Weak low-frequency sources** (theta, 30 nAm) are near the noise in
  10 trials x 200 ms even where the sources are known (r 0.3-0.4; the app: 0.22);
- **fMRI**: a focal BOLD response covering a small share of its parcel is diluted by the parcel
  mean (r 0.13-0.54 for the holding parcel, against 0.93-0.95 for activity spread over the
  parcel); a finer atlas (`--atlas-file`) reduces this;
- with the template anatomy (no T1w) the cortical normals that orient the beamformer are the
  template's, not the participant's.

At the group level these losses multiply: in a simulated focal study of the paper's size
(10 participants x 2 runs, couplings of 0.8-0.95 planted in three cortical points per region,
placed by another atlas), the holding parcels' correlations reached 0.44-0.57 at most, while
20 observations need 0.65 for a significant bin, and **no planted coupling was found**
(docs/statistics.md). A parcel without a significant correlation is therefore not evidence of no
coupling; focal effects need more observations or a finer parcellation around them.
"""


def build_group_report(*, output_dir: Path, atlas: str, tasks: Sequence[str],
                       tables: Sequence[dict], conditions: Sequence[str], bands: Sequence[str],
                       truth_file: Path | None = None) -> Path:
    """Write ``<output_dir>/group.html`` and ``group/figures/*.png``."""
    output_dir = Path(output_dir)
    fig_dir = output_dir / "group" / "figures"
    warnings: list[str] = []
    if atlas == "fallback":
        warnings.append("Parcels: the data-driven fallback parcellation (no atlas file was "
                        "available, or --atlas fallback), not the Destrieux atlas of the paper.")
    participants, participant_warnings = participants_section(output_dir)
    warnings.extend(participant_warnings)
    sections = [participants]
    vertex_labels = cortex_vertex_labels(output_dir, atlas)
    dseg = read_table(dseg_table_path(output_dir, atlas))
    truth = json.loads(Path(truth_file).read_text()) if truth_file else None
    for task, paths in zip(tasks, tables):
        t = {k: read_table(Path(v)) for k, v in paths.items()}
        boot, effects, clusters = t["bootstrap"], t["effects"], t["clusters"]
        settings = json.loads(sidecar_path(paths["spearman"]).read_text())
        sec = Section(f"task {task}")
        sec.subtitle("Effects (Table 1)")
        sec.table(effects.sort_values(["condition", "cluster", "hemi", "band", "start_ms"]))
        sec.text(effects_caution(effects, boot, bands, settings["correction"]))
        rel = lambda p: str(Path(p).relative_to(output_dir))  # noqa: E731
        path = matrix_figure(t["spearman"], clusters, fig_dir / f"task-{task}_matrix.png",
                             conditions=conditions, bands=bands,
                             title=f"MEG-fMRI correlation, task {task}")
        sec.figure(rel(path), "Fig. 2: Spearman rho of every parcel (rows in optimal leaf order, "
                   "lines at cluster borders) for each condition, band and window.")
        if vertex_labels is not None:
            path = cluster_map_figure(clusters, vertex_labels, dseg,
                                      fig_dir / f"task-{task}_clusters.png",
                                      f"Ward clusters, task {task}")
            sec.figure(rel(path), "Fig. 3: clusters of parcels with similar correlation "
                       "patterns on the inflated cortex (excluded regions grey).")
        else:
            warnings.append("The parcellation's vertex labels are missing: no cortex maps.")
        for cluster in sorted(clusters["cluster"].unique()):
            path = cluster_spectra_figure(boot, effects, int(cluster),
                                          fig_dir / f"task-{task}_cluster-{cluster:02d}.png",
                                          conditions=conditions, bands=bands)
            sec.figure(rel(path), f"Figs. 4-5, cluster {cluster}: correlation per window (lines), "
                       "99 % bootstrap intervals (bands), significant windows (dots), effects "
                       "(shaded).")
        path = overlap_figure(effects, t["megttest"], boot, fig_dir / f"task-{task}_overlap.png",
                              bands=bands)
        sec.figure(rel(path), "Fig. 6: where task effects in the MEG-fMRI correlation and in MEG "
                   "power alone fall in time and frequency.")
        path = share_figure(boot, fig_dir / f"task-{task}_share.png")
        sec.figure(rel(path), "Fig. 7: share of significant correlation bins per cluster.")
        if truth is not None:
            planted, nulls = planted_vs_found(truth, clusters, effects, t["spearman"])
            sec.subtitle("Simulation: planted vs found")
            sec.table(planted)
            sec.table(nulls)
            sec.text(_recovery_summary(planted, nulls, t["spearman"]))
        sections.append(sec)
    sections.append(Section("What the method can and cannot see").raw(
        markdown_to_html(LIMITS_MARKDOWN)))
    methods = [output_dir / "logs" / name for name in CITATION_FILES.values()]
    if any(path.is_file() for path in methods):
        sections.append(Section("Methods").raw("".join(
            markdown_to_html(path.read_text()) for path in methods if path.is_file())))
    configs = sorted((output_dir / "logs").glob("config-*.toml"))
    about = Section("About").items([("megfmri-fusion", __version__), ("parcellation", atlas)])
    if configs:
        about.subtitle(f"Configuration ({configs[-1].name})").preformatted(configs[-1].read_text())
    sections.append(about)
    page = render_page("megfmri-fusion group report", f"atlas {atlas}; tasks "
                       f"{', '.join(tasks)}", sections, warnings)
    return write_page(output_dir / "group.html", page)
