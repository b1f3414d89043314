"""Reports: self-contained HTML pages (:mod:`petrecon.report.html`), image figures
(:mod:`petrecon.report.figures`) and the NEMA NU 2 / EARL section (:mod:`petrecon.report.nema`).

Function-first: each function returns a fragment of HTML (:class:`~petrecon.report.html.Html`)
that the caller assembles into a :func:`~petrecon.report.html.document`, so a batch
reprocessing builds one page per study, or one page for a cohort, from the same parts.
"""
