"""Ship the top-level ``kernels/`` and ``phantoms/`` folders inside the wheel.

They are installed as the data packages ``petrecon.kernels`` and
``petrecon.phantoms`` (found at run time by :mod:`petrecon.resources`); all
other metadata lives in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

DATA_PACKAGES = {"petrecon.kernels": "kernels", "petrecon.phantoms": "phantoms"}

setup(
    packages=find_packages(include=["petrecon", "petrecon.*"]) + list(DATA_PACKAGES),
    package_dir=DATA_PACKAGES,
    package_data={"petrecon": ["protocols/*.toml"], "petrecon.kernels": ["*.cu", "*.cuh"],
                  "petrecon.phantoms": ["*.toml"]},
)
