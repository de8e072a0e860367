"""Package layout; everything else is in pyproject.toml.

The repository keeps frontend/ (templates, static files) and migrations/ (Alembic) at the top
level. They travel inside the package as `pickwise.frontend` and `pickwise.migrations`, so a
wheel installed anywhere finds them with importlib.resources, and so does the editable
install (setuptools maps the two packages to the top-level folders).
"""

from setuptools import find_namespace_packages, setup

MAPPED = {"pickwise.frontend": "frontend", "pickwise.migrations": "migrations"}


def packages() -> list[str]:
    # Folders that only hold data are listed too (as namespace packages), as setuptools asks.
    found = find_namespace_packages("backend", include=["pickwise*"])
    for package, folder in MAPPED.items():
        found += [package, *(f"{package}.{sub}" for sub in find_namespace_packages(folder))]
    return found


setup(packages=packages(), package_dir={"": "backend", **MAPPED})
