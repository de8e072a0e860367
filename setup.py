"""Package layout; everything else is in pyproject.toml.

The repository keeps frontend/ (templates, static files) and migrations/ (Alembic) at the top
level. They travel inside the package as `pickwise.frontend` and `pickwise.migrations`, so a
wheel installed anywhere finds them with importlib.resources, and so does the editable
install (setuptools maps the two packages to the top-level folders).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("backend"), "pickwise.frontend", "pickwise.migrations"],
    package_dir={
        "": "backend",
        "pickwise.frontend": "frontend",
        "pickwise.migrations": "migrations",
    },
)
