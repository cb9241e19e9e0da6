"""Genetic hardware-aware search over approximate integer MLPs.

* :mod:`.approx`: hardware-friendly weight sets and CSD (signed-digit) arithmetic;
* :mod:`.genome`: the genome of an approximate MLP, its :class:`SearchSpace`, and the
  exact mapping to and from :class:`~hwmlp.intmlp.IntMLP`;
* :mod:`.operators`: doping, mutation and crossover operators (DEAP conventions);
* :mod:`.fitness`: accuracy of a population, vectorized over population x samples;
* :mod:`.cost`: the fast bit-heap hardware cost model and its calibration;
* :mod:`.nsga`: the NSGA-II loop with checkpoint/resume and validation selection.
"""

from .approx import WeightSet
from .cost import COMPONENTS, FEATURES, Calibration, CostModel, CostReport, agreement, fit_calibration
from .fitness import PopulationEvaluator
from .genome import Genome, SearchSpace, from_intmlp, to_intmlp
from .nsga import Design, Doping, GenerationStats, SearchConfig, SearchResult, run_search, validation_split

__all__ = [
    "WeightSet",
    "COMPONENTS",
    "FEATURES",
    "Calibration",
    "CostModel",
    "CostReport",
    "agreement",
    "fit_calibration",
    "PopulationEvaluator",
    "Genome",
    "SearchSpace",
    "from_intmlp",
    "to_intmlp",
    "Design",
    "Doping",
    "GenerationStats",
    "SearchConfig",
    "SearchResult",
    "run_search",
    "validation_split",
]
