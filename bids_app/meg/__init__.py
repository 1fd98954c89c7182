"""Pure code: MEG preprocessing, head models and event-related DICS power (DESIGN 4.3).

Functions here take and return arrays and MNE objects; they know nothing of nipype, BIDS file
names or the app configuration.
"""
