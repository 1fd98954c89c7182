"""Pure code: cortical parcellations, analysis grids and their mapping to subjects.

Functions here take and return arrays and MNE/nibabel objects; they know nothing of nipype,
BIDS file names or the app configuration.
"""
