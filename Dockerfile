# megfmri-fusion BIDS App image: FreeSurfer 7.4.1 (minimal), the Python environment, and every
# template/atlas file the app looks up, fetched at build time so that runs need no network.
#
#   docker build -t megfmri/megfmri-fusion:0.1.0 .
#   docker run --rm -v /data/ds:/data:ro -v /data/out:/out \
#       -v $HOME/license.txt:/opt/freesurfer/license.txt:ro \
#       megfmri/megfmri-fusion:0.1.0 /data /out participant --participant-label 01

ARG FREESURFER_VERSION=7.4.1

# ---- FreeSurfer, reduced to what the app runs (recon-all, bbregister, mri_vol2surf, watershed) --
FROM debian:bookworm-slim AS freesurfer
ARG FREESURFER_VERSION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL "https://surfer.nmr.mgh.harvard.edu/pub/dist/freesurfer/${FREESURFER_VERSION}/freesurfer-linux-ubuntu22_amd64-${FREESURFER_VERSION}.tar.gz" \
    | tar -xz -C /opt \
      --exclude='freesurfer/diffusion' \
      --exclude='freesurfer/docs' \
      --exclude='freesurfer/fsfast' \
      --exclude='freesurfer/lib/cuda' \
      --exclude='freesurfer/matlab' \
      --exclude='freesurfer/mni/share/man' \
      --exclude='freesurfer/subjects/bert' \
      --exclude='freesurfer/subjects/cvs_avg35*' \
      --exclude='freesurfer/subjects/fsaverage_sym' \
      --exclude='freesurfer/subjects/fsaverage3' \
      --exclude='freesurfer/subjects/fsaverage4' \
      --exclude='freesurfer/subjects/V1_average' \
      --exclude='freesurfer/trctrain' \
      --exclude='freesurfer/python/packages/netfslib' \
      --exclude='freesurfer/average/mult-comp-cor' \
      --exclude='freesurfer/models'

# ---- The application --------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Runtime libraries of FreeSurfer and ANTsPy; Graphviz for --write-graph; Chromium is not needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        bc \
        graphviz \
        libgomp1 \
        libglu1-mesa \
        libxt6 \
        perl \
        tcsh \
    && rm -rf /var/lib/apt/lists/*

COPY --from=freesurfer /opt/freesurfer /opt/freesurfer
ENV FREESURFER_HOME=/opt/freesurfer \
    SUBJECTS_DIR=/opt/freesurfer/subjects \
    FUNCTIONALS_DIR=/opt/freesurfer/sessions \
    FSF_OUTPUT_FORMAT=nii.gz \
    FS_OVERRIDE=0 \
    FIX_VERTEX_AREA="" \
    MNI_DIR=/opt/freesurfer/mni \
    LOCAL_DIR=/opt/freesurfer/local \
    MINC_BIN_DIR=/opt/freesurfer/mni/bin \
    MINC_LIB_DIR=/opt/freesurfer/mni/lib \
    MNI_DATAPATH=/opt/freesurfer/mni/data \
    PERL5LIB=/opt/freesurfer/mni/share/perl5 \
    PATH=/opt/freesurfer/bin:/opt/freesurfer/mni/bin:$PATH

# Writable places for caches when the container is read-only or run as another user
# (docker run -u $(id -u), Singularity): nothing is written to $HOME or the image at run time.
ENV HOME=/home/megfmri \
    MPLCONFIGDIR=/tmp/matplotlib \
    MNE_DONTWRITE_HOME=true \
    NIPYPE_NO_ET=1 \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0 \
    NILEARN_DATA=/opt/nilearn_data \
    MEGFMRI_CONTAINER=docker \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1
RUN useradd --create-home --home-dir /home/megfmri --uid 1000 megfmri \
    && chmod 777 /home/megfmri

WORKDIR /src/megfmri-fusion
COPY pyproject.toml README.md ./
COPY bids_app ./bids_app
RUN python -m pip install --no-cache-dir . \
    && python -c "import bids_app, mne, nipype, bids, mne_bids, nilearn, ants"

# Templates and atlases fetched now, so that runs are offline: TemplateFlow's fsaverage and
# nilearn's Destrieux surface atlas (FreeSurfer's own fsaverage is in $FREESURFER_HOME/subjects).
RUN python -c "from templateflow import api; api.get('fsaverage', density='164k', suffix='sphere', raise_empty=False); api.get('fsaverage', atlas='Destrieux', raise_empty=False)" \
    && python -c "from nilearn.datasets import fetch_atlas_surf_destrieux; fetch_atlas_surf_destrieux(data_dir='/opt/nilearn_data')" \
    && chmod -R a+rX /opt/templateflow /opt/nilearn_data

ENV MEGFMRI_CONTAINER_TAG=megfmri/megfmri-fusion:0.1.0
WORKDIR /tmp
USER 1000:1000
ENTRYPOINT ["megfmri-fusion"]
CMD ["--help"]

LABEL org.opencontainers.image.title="megfmri-fusion" \
      org.opencontainers.image.description="BIDS App: MEG-fMRI fusion (Spearman, Ward, bootstrap)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="BSD-3-Clause"
