"""Quantification of calibrated PET volumes; knows nothing of reconstruction.

Modules: ``suv`` and ``body`` (SUV from parameters, LBM/BSA/IBW),
``suv_dicom`` (QIBA SUV logic on DICOM headers), ``roi`` (VOI masks,
isocontours, lesion growing), ``labels`` (VOIs from NIfTI label images and
DICOM-SEG files, on the PET grid), ``stats`` (max, mean, peak, MTV, TLG, T/B),
``organs`` (liver, spleen, marrow reference VOIs), ``nema`` (NEMA NU 2 image
quality of the IEC phantom), ``earl`` (the EARL band table), ``analytic``
(blurred-sphere recovery), ``plot`` (recovery curves), ``cohort*`` (cohort
tables, tests, figures), ``report`` (ROI records for the command line).
"""
