"""Pure code: group statistics — Spearman fusion, Ward clustering, bootstrap, contrasts (DESIGN 5).

Functions here take and return arrays and pandas tables; they know nothing of nipype, files or the
app configuration.
"""
