"""megfmri-fusion: a BIDS App that fuses MEG beamformer power with fMRI block responses.

The package is layered (see ``docs/architecture.md``):

* pure code — :mod:`bids_app.parcels`, :mod:`bids_app.fmri`, :mod:`bids_app.meg`,
  :mod:`bids_app.stats` — functions on arrays and MNE/nibabel objects;
* :mod:`bids_app.interfaces` and :mod:`bids_app.workflows` — the nipype graph;
* :mod:`bids_app.cli`, :mod:`bids_app.config`, :mod:`bids_app.io`, :mod:`bids_app.reports`,
  :mod:`bids_app.simulate` — the application around it.

Importing the package has no side effects.
"""

__version__ = "0.1.0"
