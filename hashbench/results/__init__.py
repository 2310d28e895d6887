"""Results: what the records of a run folder say, read back without retraining.

:mod:`~hashbench.results.tables` builds one frame from records and scores and writes the tables;
:mod:`~hashbench.results.display` orders and styles methods as they declare;
:mod:`~hashbench.results.stats` compares two methods over the same queries;
:mod:`~hashbench.results.conventions` gives the MAP other tools would report;
:mod:`~hashbench.results.reference` checks a run against a MAP reference, and
:mod:`~hashbench.results.ci_output` writes what CI systems read; :mod:`~hashbench.results.verify`
checks every stored artefact. Figures and the HTML report are :mod:`hashbench.figures`.
"""
