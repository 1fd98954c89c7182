# megfmri-fusion BIDS App image: FreeSurfer 7.4.1 (reduced), the Python environment, and every
# template/atlas file the app looks up, fetched at build time so that runs need no network.
#
#   VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' bids_app/__init__.py)
#   docker build --build-arg VERSION="$VERSION" --build-arg VCS_REF="$(git rev-parse HEAD)" \
#       --build-arg BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
#       -t "megfmri/megfmri-fusion:$VERSION" .
#
# What is pinned, and how to move it forward (docs/containers.md, "What the image pins"):
# - the base image by digest (BASE_IMAGE);
# - Debian packages by version, from the Debian snapshot archive at DEBIAN_SNAPSHOT, where those
#   versions stay available (the mirrors drop them at each point release);
# - FreeSurfer's tarball by its SHA-256 (FREESURFER_SHA256);
# - Python packages by version and SHA-256 (image-requirements.txt, from .ci/lock.py; the same
#   versions as constraints.txt, which CI installs);
# - the version of the app: bids_app/__init__.py only; the build refuses a VERSION that differs.
# Dependency layers come before the source layers: editing the code rebuilds only the last ones.

ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
ARG DEBIAN_SNAPSHOT=20261203T030000Z

# ---- FreeSurfer, reduced to what the app runs (recon-all, bbregister, mri_vol2surf, watershed) --
FROM ${BASE_IMAGE} AS freesurfer
ARG DEBIAN_SNAPSHOT
ARG FREESURFER_VERSION=7.4.1
ARG FREESURFER_SHA256=6db470445f3b2e973fcfdc9231c775896e54a4dbfc4ce0d5ef5775bc7dca182d
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN sed -i \
        -e "s|http://deb.debian.org/debian-security|http://snapshot.debian.org/archive/debian-security/${DEBIAN_SNAPSHOT}|" \
        -e "s|http://deb.debian.org/debian|http://snapshot.debian.org/archive/debian/${DEBIAN_SNAPSHOT}|" \
        /etc/apt/sources.list.d/debian.sources \
    && apt-get -o Acquire::Check-Valid-Until=false update \
    && apt-get install -y --no-install-recommends \
        ca-certificates=20250419~deb12u2 \
        curl=7.88.1-10+deb12u15 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /tmp/freesurfer
RUN curl -fsSL --retry 5 -o freesurfer.tar.gz \
        "https://surfer.nmr.mgh.harvard.edu/pub/dist/freesurfer/${FREESURFER_VERSION}/freesurfer-linux-ubuntu22_amd64-${FREESURFER_VERSION}.tar.gz" \
    && echo "${FREESURFER_SHA256}  freesurfer.tar.gz" | sha256sum --check --strict - \
    && tar -xzf freesurfer.tar.gz -C /opt \
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
      --exclude='freesurfer/models' \
    && rm freesurfer.tar.gz

# ---- The application --------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG DEBIAN_SNAPSHOT
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Runtime libraries of FreeSurfer and ANTsPy; Graphviz for --write-graph; jq for Brainlife's
# `main`, which reads config.json.
RUN sed -i \
        -e "s|http://deb.debian.org/debian-security|http://snapshot.debian.org/archive/debian-security/${DEBIAN_SNAPSHOT}|" \
        -e "s|http://deb.debian.org/debian|http://snapshot.debian.org/archive/debian/${DEBIAN_SNAPSHOT}|" \
        /etc/apt/sources.list.d/debian.sources \
    && apt-get -o Acquire::Check-Valid-Until=false update \
    && apt-get install -y --no-install-recommends \
        bc=1.07.1-3+b1 \
        graphviz=2.42.2-7+deb12u1 \
        jq=1.6-2.1+deb12u3 \
        libglu1-mesa=9.0.2-1.1 \
        libgomp1=12.2.0-14+deb12u1 \
        libxt6=1:1.2.1-1.1 \
        perl=5.36.0-7+deb12u4 \
        tcsh=6.24.07-1 \
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

# The run-time environment (tests/test_sandbox.py runs the app with exactly these variables):
# nothing is written to $HOME or the image. Caches that the libraries would put in $HOME go to
# /tmp; when /tmp is not writable either (docker run --read-only without --tmpfs /tmp), the app
# moves them into the work folder (docs/containers.md).
ENV HOME=/home/megfmri \
    MPLCONFIGDIR=/tmp/matplotlib \
    XDG_CACHE_HOME=/tmp/cache \
    MNE_DONTWRITE_HOME=true \
    NIPYPE_NO_ET=1 \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0 \
    NILEARN_DATA=/opt/nilearn_data \
    MEGFMRI_CONTAINER=docker \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1
RUN useradd --no-create-home --home-dir /home/megfmri --uid 1000 megfmri \
    && mkdir -p /home/megfmri

# Python dependencies: exact versions, every file checked against its SHA-256. One of them
# (docopt) is a source distribution: it is built with the pinned setuptools, installed first,
# rather than in an isolated build environment, whose downloads hash-checking mode refuses.
COPY image-requirements.txt /tmp/image-requirements.txt
RUN grep -A1 --no-group-separator -E '^(setuptools|wheel)==' /tmp/image-requirements.txt \
        > /tmp/build-requirements.txt \
    && python -m pip install --no-cache-dir --no-deps --require-hashes \
        -r /tmp/build-requirements.txt \
    && python -m pip install --no-cache-dir --no-deps --require-hashes --no-build-isolation \
        -r /tmp/image-requirements.txt \
    && rm /tmp/image-requirements.txt /tmp/build-requirements.txt

# Templates and atlases fetched now, so that runs are offline. FreeSurfer's fsaverage (with
# aparc.a2009s) is in $FREESURFER_HOME/subjects; TemplateFlow's tpl-fsaverage Destrieux2009
# (its name for aparc.a2009s) and nilearn's Destrieux surface atlas are the other places the app
# searches. Neither publisher gives checksums for these files, so the build checks their content
# (readable label files with the Destrieux labels on fsaverage / fsaverage5).
RUN python -c "from templateflow import api; \
files = api.get('fsaverage', atlas='Destrieux2009', density='164k', suffix='dseg', extension='.label.gii', desc=None, raise_empty=True); \
assert len(files) == 2, files" \
    && python -c "from nilearn.datasets import fetch_atlas_surf_destrieux as f; \
a = f(data_dir='/opt/nilearn_data'); assert len(a['labels']) > 70 and len(a['map_left']) == 10242" \
    && python -c "import nibabel as nib, glob; \
files = sorted(glob.glob('/opt/templateflow/tpl-fsaverage/*_den-164k_atlas-Destrieux2009_dseg.label.gii')); \
assert len(files) == 2 and all(nib.load(f).agg_data().size == 163842 and len(nib.load(f).labeltable.labels) > 70 for f in files), files" \
    && chmod -R a+rX /opt/templateflow /opt/nilearn_data

# The application itself: the last layers.
WORKDIR /src/megfmri-fusion
COPY pyproject.toml README.md ./
COPY bids_app ./bids_app
ARG VERSION
RUN python -m pip install --no-cache-dir --no-deps --no-build-isolation . \
    && python -m pip check \
    && built="$(python -c 'import bids_app; print(bids_app.__version__)')" \
    && if [ "${VERSION}" != "${built}" ]; then \
        echo "--build-arg VERSION=${VERSION} differs from bids_app.__version__ ${built}" >&2; \
        exit 1; fi \
    && python -c "from bids_app.io.atlases import find_atlas; print(find_atlas('destrieux'))"

ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
ENV MEGFMRI_CONTAINER_TAG=megfmri/megfmri-fusion:${VERSION} \
    MEGFMRI_VCS_REF=${VCS_REF}
LABEL org.opencontainers.image.title="megfmri-fusion" \
      org.opencontainers.image.description="BIDS App: MEG-fMRI fusion (Spearman, Ward, bootstrap)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.source="https://github.com/megfmri-fusion/megfmri-fusion" \
      org.opencontainers.image.url="https://github.com/megfmri-fusion/megfmri-fusion" \
      org.opencontainers.image.documentation="https://github.com/megfmri-fusion/megfmri-fusion/blob/main/docs/containers.md" \
      org.opencontainers.image.licenses="BSD-3-Clause"

WORKDIR /tmp
USER 1000:1000
ENTRYPOINT ["megfmri-fusion"]
CMD ["--help"]
