"""Reproduction of Jiang, Wang, Cheng, Du, Li, "Unsupervised Hashing with Gradient Attention",
Symmetry 2020, 12(7):1193 (doi 10.3390/sym12071193): its Tables 2, 3 and 4 and the claims they support.

This module holds only what is the paper's, as data: its method labels (:data:`PAPER_NAMES`), the
tables' layouts (:data:`TABLES`), the claims (:data:`CLAIMS`), the datasets and metrics, the default
input; :data:`REPRODUCTION` is the :class:`~hashbench.reproductions.base.Reproduction` built from them,
whose methods plan the cells, write the commands, lay the tables beside the published values and test
the claims. The module-level functions below are that object's methods.

The tables, as read from the paper (values in ``data/uhga2020_published.csv``; CIFAR-10 MAP over the
whole database, NUS-WIDE MAP@5000):

- **Table 2** (section 3.2, hyperparameter analysis): UHGA+GA at 16/32/64/128 bits for a swept value
  0, 0.1, ..., 0.9 that the text does not name. hashbench reads it as the cosine-*similarity*
  threshold ``sim_threshold`` of the similarity matrix (S_ij = 1 iff cos(f_i, f_j) >= the threshold):
  that reading explains the published pattern (16-bit CIFAR-10 collapses at 0 and 0.1, every length
  degrades from 0.7 up); the distance reading predicts the opposite ends (the docstring of
  ``baselines/uhga.py`` and docs/METHODS.md section 10 give the argument).
- **Table 3** (section 3.3, the effect of gradient attention): SSDH, SSDH+GA, UHGA, UHGA+GA.
- **Table 4** (section 3.4, comparison): SH, SPH, ITQ, DSH, SSDH, HashGAN, USDH, UHGA+GA. LSH is not in
  the paper; where it was run it is shown first as a reference row (no published value).

**Input.** The paper uses AlexNet (fc7 features for the similarity, the network fine-tuned). By default
this reproduction runs every method on the CNN features ``cnn:efficientnet-lite0`` on the features
track (hash layers or shallow methods trained on fixed features, a CPU-sized run; HashGAN's generator
and discriminator/encoder are MLPs on the same features there, ``--track end2end`` trains the paper's
convolutional HashGAN from scratch on the images). Every function takes ``representation``/``track`` to
use another input; gaps to the published numbers are expected where the input differs.

**Claims** (:func:`claims`): GA improves SSDH at every length; GA improves UHGA at every length;
UHGA+GA beats every baseline at every length; the best threshold of Table 2 beats the runner-up (each
tested as :mod:`hashbench.reproductions.base` describes); as hashbench's own extension (not a published
claim), UHGA+GA beats BiHalf (AAAI 2021) and GreedyHash (NeurIPS 2018), the unsupervised methods later
work compares with (Table 4's last rows, no published value); and GA *speeds up* SSDH's and UHGA's
learning, the claim of the technique's own paper ("Accelerate Learning of Deep Hashing with Gradient
Attention"), tested on learning curves recorded on a validation part of the training set
(:mod:`hashbench.reproductions.speedup`).
"""

from __future__ import annotations

from ..results.display import display_order
from .base import (
    CLAIM_COLUMNS,
    BestValueClaim,
    Claim,
    Reproduction,
    Sweep,
    Table,
    cell_name,
    cell_rows,
    claim_verdict,
)
from .speedup import SpeedupClaim

NAME = "uhga2020"
TITLE = "Jiang et al., Unsupervised Hashing with Gradient Attention (Symmetry 2020)"
CITATION = (
    "Jiang, Wang, Cheng, Du, Li, Unsupervised Hashing with Gradient Attention, Symmetry 2020, 12(7):1193, "
    "doi 10.3390/sym12071193"
)
PUBLISHED_FILE = "uhga2020_published.csv"

#: the paper's method labels -> hashbench's registered names.
PAPER_NAMES = {
    "SH": "sh", "SPH": "sph", "ITQ": "itq", "DSH": "dsh", "SSDH": "ssdh", "SSDH+GA": "ssdh+ga",
    "HashGAN": "hashgan", "USDH": "usdh", "UHGA": "uhga", "UHGA+GA": "uhga+ga",
}  # fmt: skip
#: registered name -> the paper's label.
LABELS = {v: k for k, v in PAPER_NAMES.items()}
#: methods shown first as reference rows of Table 4 where they were run (no published value).
REFERENCE_METHODS = ("lsh",)
#: unsupervised methods published after the paper, compared with UHGA+GA as hashbench's own extension
#: (Table 4's last rows, no published value): display label -> registered name.
LATER_METHODS = {"BiHalf": "bihalf", "GreedyHash": "greedyhash"}
BITS = (16, 32, 64, 128)
#: Table 2: the method, its swept parameter and the values.
SWEPT_METHOD = "uhga+ga"
SWEPT_PARAM = "sim_threshold"
THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(10))
DEFAULT_REPRESENTATION = "cnn:efficientnet-lite0"
DEFAULT_TRACK = "features"
#: dataset -> the paper's metric there (label, the K of MAP@K) and the value of the published CSV's column.
DATASETS = {
    "cifar10": {"metric": "MAP@ALL", "topk": None, "published_metric": "map@all"},
    "nuswide21": {"metric": "MAP@5000", "topk": 5000, "published_metric": "map@5000"},
}
TABLE_METHODS = {
    3: ("SSDH", "SSDH+GA", "UHGA", "UHGA+GA"),
    4: ("SH", "SPH", "ITQ", "DSH", "SSDH", "HashGAN", "USDH", "UHGA+GA"),
}
TABLES = {
    2: Table(
        "Table 2, hyperparameter analysis (UHGA+GA's similarity threshold)",
        sweep=Sweep(
            SWEPT_METHOD,
            SWEPT_PARAM,
            THRESHOLDS,
            column="threshold",
            note="The swept value is read as UHGA+GA's cosine-similarity threshold `sim_threshold` (the paper "
            "does not name it; hashbench_baselines.uhga explains the reading).",
        ),
    ),
    3: Table("Table 3, the effect of gradient attention", TABLE_METHODS[3]),
    4: Table("Table 4, comparison", TABLE_METHODS[4], reference_rows=True),
}
#: the baselines UHGA+GA is claimed to beat (Table 4 less UHGA+GA).
BASELINES = tuple(PAPER_NAMES[label] for label in TABLE_METHODS[4] if label != "UHGA+GA")
CLAIM_LIST = (
    Claim("ga_improves_ssdh", "GA improves SSDH at every length (Table 3)", "ssdh+ga", ("ssdh",), 3),
    Claim("ga_improves_uhga", "GA improves UHGA at every length (Table 3)", "uhga+ga", ("uhga",), 3),
    Claim("uhga_ga_beats_baselines", "UHGA+GA beats every baseline at every length (Table 4)", "uhga+ga",
          BASELINES, 4),
    BestValueClaim("best_threshold", "the best threshold of Table 2 beats the runner-up", 2),
    Claim("uhga_ga_beats_later", "UHGA+GA beats BiHalf and GreedyHash at every length (hashbench's extension: "
          "methods published after the paper)", "uhga+ga", tuple(LATER_METHODS.values()), 4, extension=True),
    SpeedupClaim("ga_speeds_up_ssdh", "GA speeds up SSDH's learning (epochs to 0.9 of the final validation MAP)",
                 "ssdh+ga", "ssdh"),
    SpeedupClaim("ga_speeds_up_uhga", "GA speeds up UHGA's learning (epochs to 0.9 of the final validation MAP)",
                 "uhga+ga", "uhga"),
)  # fmt: skip
CLAIMS = {c.key: c.statement for c in CLAIM_LIST}

REPRODUCTION = Reproduction(
    name=NAME,
    title=TITLE,
    citation=CITATION,
    short_name="UHGA paper",
    package=__package__,
    published_file=PUBLISHED_FILE,
    paper_names=PAPER_NAMES,
    datasets=DATASETS,
    tables=TABLES,
    claims=CLAIM_LIST,
    bits=BITS,
    reference_methods=REFERENCE_METHODS,
    extension_names=LATER_METHODS,
    default_representation=DEFAULT_REPRESENTATION,
    default_track=DEFAULT_TRACK,
    paper_input="AlexNet",
)

# the reproduction's methods under the names this module has always had
published = REPRODUCTION.published
label = REPRODUCTION.label
input_for = REPRODUCTION.input_for
required_cells = REPRODUCTION.required_cells
missing_cells = REPRODUCTION.missing_cells
commands = REPRODUCTION.commands
paper_table = REPRODUCTION.paper_table
tables = REPRODUCTION.all_tables
render_paper_table = REPRODUCTION.render_paper_table
claims = REPRODUCTION.test_claims
summarise_claims = REPRODUCTION.summarise_claims
render_claims_markdown = REPRODUCTION.render_claims_markdown
metric_warning = REPRODUCTION.metric_warning
render_outputs = REPRODUCTION.render_outputs

__all__ = [
    "BASELINES", "BITS", "CITATION", "CLAIMS", "CLAIM_COLUMNS", "DATASETS", "DEFAULT_REPRESENTATION",
    "DEFAULT_TRACK", "LABELS", "NAME", "PAPER_NAMES", "REPRODUCTION", "TABLES", "TABLE_METHODS", "THRESHOLDS",
    "TITLE", "cell_name", "cell_rows", "claim_verdict", "claims", "commands", "display_order", "input_for",
    "label", "metric_warning", "missing_cells", "paper_table", "published", "render_claims_markdown",
    "render_outputs", "render_paper_table", "required_cells", "summarise_claims", "tables",
]  # fmt: skip
