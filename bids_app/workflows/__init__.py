"""workflows: the nipype graphs of the participant and group levels."""

from bids_app import __version__


def workflow_name(level: str) -> str:
    """The name of a level's top workflow, which is also its folder in the work directory:
    ``megfmri_participant_0_1_wf`` for version 0.1.x. As fMRIPrep does, the name carries the
    app's major and minor version, so an upgraded app never reuses steps that an older one
    cached (nipype's cache is keyed by a step's inputs, not by the code that computes it)."""
    major, minor = __version__.split(".")[:2]
    return f"megfmri_{level}_{major}_{minor}_wf"
