"""Maps the repository's top-level folders onto the ``edgeprune.*`` import packages.

pyproject.toml holds the metadata; this file exists only because the folder → package
mapping (host/ → edgeprune.host, ...) needs the sub-packages enumerated.
"""

from setuptools import find_packages, setup

ROOTS = {"host": "edgeprune.host", "export": "edgeprune.export", "bench": "edgeprune.bench"}

packages: list[str] = []
package_dir: dict[str, str] = {}
for folder, name in ROOTS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
