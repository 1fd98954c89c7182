"""Nipype interfaces of the anatomy stage (thin: they call :mod:`bids_app.io.anatomy`,
:mod:`bids_app.parcels` and :mod:`bids_app.meg.headmodel`)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from bids_app.interfaces.threads import limit_threads, num_threads_trait
from bids_app.io.derivatives import write_json


def _opt_path(value) -> Path | None:
    return Path(value) if isdefined(value) and value else None


class _TemplateInputSpec(BaseInterfaceInputSpec):
    templates_dir = traits.Str(mandatory=True, desc="folder receiving the template subject")


class _TemplateOutputSpec(TraitedSpec):
    subjects_dir = traits.Str(desc="SUBJECTS_DIR holding the template")
    subject_id = traits.Str(desc="template subject name")
    template_dir = traits.Str(desc="the template subject folder")


class TemplateSubject(SimpleInterface):
    """Write (once) the fsaverage5 template subject from installed packages."""

    input_spec = _TemplateInputSpec
    output_spec = _TemplateOutputSpec

    def _run_interface(self, runtime):
        from bids_app.io.templates import write_fsaverage5

        template = write_fsaverage5(Path(self.inputs.templates_dir))
        self._results.update(subjects_dir=str(template.parent), subject_id=template.name,
                             template_dir=str(template))
        return runtime


# --------------------------------------------------------------------------------------------------
class _ParcellateInputSpec(BaseInterfaceInputSpec):
    subjects_dir = traits.Str(mandatory=True, desc="subject's SUBJECTS_DIR")
    subject_id = traits.Str(mandatory=True, desc="subject's FreeSurfer name")
    template_dir = traits.Str(mandatory=True, desc="fsaverage5 template subject folder")
    atlas = traits.Str("fallback", usedefault=True, desc="atlas name")
    atlas_files = traits.List(traits.Str, minlen=2, maxlen=2,
                              desc="left and right atlas files (none: the fallback parcels)")
    parcellation_table = traits.Str(desc="edited dseg table")
    exclude = traits.List(traits.Str, desc="exclusion patterns (default: the atlas' list)")
    n_included_per_hemi = traits.Int(70, usedefault=True, desc="parcels per hemisphere")
    meg_grid = traits.Str("ico4", usedefault=True, desc="MEG grid")
    fmri_grid = traits.Str("ico5", usedefault=True, desc="fMRI grid")
    grid_affine = File(exists=True, desc="template mode: template surface RAS -> surface "
                       "(tkregister) RAS of the image standing for the subject's anatomy")
    output_dir = traits.Str(mandatory=True, desc="derivatives root (atlas table)")


class _ParcellateOutputSpec(TraitedSpec):
    parcellation = File(exists=True, desc="parcellation.npz")
    fmri_grid = File(exists=True, desc="fmri_grid.npz")
    src = File(exists=True, desc="MEG grid source space (-src.fif)")
    table = File(exists=True, desc="the written atlas-<name>_dseg.tsv")
    atlas_label = traits.Str(desc="atlas entity of the outputs")
    report = File(exists=True, desc="summary (JSON)")


class Parcellate(SimpleInterface):
    """Parcellation, grids and the MEG source space of one subject."""

    input_spec = _ParcellateInputSpec
    output_spec = _ParcellateOutputSpec

    def _run_interface(self, runtime):
        import mne

        from bids_app.io.anatomy import (
            make_parcellation,
            subject_grids,
            subject_surfaces,
            write_label_gifti,
        )
        from bids_app.io.derivatives import (FSAVERAGE_REFERENCE, atlas_table_path, sidecar_path,
                                             surface_dseg_path, write_table)
        from bids_app.meg.headmodel import grid_source_space

        cwd = Path(runtime.cwd)
        template = Path(self.inputs.template_dir)
        files = self.inputs.atlas_files
        parcellation = make_parcellation(
            atlas=self.inputs.atlas,
            atlas_files=tuple(Path(f) for f in files) if isdefined(files) else None,
            parcellation_table=_opt_path(self.inputs.parcellation_table),
            exclude=list(self.inputs.exclude) if isdefined(self.inputs.exclude) else [],
            n_included_per_hemi=self.inputs.n_included_per_hemi,
            template_dir=template,
        )
        surfaces = subject_surfaces(Path(self.inputs.subjects_dir), self.inputs.subject_id)
        grids = subject_grids(surfaces, template, meg_grid=self.inputs.meg_grid,
                              fmri_grid=self.inputs.fmri_grid)
        src = grid_source_space(self.inputs.subject_id, self.inputs.subjects_dir, grids["meg"])
        mne.write_source_spaces(cwd / "grid-src.fif", src, overwrite=True, verbose="error")

        # grid point i is fsaverage vertex i; the source space keeps each subject vertex once
        meg_parcel, meg_vertices = [], []
        for hemi, vertices, s in zip(("lh", "rh"), grids["meg"], src):
            parcel = parcellation.parcel_of_vertices(hemi, np.arange(len(vertices)))
            first = {}
            for i, v in enumerate(vertices):
                first.setdefault(int(v), i)
            meg_vertices.append(s["vertno"])
            meg_parcel.append(np.array([parcel[first[int(v)]] for v in s["vertno"]]))
        fmri_points = [np.arange(len(v)) for v in grids["fmri"]]
        np.savez(cwd / "parcellation.npz",
                 names=np.array(parcellation.included_names),
                 hemis=np.array(parcellation.included_hemis),
                 fmri_parcel=parcellation.to_points(fmri_points),
                 meg_parcel=np.concatenate(meg_parcel),
                 meg_vertices_lh=meg_vertices[0], meg_vertices_rh=meg_vertices[1],
                 atlas=np.array(parcellation.atlas))
        white = np.concatenate([s.white[v] for s, v in zip(surfaces, grids["fmri"])])
        pial = np.concatenate([s.pial[v] for s, v in zip(surfaces, grids["fmri"])])
        if isdefined(self.inputs.grid_affine):
            affine = np.loadtxt(self.inputs.grid_affine)
            white = white @ affine[:3, :3].T + affine[:3, 3]
            pial = pial @ affine[:3, :3].T + affine[:3, 3]
        np.savez(cwd / "fmri_grid.npz", white=white, pial=pial,
                 hemi=np.concatenate([np.full(len(v), h) for h, v in enumerate(grids["fmri"])]),
                 vertices=np.concatenate(grids["fmri"]))
        out = Path(self.inputs.output_dir)
        names = parcellation.table["name"].tolist()
        for hemi in ("lh", "rh"):
            label_path = surface_dseg_path(out, parcellation.atlas, hemi)
            write_label_gifti(label_path, parcellation.labels[hemi], names)
            write_json(sidecar_path(label_path), {
                "Description": f"Parcels of the '{parcellation.atlas}' parcellation on the "
                "fsaverage5 mesh (10,242 vertices; label keys are the dseg.tsv 'index').",
                "SpatialReference": FSAVERAGE_REFERENCE,
            })
        table_path = atlas_table_path(out, parcellation.atlas)
        write_table(parcellation.table, table_path,
                    description=f"Parcels of the '{parcellation.atlas}' parcellation on "
                    "fsaverage: atlas labels split into compact parts, with the excluded "
                    "(artefact-prone) regions marked (DESIGN 4.1).")
        counts = parcellation.included.groupby("hemi").size().to_dict()
        write_json(cwd / "anatomy.json", {
            "kind": "anat_parcellation", "atlas": parcellation.atlas,
            "n_parcels": int(len(parcellation.table)), "included_per_hemi": counts,
            "meg_grid": self.inputs.meg_grid, "fmri_grid": self.inputs.fmri_grid,
            "n_meg_points": int(sum(s["nuse"] for s in src)),
            "parcellation": str(cwd / "parcellation.npz"),
        })
        self._results.update(parcellation=str(cwd / "parcellation.npz"),
                             fmri_grid=str(cwd / "fmri_grid.npz"), src=str(cwd / "grid-src.fif"),
                             table=str(table_path), atlas_label=parcellation.atlas,
                             report=str(cwd / "anatomy.json"))
        return runtime


# --------------------------------------------------------------------------------------------------
class _HeadModelInputSpec(BaseInterfaceInputSpec):
    subjects_dir = traits.Str(mandatory=True, desc="subject's SUBJECTS_DIR")
    subject_id = traits.Str(mandatory=True, desc="subject's FreeSurfer name")
    ico = traits.Int(4, usedefault=True, desc="inner-skull downsampling")
    conductivity = traits.Float(0.3, usedefault=True, desc="S/m")
    cache_dir = traits.Str(mandatory=True, desc="content-addressed cache of BEM solutions")
    num_threads = num_threads_trait()


class _HeadModelOutputSpec(TraitedSpec):
    bem = traits.Str(desc="BEM solution file, or 'sphere' when no inner skull exists")
    inner_skull = traits.Str(desc="the inner-skull surface used ('' for the sphere)")
    report = File(exists=True, desc="summary (JSON)")


class HeadModel(SimpleInterface):
    """Single-layer BEM solution of the subject (cached by surface content), else 'sphere'."""

    input_spec = _HeadModelInputSpec
    output_spec = _HeadModelOutputSpec

    def _run_interface(self, runtime):
        import mne

        from bids_app.meg.headmodel import bem_solution, inner_skull_path

        cwd = Path(runtime.cwd)
        skull = inner_skull_path(self.inputs.subject_id, self.inputs.subjects_dir)
        summary = {"kind": "anat_headmodel"}
        self._results["inner_skull"] = str(skull or "")
        if skull is None:
            self._results["bem"] = "sphere"
            summary.update(model="sphere fitted to the head shape",
                           warning="no inner-skull surface: a sphere model is used")
        else:
            digest = hashlib.sha256(skull.read_bytes())
            digest.update(f"{self.inputs.ico}-{self.inputs.conductivity}".encode())
            cached = Path(self.inputs.cache_dir) / f"bem-{digest.hexdigest()[:16]}-sol.fif"
            if not cached.is_file():
                cached.parent.mkdir(parents=True, exist_ok=True)
                with limit_threads(self.inputs.num_threads):
                    sol = bem_solution(self.inputs.subject_id, self.inputs.subjects_dir,
                                       ico=self.inputs.ico,
                                       conductivity=self.inputs.conductivity)
                tmp = cached.with_name(f".{os.getpid()}-{cached.name}")
                mne.write_bem_solution(tmp, sol, overwrite=True, verbose="error")
                os.replace(tmp, cached)
            self._results["bem"] = str(cached)
            summary.update(model=f"single-layer BEM (inner skull, ico-{self.inputs.ico}, "
                           f"{self.inputs.conductivity} S/m)", surface=str(skull))
        write_json(cwd / "headmodel.json", summary)
        self._results["report"] = str(cwd / "headmodel.json")
        return runtime


# --------------------------------------------------------------------------------------------------
class _TransInputSpec(BaseInterfaceInputSpec):
    meg_file = File(exists=True, mandatory=True, desc="a MEG recording of the subject (BIDS)")
    t1w = traits.Str(desc="the subject's BIDS T1w with landmarks in its sidecar")
    subjects_dir = traits.Str(mandatory=True, desc="subject's SUBJECTS_DIR")
    subject_id = traits.Str(mandatory=True, desc="subject's FreeSurfer name")
    mode = traits.Enum("landmarks", "fiducials", mandatory=True,
                       desc="BIDS landmarks (own anatomy) or template fiducials")
    trans_file = traits.Str(desc="an existing -trans.fif (wins over landmarks)")


class _TransOutputSpec(TraitedSpec):
    trans = File(exists=True, desc="head -> MRI transform")
    template_fit = traits.Bool(desc="the transform fits template fiducials (no subject MRI)")
    report = File(exists=True, desc="summary (JSON)")


class HeadMRITrans(SimpleInterface):
    """The head -> MRI transform: given file, BIDS landmarks, or template fiducials."""

    input_spec = _TransInputSpec
    output_spec = _TransOutputSpec

    def _run_interface(self, runtime):
        import mne

        from bids_app.io.anatomy import head_mri_trans

        cwd = Path(runtime.cwd)
        trans, method = head_mri_trans(
            meg_file=Path(self.inputs.meg_file), t1w=_opt_path(self.inputs.t1w),
            subject=self.inputs.subject_id, subjects_dir=Path(self.inputs.subjects_dir),
            mode=self.inputs.mode, trans_file=_opt_path(self.inputs.trans_file),
        )
        mne.write_trans(cwd / "head-mri-trans.fif", trans, overwrite=True, verbose="error")
        template_fit = self.inputs.mode == "fiducials" and _opt_path(self.inputs.trans_file) is None
        write_json(cwd / "trans.json", {"kind": "anat_coregistration", "method": method,
                                        "template_fit": template_fit,
                                        "trans": np.round(trans["trans"], 6).tolist()})
        self._results.update(trans=str(cwd / "head-mri-trans.fif"), report=str(cwd / "trans.json"),
                             template_fit=template_fit)
        return runtime


# --------------------------------------------------------------------------------------------------
class _AnatomyQCInputSpec(BaseInterfaceInputSpec):
    meg_file = File(exists=True, mandatory=True, desc="a MEG recording (digitised points)")
    trans = File(exists=True, mandatory=True, desc="head -> MRI transform")
    template_fit = traits.Bool(False, usedefault=True, desc="the transform is a template fit")
    subjects_dir = traits.Str(mandatory=True, desc="SUBJECTS_DIR of the MEG anatomy")
    subject_id = traits.Str(mandatory=True, desc="FreeSurfer name of the MEG anatomy")
    inner_skull = traits.Str("", usedefault=True, desc="inner-skull surface ('' for a sphere)")
    src = File(exists=True, mandatory=True, desc="MEG source grid")


class _AnatomyQCOutputSpec(TraitedSpec):
    report = File(exists=True, desc="coregistration measures and figures (JSON)")


class AnatomyQC(SimpleInterface):
    """Check the MEG-MRI coregistration (head points against the scalp,
    :mod:`bids_app.meg.coreg_qc`) and draw it, and the head model over the MRI."""

    input_spec = _AnatomyQCInputSpec
    output_spec = _AnatomyQCOutputSpec

    def _run_interface(self, runtime):
        import mne

        from bids_app.io.anatomy import mri_fiducials, scalp_surface
        from bids_app.meg.coreg_qc import head_point_distances, head_points, residual_translation

        cwd = Path(runtime.cwd)
        subject, subjects_dir = self.inputs.subject_id, Path(self.inputs.subjects_dir)
        info = mne.io.read_info(self.inputs.meg_file, verbose="error")
        trans = mne.read_trans(self.inputs.trans, verbose="error")
        points = head_points(info)
        scalp = scalp_surface(subject, subjects_dir)
        summary = {"kind": "anat_qc", "template_fit": bool(self.inputs.template_fit),
                   "n_head_points": int(len(points.extra)), "figures": {}}
        distances = np.zeros(0)
        if scalp is not None and len(points.extra):
            distances = head_point_distances(points.extra, trans["trans"], *scalp)
            shift = residual_translation(points.extra, trans["trans"], *scalp)
            summary.update(head_point_median_mm=float(np.median(distances)),
                           head_point_max_mm=float(distances.max()),
                           residual_translation_mm=float(np.linalg.norm(shift)),
                           residual_translation_xyz_mm=[float(v) for v in shift])
        if scalp is not None:
            summary["figures"]["coregistration"] = str(_coregistration_figure(
                cwd / "coregistration.png", info, trans, points, scalp, distances,
                mri_fiducials(subject, subjects_dir)))
        if self.inputs.inner_skull:
            summary["figures"]["headmodel"] = str(_headmodel_figure(
                cwd / "headmodel.png", Path(self.inputs.inner_skull), subjects_dir / subject,
                mne.read_source_spaces(self.inputs.src, verbose="error")))
        write_json(cwd / "anatomy_qc.json", summary)
        self._results["report"] = str(cwd / "anatomy_qc.json")
        return runtime


def _coregistration_figure(path, info, trans, points, scalp, distances, fiducials_mri):
    """Draw the coregistration in the MRI frame (mm)."""
    import mne

    from bids_app.reports.qc_figures import coregistration_figure

    def to_mri(rr):
        return 1000.0 * mne.transforms.apply_trans(trans, np.asarray(rr).reshape(-1, 3))

    helmet = mne.surface.get_meg_helmet_surf(info, trans, verbose="error")
    return coregistration_figure(
        scalp=(1000.0 * scalp[0], scalp[1]), helmet=(1000.0 * helmet["rr"], helmet["tris"]),
        head_points=to_mri(points.extra), distances_mm=distances,
        fiducials_digitised={k: to_mri(v)[0] for k, v in points.fiducials.items()},
        fiducials_mri={k: 1000.0 * v for k, v in fiducials_mri.items()}, path=path,
        title="MEG-MRI coregistration (MRI frame): scalp, MEG helmet, head points, fiducials")


def _headmodel_figure(path, inner_skull, subject_dir, src):
    """Draw the inner skull and the source grid over the subject's T1.mgz (scanner RAS, mm)."""
    import nibabel as nib

    from bids_app.fmri.geometry import tkr_to_scanner
    from bids_app.fmri.qc import volume_in_box
    from bids_app.io.anatomy import read_surface
    from bids_app.reports.qc_figures import headmodel_figure

    rr, tris = read_surface(inner_skull)
    sources = 1000.0 * np.concatenate([s["rr"][s["vertno"]] for s in src])
    t1 = subject_dir / "mri" / "T1.mgz"
    volume, affine = None, np.eye(4)
    if t1.is_file():
        img = nib.load(t1)
        shift = tkr_to_scanner(img)
        rr, sources = (p @ shift[:3, :3].T + shift[:3, 3] for p in (rr, sources))
        bounds = np.vstack([rr.min(axis=0) - 5, rr.max(axis=0) + 5])
        volume, affine = volume_in_box(np.asarray(img.dataobj, np.float32), img.affine, bounds)
    return headmodel_figure(volume, affine, (rr, tris), sources, path,
                            title="Head model: BEM inner skull (green) and source grid (red)")


# --------------------------------------------------------------------------------------------------
class _TemplateImageOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the MNI152 T1 template (2 mm)")
    grid_affine = File(exists=True, desc="template surface RAS -> the image's tkregister RAS")


class TemplateImage(SimpleInterface):
    """Template mode without a T1w: the MNI152 T1 image (nilearn's packaged copy) stands in for
    the subject's T1w. The fsaverage surfaces are already in its world space (MNI millimetres);
    ``grid_affine`` expresses them in the image's surface (tkregister) RAS, the convention of
    the fMRI grid (:func:`bids_app.fmri.sample_bold_on_surface`)."""

    input_spec = BaseInterfaceInputSpec
    output_spec = _TemplateImageOutputSpec

    def _run_interface(self, runtime):
        from nilearn.datasets import load_mni152_template

        from bids_app.fmri.geometry import tkr_to_scanner

        cwd = Path(runtime.cwd)
        img = load_mni152_template(resolution=2)
        img.to_filename(cwd / "tpl-MNI152_res-2_T1w.nii.gz")
        np.savetxt(cwd / "template_to_tkr.txt", np.linalg.inv(tkr_to_scanner(img)))
        self._results.update(out_file=str(cwd / "tpl-MNI152_res-2_T1w.nii.gz"),
                             grid_affine=str(cwd / "template_to_tkr.txt"))
        return runtime


# --------------------------------------------------------------------------------------------------
class _TemplateT1InputSpec(BaseInterfaceInputSpec):
    t1w = File(exists=True, mandatory=True, desc="the subject's T1w")
    seed = traits.Int(desc="ANTs sampling seed")
    num_threads = num_threads_trait()


class _TemplateT1OutputSpec(TraitedSpec):
    grid_affine = File(exists=True, desc="template surface RAS -> subject T1w surface "
                       "(tkregister) RAS")
    report = File(exists=True, desc="summary (JSON)")


class TemplateToT1w(SimpleInterface):
    """Template mode: affine registration of the subject's T1w to MNI152 (ANTs), giving where
    the fsaverage surfaces (MNI305 coordinates) lie in the subject's T1w."""

    input_spec = _TemplateT1InputSpec
    output_spec = _TemplateT1OutputSpec

    def _run_interface(self, runtime):
        import nibabel as nib

        from nilearn.datasets import load_mni152_template

        from bids_app.fmri.coregister import template_to_t1w_affine
        from bids_app.fmri.geometry import tkr_to_scanner

        seed = int(self.inputs.seed) if isdefined(self.inputs.seed) else None
        t1w = nib.load(self.inputs.t1w)
        with limit_threads(self.inputs.num_threads):
            matrix = template_to_t1w_affine(t1w, load_mni152_template(resolution=2), seed=seed)
        cwd = Path(runtime.cwd)
        # the fMRI grid is in surface (tkregister) RAS of the T1w, as FreeSurfer surfaces are
        np.savetxt(cwd / "template_to_t1w.txt", np.linalg.inv(tkr_to_scanner(t1w)) @ matrix)
        write_json(cwd / "template.json", {
            "kind": "anat_template", "method": "ANTs affine registration of the T1w to MNI152; "
            "fsaverage surfaces placed in the T1w through it (approximate anatomy)"})
        self._results.update(grid_affine=str(cwd / "template_to_t1w.txt"),
                             report=str(cwd / "template.json"))
        return runtime
