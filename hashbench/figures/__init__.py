"""Figures and the HTML report, drawn from records, their scores and the reproductions' tables.

:mod:`~hashbench.figures.plots` draws each dataset's figures; :mod:`~hashbench.figures.report`
builds the self-contained HTML report around them. matplotlib loads on the first figure.
"""
