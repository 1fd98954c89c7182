"""References cited by the methods text (``[@key]`` in workflow descriptions)."""

REFERENCES: dict[str, str] = {
    "bids": "Gorgolewski KJ, et al. (2016). The brain imaging data structure, a format for "
    "organizing and describing outputs of neuroimaging experiments. Scientific Data 3:160044. "
    "doi:10.1038/sdata.2016.44",
    "megbids": "Niso G, et al. (2018). MEG-BIDS, the brain imaging data structure extended to "
    "magnetoencephalography. Scientific Data 5:180110. doi:10.1038/sdata.2018.110",
    "pybids": "Yarkoni T, et al. (2019). PyBIDS: Python tools for BIDS datasets. Journal of Open "
    "Source Software 4(40):1294. doi:10.21105/joss.01294",
    "mnebids": "Appelhoff S, et al. (2019). MNE-BIDS: Organizing electrophysiological data into "
    "the BIDS format and facilitating their analysis. Journal of Open Source Software 4(44):1896. "
    "doi:10.21105/joss.01896",
    "nipype": "Gorgolewski K, et al. (2011). Nipype: a flexible, lightweight and extensible "
    "neuroimaging data processing framework in Python. Frontiers in Neuroinformatics 5:13. "
    "doi:10.3389/fninf.2011.00013",
    "mne": "Gramfort A, et al. (2013). MEG and EEG data analysis with MNE-Python. Frontiers in "
    "Neuroscience 7:267. doi:10.3389/fnins.2013.00267",
    "freesurfer": "Fischl B (2012). FreeSurfer. NeuroImage 62(2):774-781. "
    "doi:10.1016/j.neuroimage.2012.01.021",
    "destrieux": "Destrieux C, Fischl B, Dale A, Halgren E (2010). Automatic parcellation of "
    "human cortical gyri and sulci using standard anatomical nomenclature. NeuroImage "
    "53(1):1-15. doi:10.1016/j.neuroimage.2010.06.010",
    "mni152": "Fonov VS, Evans AC, Botteron K, Almli CR, McKinstry RC, Collins DL (2011). "
    "Unbiased average age-appropriate atlases for pediatric studies. NeuroImage 54(1):313-327. "
    "doi:10.1016/j.neuroimage.2010.07.033",
    "bbr": "Greve DN, Fischl B (2009). Accurate and robust brain image alignment using "
    "boundary-based registration. NeuroImage 48(1):63-72. doi:10.1016/j.neuroimage.2009.06.060",
    "ants": "Avants BB, Epstein CL, Grossman M, Gee JC (2008). Symmetric diffeomorphic image "
    "registration with cross-correlation: evaluating automated labeling of elderly and "
    "neurodegenerative brain. Medical Image Analysis 12(1):26-41. "
    "doi:10.1016/j.media.2007.06.004",
    "simpleitk": "Lowekamp BC, Chen DT, Ibanez L, Blezek D (2013). The design of SimpleITK. "
    "Frontiers in Neuroinformatics 7:45. doi:10.3389/fninf.2013.00045",
    "power2012": "Power JD, Barnes KA, Snyder AZ, Schlaggar BL, Petersen SE (2012). Spurious but "
    "systematic correlations in functional connectivity MRI networks arise from subject motion. "
    "NeuroImage 59(3):2142-2154. doi:10.1016/j.neuroimage.2011.10.018",
    "spm": "Penny W, Friston K, Ashburner J, Kiebel S, Nichols T (2007). Statistical Parametric "
    "Mapping: The Analysis of Functional Brain Images. Academic Press.",
    "fmriprep": "Esteban O, et al. (2019). fMRIPrep: a robust preprocessing pipeline for "
    "functional MRI. Nature Methods 16:111-116. doi:10.1038/s41592-018-0235-4",
    "tsss": "Taulu S, Simola J (2006). Spatiotemporal signal space separation method for "
    "rejecting nearby interference in MEG measurements. Physics in Medicine and Biology "
    "51(7):1759-1768. doi:10.1088/0031-9155/51/7/008",
    "dics": "Gross J, Kujala J, Hamalainen M, Timmermann L, Schnitzler A, Salmelin R (2001). "
    "Dynamic imaging of coherent sources: studying neural interactions in the human brain. "
    "Proceedings of the National Academy of Sciences 98(2):694-699. doi:10.1073/pnas.98.2.694",
    "spearman": "Spearman C (1904). The proof and measurement of association between two things. "
    "American Journal of Psychology 15(1):72-101. doi:10.2307/1412159",
    "ward": "Ward JH (1963). Hierarchical grouping to optimize an objective function. Journal of "
    "the American Statistical Association 58(301):236-244. doi:10.1080/01621459.1963.10500845",
    "leaforder": "Bar-Joseph Z, Gifford DK, Jaakkola TS (2001). Fast optimal leaf ordering for "
    "hierarchical clustering. Bioinformatics 17(Suppl 1):S22-S29. "
    "doi:10.1093/bioinformatics/17.suppl_1.S22",
    "subsampling": "Politis DN, Romano JP (1994). Large sample confidence regions based on "
    "subsamples under minimal assumptions. Annals of Statistics 22(4):2031-2050. "
    "doi:10.1214/aos/1176325770",
    "scipy": "Virtanen P, et al. (2020). SciPy 1.0: fundamental algorithms for scientific "
    "computing in Python. Nature Methods 17:261-272. doi:10.1038/s41592-019-0686-2",
}
