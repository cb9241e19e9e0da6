"""NSGA-II over approximate MLP genomes: accuracy vs hardware cost.

:func:`run_search` seeds a population from a trained, quantized :class:`IntMLP`
(population doping: the exact copy, near-exact copies, hard-pruned sparse copies,
random genomes), then runs a (mu + lambda) NSGA-II (``deap.tools.selNSGA2``,
elitist by construction) on two objectives: accuracy on the fitness data
(maximized) and modelled hardware cost (area in um^2 or leakage in nW, minimized).

The accuracy constraint is handled by constrained domination: a genome whose
accuracy falls more than ``max_accuracy_loss`` below the seed model's is
infeasible; its fitness becomes ``(accuracy, PENALTY + violation)``, so every
feasible genome dominates it and a smaller violation dominates a larger one.

Every operator is registered in a ``deap.base.Toolbox`` (:func:`build_toolbox`);
``customize`` may re-register any of them. All randomness comes from one
``numpy.random.Generator`` seeded by the config: a fixed seed gives an identical
run. After every generation the whole state (population, Pareto archive, random
generator, history) is written atomically as JSON; :func:`run_search` with
``resume=True`` continues from it to exactly the result of an uninterrupted run.

Final designs are selected on a validation split (carved from the training data
by :func:`validation_split`), never on test data: the archive's designs are
re-evaluated there and the non-dominated ones within the loss budget form the
front.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from deap import base, tools

from ..errors import HwmlpError
from ..intmlp import IntMLP
from ..io import read_json, write_bytes_atomic
from . import operators as ops
from .cost import CostModel
from .fitness import PopulationEvaluator
from .genome import Genome, GenomeBatch, SearchSpace, from_intmlp, to_intmlp

CHECKPOINT_FORMAT = "hwmlp.search-checkpoint"
CHECKPOINT_VERSION = 1
OBJECTIVES = ("area", "power")

#: Cost given to infeasible genomes, above any real design (um^2 or nW).
PENALTY = 1e15


@dataclass(frozen=True)
class Doping:
    """Fractions of the initial population besides the one exact copy of the seed."""

    near_exact: float = 0.3
    sparse: float = 0.5
    random: float = 0.2

    def __post_init__(self):
        parts = (self.near_exact, self.sparse, self.random)
        if min(parts) < 0 or sum(parts) <= 0:
            raise HwmlpError("doping fractions must be non-negative and not all zero")


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one search.

    ``population``: mu, survivors per generation; ``offspring``: lambda, children per
    generation; ``crossover_prob``: chance a pair of children is crossed;
    ``extra_mutations``: mean number of mutations beyond the first per child;
    ``max_accuracy_loss``: largest accuracy drop (fraction, e.g. 0.05 = 5 points)
    below the seed model's accuracy a design may have; ``objective``: the cost
    minimized, ``area`` (um^2) or ``power`` (leakage, nW).
    """

    population: int = 200
    offspring: int = 200
    generations: int = 1000
    crossover_prob: float = 0.5
    extra_mutations: float = 0.5
    max_accuracy_loss: float = 0.05
    objective: str = "area"
    seed: int = 0
    doping: Doping = field(default_factory=Doping)
    backend: str = "numpy"
    device: str = "cpu"

    def __post_init__(self):
        if self.population < 2 or self.offspring < 2 or self.generations < 0:
            raise HwmlpError("a search needs population >= 2, offspring >= 2 and generations >= 0")
        if not 0 <= self.crossover_prob <= 1 or self.extra_mutations < 0:
            raise HwmlpError("crossover_prob must lie in [0, 1] and extra_mutations be >= 0")
        if not 0 <= self.max_accuracy_loss <= 1:
            raise HwmlpError(f"max_accuracy_loss must be a fraction in [0, 1], got {self.max_accuracy_loss}")
        if self.objective not in OBJECTIVES:
            raise HwmlpError(f"unknown objective {self.objective!r}: use area or power")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchConfig":
        return cls(**{**d, "doping": Doping(**d.get("doping", {}))})


class HardwareFitness(base.Fitness):
    """(accuracy, cost): accuracy maximized, cost minimized."""

    weights = (1.0, -1.0)


@dataclass(eq=False)
class Individual(Genome):
    """A genome with its DEAP fitness and raw metrics ``(accuracy, area_um2, leakage_nW)``."""

    def __post_init__(self):
        self.fitness = HardwareFitness()
        self.metrics: tuple[float, float, float] | None = None

    def copy(self) -> "Individual":
        new = super().copy()
        if self.fitness.valid:
            new.fitness.values = self.fitness.values
        new.metrics = self.metrics
        return new

    def genome(self) -> Genome:
        """A plain copy of the genes."""
        return Genome(*self.copied_genes())

    @classmethod
    def of(cls, genome: Genome) -> "Individual":
        """An individual with a copy of ``genome``'s genes and no fitness yet."""
        return cls(genome.weights, genome.masks, genome.biases, genome.lsb, genome.width, genome.argmax_drop).copy()


@dataclass
class GenerationStats:
    """Progress after one generation (0: the initial population).

    ``best_accuracy``: best fitness-data accuracy in the population;
    ``smallest_area_um2`` / ``smallest_power_mW``: of the feasible archive (None while
    no design is feasible); ``front_size``: designs in the Pareto archive."""

    generation: int
    evaluations: int
    best_accuracy: float
    smallest_area_um2: float | None
    smallest_power_mW: float | None
    front_size: int


@dataclass
class Design:
    """One design: its genome (None for the seed model), integer model and figures
    (accuracy on the fitness and validation data, modelled area and leakage)."""

    genome: Genome | None
    mlp: IntMLP
    fit_accuracy: float
    val_accuracy: float
    area_um2: float
    leakage_nW: float
    components: dict[str, int]

    @property
    def area_cm2(self) -> float:
        return self.area_um2 / 1e8

    @property
    def power_mW(self) -> float:
        return self.leakage_nW / 1e6

    def to_dict(self) -> dict:
        return {
            "fit_accuracy": self.fit_accuracy,
            "val_accuracy": self.val_accuracy,
            "area_um2": self.area_um2,
            "area_cm2": self.area_cm2,
            "power_mW": self.power_mW,
            "components": self.components,
            "genome": None if self.genome is None else self.genome.to_dict(),
            "model": self.mlp.to_dict(),
        }


@dataclass
class SearchResult:
    """``front``: designs non-dominated on (validation accuracy, cost) whose validation
    accuracy is within the loss budget, cheapest first (may be empty); ``archive``:
    every design of the fitness-data Pareto archive; ``seed``: the seed model's figures."""

    front: list[Design]
    archive: list[Design]
    seed: Design
    history: list[GenerationStats]


# ----- operators ------------------------------------------------------------------------


def sel_tournament_dcd(individuals: list, k: int, rng: np.random.Generator) -> list:
    """``k`` binary tournaments: the dominating individual wins, else the one with the
    larger crowding distance, else a coin toss (DEAP's ``selTournamentDCD`` with our
    generator). Needs crowding distances, as assigned by ``selNSGA2``."""
    chosen = []
    for a, b in rng.integers(len(individuals), size=(k, 2)):
        x, y = individuals[a], individuals[b]
        if x.fitness.dominates(y.fitness):
            chosen.append(x)
        elif y.fitness.dominates(x.fitness):
            chosen.append(y)
        elif x.fitness.crowding_dist != y.fitness.crowding_dist:
            chosen.append(x if x.fitness.crowding_dist > y.fitness.crowding_dist else y)
        else:
            chosen.append(x if rng.random() < 0.5 else y)
    return chosen


def dope(seed: Genome, n: int, space: SearchSpace, doping: Doping, toolbox, rng: np.random.Generator) -> list:
    """An initial population of ``n``: the exact seed, then near-exact copies (seed plus
    ``toolbox.mutate``), sparse copies and random genomes in ``doping``'s proportions."""
    parts = np.array([doping.near_exact, doping.sparse, doping.random])
    counts = np.floor(parts / parts.sum() * (n - 1)).astype(int)
    counts[np.argmax(parts)] += n - 1 - counts.sum()
    population = [Individual.of(seed)]
    for _ in range(counts[0]):
        population.append(toolbox.mutate(Individual.of(seed))[0])
    population += [Individual.of(ops.sparse_copy(seed, space, rng)) for _ in range(counts[1])]
    population += [Individual.of(ops.random_genome(space, rng)) for _ in range(counts[2])]
    return population


def evaluate_population(
    individuals: list,
    evaluator: PopulationEvaluator,
    cost_model: CostModel,
    space: SearchSpace,
    objective: str,
    min_accuracy: float,
) -> None:
    """Set metrics and (constrained) fitness of every individual, in one batch."""
    batch = GenomeBatch.stack(individuals)
    accuracy = evaluator.accuracy(batch)
    report = cost_model.of_genomes(batch, space)
    for ind, acc, area, leak in zip(individuals, accuracy, report.area_um2, report.leakage_nW):
        _set_metrics(ind, (float(acc), float(area), float(leak)), objective, min_accuracy)


def _set_metrics(ind: Individual, metrics, objective: str, min_accuracy: float) -> None:
    ind.metrics = metrics
    acc, area, leak = metrics
    cost = area if objective == "area" else leak
    ind.fitness.values = (acc, cost) if acc >= min_accuracy else (acc, PENALTY + (min_accuracy - acc))


def vary(parents: list, toolbox, crossover_prob: float, rng: np.random.Generator) -> list:
    """Children of ``parents``: copies, crossed pairwise with ``crossover_prob``, each
    mutated, fitness invalidated."""
    children = [toolbox.clone(p) for p in parents]
    for a, b in zip(children[::2], children[1::2]):
        if rng.random() < crossover_prob:
            toolbox.mate(a, b)
    for child in children:
        toolbox.mutate(child)
        del child.fitness.values
        child.metrics = None
    return children


def build_toolbox(
    space: SearchSpace,
    config: SearchConfig,
    evaluator: PopulationEvaluator,
    cost_model: CostModel,
    min_accuracy: float,
    rng: np.random.Generator,
) -> base.Toolbox:
    """The search's operators, registered under DEAP's usual names plus one per mutation."""
    tb = base.Toolbox()
    tb.register("clone", Individual.copy)
    for name in ops.MUTATION_RATES:
        tb.register(name, getattr(ops, name), space=space, rng=rng)
    rates = dict(ops.MUTATION_RATES)
    if not space.search_masks:
        del rates["mut_mask"]
    if not space.n_hidden:
        del rates["mut_qrelu"]
    tb.register("mutate", ops.mutate, toolbox=tb, rates=rates, extra=config.extra_mutations, rng=rng)
    tb.register("mate", ops.cx_neurons, space=space, rng=rng)
    tb.register("population", dope, space=space, doping=config.doping, toolbox=tb, rng=rng)
    tb.register("evaluate", evaluate_population, evaluator=evaluator, cost_model=cost_model,
                space=space, objective=config.objective, min_accuracy=min_accuracy)
    tb.register("select", tools.selNSGA2, nd="log")
    tb.register("select_parents", sel_tournament_dcd, rng=rng)
    return tb


# ----- the search --------------------------------------------------------------------------


def validation_split(X, y, fraction: float = 0.2, seed: int = 0):
    """Stratified split of training data into ``(X_fit, y_fit, X_val, y_val)``."""
    from sklearn.model_selection import train_test_split

    if not 0 < fraction < 1:
        raise HwmlpError(f"validation fraction must lie strictly between 0 and 1, got {fraction}")
    X_fit, X_val, y_fit, y_val = train_test_split(
        np.asarray(X), np.asarray(y), test_size=fraction, stratify=y, random_state=seed
    )
    return X_fit, y_fit, X_val, y_val


def run_search(
    seed_model: IntMLP,
    X_fit,
    y_fit,
    X_val,
    y_val,
    space: SearchSpace,
    config: SearchConfig,
    cost_model: CostModel | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    callback: Callable[[GenerationStats], None] | None = None,
    customize: Callable[[base.Toolbox], None] | None = None,
    checkpoint_every: int = 1,
) -> SearchResult:
    """Search ``space`` from ``seed_model`` for the accuracy/cost Pareto front.

    Fitness accuracy is measured on ``(X_fit, y_fit)``; final designs are selected on
    ``(X_val, y_val)``. ``checkpoint``: JSON file written atomically after every
    ``checkpoint_every``-th generation and the last (each write costs an fsync, a few
    ms). ``resume``: continue from that file (it must exist and come from the same
    seed model, data, space and config; ``generations`` may differ).
    ``callback`` receives every generation's :class:`GenerationStats`;
    ``customize`` may re-register toolbox operators before the run.
    """
    if checkpoint_every < 1:
        raise HwmlpError(f"checkpoint_every must be a positive number of generations, got {checkpoint_every}")
    cost_model = cost_model or CostModel()
    evaluator = PopulationEvaluator(space, X_fit, y_fit, config.backend, config.device)
    seed_fit = seed_model.accuracy(X_fit, y_fit)
    min_accuracy = seed_fit - config.max_accuracy_loss
    rng = np.random.default_rng(config.seed)
    tb = build_toolbox(space, config, evaluator, cost_model, min_accuracy, rng)
    if customize:
        customize(tb)
    saver = None
    if checkpoint:
        fingerprint = _fingerprint(seed_model, X_fit, y_fit, X_val, y_val, space, config, cost_model)
        saver = _Checkpoint(Path(checkpoint), fingerprint)

    def report(state: _State, evaluated: list) -> None:
        stats = state.record(evaluated)
        if saver and (stats.generation % checkpoint_every == 0 or stats.generation == config.generations):
            saver.save(state)
        if callback:
            callback(stats)

    if resume:
        if saver is None or not saver.path.exists():
            raise HwmlpError(f"no search checkpoint at {checkpoint} to resume from")
        state = saver.load(rng, config.objective, min_accuracy)
    else:
        population = tb.population(from_intmlp(seed_model, space), config.population)
        tb.evaluate(population)
        state = _State(population, _archive(), [], rng)
        report(state, population)
    while len(state.history) <= config.generations:
        population = tb.select(state.population, len(state.population))  # assigns crowding distances
        offspring = vary(tb.select_parents(population, config.offspring), tb, config.crossover_prob, rng)
        tb.evaluate(offspring)
        state.population = tb.select(population + offspring, config.population)
        report(state, offspring)
    return _result(state.archive, seed_model, seed_fit, space, cost_model, X_val, y_val, config, state.history)


def _archive() -> tools.ParetoFront:
    """The Pareto archive of feasible designs; of designs with equal fitness it keeps the first."""
    return tools.ParetoFront(similar=lambda a, b: True)


@dataclass
class _State:
    """What one generation hands the next, and a checkpoint holds."""

    population: list
    archive: tools.ParetoFront
    history: list[GenerationStats]
    rng: np.random.Generator

    def record(self, evaluated: list) -> GenerationStats:
        """Offer the feasible non-dominated ``evaluated`` individuals to the archive and
        log the generation."""
        feasible = [ind for ind in evaluated if ind.fitness.values[1] < PENALTY]
        if feasible:
            self.archive.update(tools.sortLogNondominated(feasible, len(feasible), first_front_only=True))
        stats = GenerationStats(
            generation=len(self.history),
            evaluations=(self.history[-1].evaluations if self.history else 0) + len(evaluated),
            best_accuracy=max(ind.metrics[0] for ind in self.population),
            smallest_area_um2=min((ind.metrics[1] for ind in self.archive), default=None),
            smallest_power_mW=min((ind.metrics[2] / 1e6 for ind in self.archive), default=None),
            front_size=len(self.archive),
        )
        self.history.append(stats)
        return stats


@dataclass
class _Checkpoint:
    """A JSON checkpoint file, bound to the digest of the search that writes it."""

    path: Path
    fingerprint: str

    def save(self, state: _State) -> None:
        entry = lambda ind: {"genome": ind.to_dict(), "metrics": list(ind.metrics)}  # noqa: E731
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "fingerprint": self.fingerprint,
            "rng": state.rng.bit_generator.state,
            "history": [asdict(h) for h in state.history],
            "population": [entry(ind) for ind in state.population],
            "archive": [entry(ind) for ind in state.archive],
        }
        write_bytes_atomic(self.path, json.dumps(checkpoint, separators=(",", ":")).encode())  # compact: 10x faster

    def load(self, rng: np.random.Generator, objective: str, min_accuracy: float) -> _State:
        """The saved state; ``rng`` is set to the saved generator state."""
        d = read_json(self.path, "search checkpoint")
        if not isinstance(d, dict) or d.get("format") != CHECKPOINT_FORMAT or d.get("version") != CHECKPOINT_VERSION:
            raise HwmlpError(f"{self.path} is not a version-{CHECKPOINT_VERSION} hwmlp search checkpoint")
        if d["fingerprint"] != self.fingerprint:
            raise HwmlpError(
                f"checkpoint {self.path} comes from a different search (seed model, data, space or config "
                "changed): start afresh without resume, or restore the original settings"
            )

        def individual(entry) -> Individual:
            ind = Individual.of(Genome.from_dict(entry["genome"]))
            _set_metrics(ind, tuple(entry["metrics"]), objective, min_accuracy)
            return ind

        rng.bit_generator.state = d["rng"]
        archive = _archive()
        for entry in d["archive"]:
            archive.insert(individual(entry))
        history = [GenerationStats(**h) for h in d["history"]]
        return _State([individual(e) for e in d["population"]], archive, history, rng)


def _fingerprint(seed_model, X_fit, y_fit, X_val, y_val, space, config, cost_model) -> str:
    """Digest of everything that determines a run, except the number of generations."""
    h = hashlib.sha256()
    settings = {
        "model": seed_model.to_dict(),
        "space": space.to_dict(),
        "config": {**config.to_dict(), "generations": None},
        "calibration": cost_model.calibration.to_dict(),
        "tech": cost_model.tech.name,
    }
    h.update(json.dumps(settings, sort_keys=True).encode())
    for a in (X_fit, y_fit, X_val, y_val):
        h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
    return h.hexdigest()


def _result(archive, seed_model, seed_fit, space, cost_model, X_val, y_val, config, history) -> SearchResult:
    members = [ind.genome() for ind in archive]
    designs = []
    if members:
        cost = cost_model.of_genomes(members, space)
        val_accuracy = PopulationEvaluator(space, X_val, y_val, config.backend, config.device).accuracy(members)
        designs = [
            Design(g, to_intmlp(g, space, seed_model.name, seed_model.classes), ind.metrics[0], float(va),
                   float(cost.area_um2[k]), float(cost.leakage_nW[k]), cost.breakdown(k))
            for k, (g, ind, va) in enumerate(zip(members, archive, val_accuracy))
        ]
    seed_cost = cost_model.of_mlp(seed_model)
    seed = Design(None, seed_model, seed_fit, seed_model.accuracy(X_val, y_val), float(seed_cost.area_um2[0]),
                  float(seed_cost.leakage_nW[0]), seed_cost.breakdown(0))
    cost_of = (lambda d: d.area_um2) if config.objective == "area" else (lambda d: d.leakage_nW)
    within_budget = [d for d in designs if d.val_accuracy >= seed.val_accuracy - config.max_accuracy_loss]
    front, best = [], -1.0
    for d in sorted(within_budget, key=lambda d: (cost_of(d), -d.val_accuracy)):
        if d.val_accuracy > best:
            front.append(d)
            best = d.val_accuracy
    return SearchResult(front, designs, seed, history)
