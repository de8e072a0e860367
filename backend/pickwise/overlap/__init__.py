"""Adaptive overlap: how many raters each pair gets, decided as the votes come in."""
