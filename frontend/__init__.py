"""Templates and static files, shipped inside the package as `pickwise.frontend` (setup.py)."""
