"""Pure code: fMRI preprocessing steps and parcel block estimates (DESIGN 4.2).

Functions here take and return arrays and nibabel images; they know nothing of nipype, BIDS file
names or the app configuration.
"""
